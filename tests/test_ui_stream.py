"""The chat's streamed reply (web/ui.py, web/stream.py) over a canned engine: order, escaping, throttling.

A fast unit test of the UI's own logic: the engine and its LLM generator here are small stand-ins
whose answers are fixed, read through the real JSON contract (aiqa.contract); the real engine and a
real LLM server are driven by tests/test_browser.py.
"""

from __future__ import annotations

import inspect

from aiqa.config import Settings
from aiqa.contract import events, reply_json
from aiqa.errors import AiqaError, BadRequest
from aiqa.generate.check import Sentence
from aiqa.generate.generator import Generated, with_generated
from aiqa.records import Answer, Citation, Reply
from aiqa.web.guard import Throttle
from aiqa.web.render import LABELS, esc, render_result
from aiqa.web.stream import reply_views
from aiqa.web.ui import _Handlers

PASSAGE = "미국은 NVIDIA의 H100 같은 AI 가속기로 학습 시장을 이끈다. 중국은 Huawei의 Ascend를 키운다."
QUOTE = "미국은 NVIDIA의 H100 같은 AI 가속기로 학습 시장을 이끈다."
CITATION = Citation(1, "us-china-ai-race.txt", "반도체", "¶3", QUOTE, 0, len(QUOTE), PASSAGE)
REPLY = Reply(
    Answer("미국의 AI 반도체는?", f"{QUOTE} [1]", False, (CITATION,)),
    hits=[],
    k=5,
    timings={"retrieve": 1.0, "answer": 1.0},
    documents={},
)
EXTRACTIVE = reply_json(REPLY)
WRITTEN = "미국은 NVIDIA의 H100으로 학습 시장을 이끕니다 [1]."


def written(answer: str) -> Generated:
    """A written answer that passed its check."""
    sentence = Sentence(answer, answer, (1,), kept=True)
    return Generated(answer, (CITATION,), (sentence,), "", 1.0, 300)


GENERATED = with_generated(EXTRACTIVE, written(WRITTEN))
DROPPED = Sentence("틀린 문장 [1].", "틀린 문장", (1,), kept=False, reason="not in the passage")
FELL_BACK_GEN = Generated(sentences=(DROPPED,), fallback="0 of 1 written sentences are held", seconds=1.0)
FELL_BACK = with_generated(EXTRACTIVE, FELL_BACK_GEN)
HOSTILE = ["<script>window.__xss=1</script> ", "[여기](javascript:window.__xss=2) ", "<img src=x onerror=alert(1)> [1]"]


class CannedGenerator:
    """The LLM side of a written answer with fixed tokens; records whether its stream was closed."""

    def __init__(self, tokens: list[str], outcome: Generated, fail_after: int | None):
        self.tokens, self.outcome, self.fail_after = tokens, outcome, fail_after
        self.closed = False
        self.tick: float = 0.0  # a clock the tokens advance, for the throttle test

    def events(self, reply: Reply, language: str):
        try:
            for i, piece in enumerate(self.tokens):
                if i == self.fail_after:
                    raise AiqaError("the LLM server went away")
                self.tick += 0.03
                yield "token", piece
            yield "done", self.outcome
        finally:
            self.closed = True


class CannedEngine:
    """ask() with a fixed Reply, and a canned generator (none when the model does not write)."""

    def __init__(self, tokens: list[str], outcome: Generated, writes: bool = True, fail_after: int | None = None):
        self.canned = CannedGenerator(tokens, outcome, fail_after)
        self.generator = self.canned if writes else None

    @property
    def closed(self) -> bool:
        return self.canned.closed

    @property
    def tick(self) -> float:
        return self.canned.tick

    def ask(self, question: str, k: int, history: list[str], groups: frozenset[str] | None = None) -> Reply:
        if not question.strip():
            raise BadRequest("question is empty: type a question")
        return REPLY


def respond(engine: CannedEngine, question: str = "미국의 AI 반도체는?", lang: str = "ko") -> list[str]:
    handlers = _Handlers(engine, Settings(), Throttle(Settings()))
    handlers.stream_every = 0.0  # every token redraws: the order of the views is what is checked here
    return list(handlers.respond(question, [], lang))


def test_respond_is_a_generator_so_gradio_streams_it():
    assert inspect.isgeneratorfunction(_Handlers.respond)


def test_the_quoted_answer_comes_first_then_the_text_being_written_then_the_written_answer():
    tokens = ["미국은 ", "NVIDIA의 H100으로 ", "학습 시장을 이끕니다 [1]."]
    views = respond(CannedEngine(tokens, written(WRITTEN)))
    ko = LABELS["ko"]
    assert views[0] == render_result(EXTRACTIVE, "ko") and ko["writing"] not in views[0]
    writing = views[1:-1]
    assert len(writing) == len(tokens)
    for n, view in enumerate(writing, 1):
        assert ko["writing"] in view
        assert f'<div class="aiqa-draft">{esc("".join(tokens[:n]))}</div>' in view
        assert "us-china-ai-race.txt" in view and f"<mark>{esc(QUOTE)}</mark>" in view  # the quoted answer's sources
    assert "[1].</div>" in writing[-1]  # the marker stays text while the answer is unchecked
    final = views[-1]
    assert ko["written"] in final and "aiqa-badge" in final
    assert '<sup class="aiqa-ref">[1]</sup>' in final and ko["writing"] not in final
    assert f"<mark>{esc(QUOTE)}</mark>" in final


def test_the_models_markup_shows_as_text_while_written_and_when_done():
    views = respond(CannedEngine(HOSTILE, written("".join(HOSTILE))))
    assert len(views) == 5
    for view in views[1:]:
        assert "<script" not in view and "<img" not in view and "<a " not in view
        assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in view
    for view in views[2:]:  # the whole text once the second piece is in
        assert "[여기](javascript:window.__xss=2)" in view
    assert "&lt;img src=x onerror=alert(1)&gt; [1]</div>" in views[-2]


def test_a_written_answer_that_failed_its_check_shows_the_quotes_with_a_note():
    views = respond(CannedEngine(["틀린 문장 [1]."], FELL_BACK_GEN), lang="en")
    en = LABELS["en"]
    assert en["quoted_instead"] in views[-1] and en["written"] not in views[-1]
    assert esc(QUOTE) in views[-1] and "틀린 문장" not in views[-1]


def test_without_a_model_the_quoted_answer_is_the_only_view():
    assert respond(CannedEngine([], written(WRITTEN), writes=False)) == [render_result(EXTRACTIVE, "ko")]


def test_a_bad_question_gives_a_notice():
    (view,) = respond(CannedEngine([], written(WRITTEN)), question="  ")
    assert "aiqa-error" in view and "question is empty: type a question" in view


def test_a_stream_that_breaks_ends_on_the_quoted_answer_never_on_unchecked_text():
    engine = CannedEngine(["미국은 ", "잘못 끊긴 문장"], written(WRITTEN), fail_after=1)
    views = respond(engine)
    assert "미국은" in views[1] and views[-1] == render_result(EXTRACTIVE, "ko")
    assert engine.closed


def test_a_chat_that_stops_reading_closes_the_models_stream():
    engine = CannedEngine(["하나 ", "둘 ", "셋"], written(WRITTEN))
    handlers = _Handlers(engine, Settings(), Throttle(Settings()))
    handlers.stream_every = 0.0
    views = handlers.respond("미국의 AI 반도체는?", [], "ko")
    next(views), next(views)
    assert not engine.closed
    views.close()
    assert engine.closed


def test_tokens_are_gathered_into_one_redraw_per_interval():
    engine = CannedEngine([f"{i} " for i in range(40)], written(WRITTEN))  # a token every 0.03 s of the fake clock
    stream = events(REPLY, engine.generator)
    views = list(reply_views(EXTRACTIVE, stream, "ko", every=0.1, clock=lambda: engine.tick))
    writing = [v for v in views if LABELS["ko"]["writing"] in v]
    assert len(writing) == 10  # every 4th token (0.12 s apart), not 40 redraws
    assert views[-1] == render_result(GENERATED, "ko")
