"""Written answers (aiqa.generate): the check of each sentence, the prompt budget, and the protocol's failures.

The check and the prompt are pure logic over a small document chunked by the real chunker. The
client's failures (a server that is down, answers 500, sends garbage or hangs up mid-reply) are
produced by a tiny HTTP server that says exactly that; what a real model writes is tested with the
real model server in test_generate_llm.py.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from aiqa.chunk import chunk_document
from aiqa.contract import ask_json, events, health_json
from aiqa.errors import GenerationFailed
from aiqa.generate.check import Evidence, check, numbers, split_sentences
from aiqa.generate.client import ChatClient
from aiqa.generate.generator import Generator, prompt_chunks
from aiqa.generate.prompt import PROMPT_MARGIN, Prompt, build_prompt
from aiqa.records import Document
from aiqa.text.tokens import count_tokens

from .conftest import free_port

TEXT = """# 별빛 상사 연간 보고

## 매출
별빛 상사의 2025년 매출은 1,250억 원이다. 이는 전년보다 12% 늘어난 수치다.
해외 매출은 주로 Orion-7 장비 수출에서 나왔다.

## 인력
| 부서 | 인원 | 책임자 |
|---|---|---|
| 연구소 | 85명 | 한가람 |
| 영업본부 | 40명 | 윤슬기 |
"""


@pytest.fixture(scope="module")
def passages():
    doc = Document("annual.md", TEXT, "x")
    chunks = [c for c in chunk_document(doc, count_tokens, 256) if c.kind != "title"]
    stored = {"annual.md": Document("annual.md", TEXT, "x")}
    return chunks, stored


def number_of(chunks, text: str) -> int:
    """The prompt number (1-based) of the passage holding `text`."""
    return next(i for i, c in enumerate(chunks, 1) if text in c.text)


def offline_writer(chunks) -> tuple[Generator, Prompt, int]:
    """A generator that is never called (its replies are given), its prompt, and the sales passage's number."""
    generator = Generator(ChatClient("http://127.0.0.1:9/v1", "none"))
    return generator, generator.prompt("매출은?", chunks, "ko"), number_of(chunks, "1,250억")


def evidence(chunks) -> Evidence:
    prompt = build_prompt("질문", chunks, "ko", 4096, 300)
    return Evidence(prompt.passages, prompt.texts)


def test_sentences_keep_their_markers_even_after_the_full_stop():
    reply = "매출은 1,250억 원이다. [1] 전년보다 12% 늘었다 [1][2].\n- 해외 매출은 3.5배다 [2, 3]"
    split = split_sentences(reply)
    assert [refs for _, _, refs in split] == [(1,), (1, 2), (2, 3)]
    assert split[0][1] == "매출은 1,250억 원이다." and split[2][1] == "해외 매출은 3.5배다"
    assert numbers("1,250억 원, 3.5배, 2025년") == {"1250", "3.5", "2025"}
    # A reply that opens with a marker puts markers first; they hold to the end of their line.
    leading = split_sentences("[1] 매출은 늘었다. 이익은 줄었다.\n인원은 85명이다.\n[2] 연구소는 크다.")
    assert [refs for _, _, refs in leading] == [(1,), (1,), (), (2,)]


def test_a_sentence_is_kept_only_when_its_cited_passage_holds_its_numbers_and_names(passages):
    chunks, _ = passages
    sales = number_of(chunks, "1,250억")
    lab = number_of(chunks, "연구소")
    ev = evidence(chunks)
    reasons = {
        text: s.reason
        for text, s in zip(
            ["right", "number", "name", "code", "elsewhere", "no marker", "no passage", "english"],
            check(
                f"별빛 상사의 2025년 매출은 1250억 원이다 [{sales}]. "
                f"2025년 매출은 1,300억 원이다 [{sales}]. "
                f"연구소 책임자는 김철수이다 [{lab}]. "
                f"해외 매출은 Vega 장비에서 나왔다 [{sales}]. "
                f"연구소 인원은 85명이다 [{sales}]. "
                "매출이 늘었다. "
                "매출이 늘었다 [9]. "
                f"The lab has 85 staff [{lab}].",
                ev,
            ),
            strict=True,
        )
    }
    assert reasons["right"] == "" and reasons["english"] == ""
    assert "1300" in reasons["number"]
    assert "김철수" in reasons["name"]
    assert "vega" in reasons["code"]
    assert "85" in reasons["elsewhere"]  # true, but not in the passage it cites
    assert "marker" in reasons["no marker"] and "[9]" in reasons["no passage"]


def test_a_korean_sentence_cited_to_a_passage_about_something_else_is_dropped(passages):
    chunks, _ = passages
    lab = number_of(chunks, "연구소")
    (sentence,) = check(f"회사의 미래는 밝다 [{lab}].", evidence(chunks))
    assert not sentence.kept and "none of its words" in sentence.reason


def test_kept_sentences_are_renumbered_and_cite_the_statement_that_holds_them(passages):
    chunks, stored = passages
    generator, prompt, sales = offline_writer(chunks)
    reply = f"매출은 1,250억 원이다 [{sales}]. 전년보다 12% 늘었다 [{sales}]."
    generated = generator.finish(reply, prompt, stored, 0.0)
    assert generated.used and generated.answer == "매출은 1,250억 원이다 [1]. 전년보다 12% 늘었다 [2]."
    quotes = [c.quote for c in generated.citations]
    assert quotes == ["별빛 상사의 2025년 매출은 1,250억 원이다.", "이는 전년보다 12% 늘어난 수치다."]
    assert all(TEXT[c.start : c.end] == c.quote for c in generated.citations)


def test_a_written_answer_must_cite_a_statement_the_decision_chose(passages):
    chunks, stored = passages
    generator, prompt, sales = offline_writer(chunks)
    reply = f"매출은 1,250억 원이다 [{sales}]."
    start = TEXT.index("이는 전년보다")
    other = (("annual.md", start, start + 10),)  # the decision chose the growth sentence, not this one
    assert "do not cite" in generator.finish(reply, prompt, stored, 0.0, other).fallback
    start = TEXT.index("별빛 상사의 2025년")
    assert generator.finish(reply, prompt, stored, 0.0, (("annual.md", start, start + 5),)).used


def test_too_few_supported_sentences_fall_back_to_the_quotes(passages):
    chunks, stored = passages
    generator, prompt, sales = offline_writer(chunks)
    made_up = f"매출은 1,250억 원이다 [{sales}]. 2030년에는 3,000억 원이 된다 [{sales}]. 직원은 500명이다 [{sales}]."
    generated = generator.finish(made_up, prompt, stored, 0.0)
    assert not generated.used and "1 of 3" in generated.fallback
    assert generator.finish("문서에 답이 없습니다.", prompt, stored, 0.0).fallback  # no marker: nothing held


def test_the_prompt_fits_its_budget_and_cuts_long_passages(passages):
    chunks, _ = passages
    long = chunks[0].__class__(**{**chunks[0].__dict__, "text": "매출 보고 문장이다. " * 400})
    prompt = build_prompt("매출은?", [long, *chunks], "ko", context_tokens=1024, answer_tokens=200)
    assert prompt.tokens <= 1024 * (1 - PROMPT_MARGIN) - 200
    assert len(prompt.texts[0]) < len(long.text) and prompt.texts[0].endswith(".")
    assert "Korean" in prompt.messages[0]["content"]
    assert "English" in build_prompt("What?", chunks, "en", 4096, 200).messages[0]["content"]


class Canned(BaseHTTPRequestHandler):
    """Answers every POST the way the test says: `behaviour(handler)`."""

    behaviour: Callable[[BaseHTTPRequestHandler], None]
    requests: ClassVar[list[dict]] = []

    def do_POST(self) -> None:
        self.requests.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        type(self).behaviour(self)

    def log_message(self, *args) -> None:
        pass


def stream_of(*pieces: str, done: bool = True) -> Callable[[BaseHTTPRequestHandler], None]:
    def send(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.end_headers()
        for p in pieces:
            event = {"choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]}
            h.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
        if done:
            h.wfile.write(b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n')

    return send


def status_500(h: BaseHTTPRequestHandler) -> None:
    h.send_response(500)
    h.end_headers()
    h.wfile.write(b"model not loaded")


def garbage(h: BaseHTTPRequestHandler) -> None:
    h.send_response(200)
    h.end_headers()
    h.wfile.write(b"data: <html>proxy error</html>\n\n")


@pytest.fixture
def canned():
    Canned.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Canned)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def test_a_bad_llm_url_is_refused_with_the_setting_named(monkeypatch):
    from aiqa.config import Settings
    from aiqa.errors import BadSetting

    monkeypatch.setenv("AIQA_LLM_URL", "llm.internal:8000/v1")
    with pytest.raises(BadSetting, match=r"AIQA_LLM_URL='llm\.internal:8000/v1' is not a URL"):
        Settings()
    monkeypatch.setenv("AIQA_LLM_URL", "http://llm.internal:8000/v1")
    assert Settings().llm_url == "http://llm.internal:8000/v1"


def test_the_client_reads_a_stream_and_names_every_failure(canned):
    client = ChatClient(canned, "m", api_key="k", read_timeout_s=2)
    Canned.behaviour = staticmethod(stream_of("매출은 ", "1,250억 원이다 [1]."))
    assert client.complete([{"role": "user", "content": "q"}]) == "매출은 1,250억 원이다 [1]."
    assert Canned.requests[-1]["stream"] is True and Canned.requests[-1]["temperature"] == 0
    for behaviour, says in [
        (status_500, "answered 500: model not loaded"),
        (garbage, "not an OpenAI chat-completions stream"),
        (stream_of("매출은", done=False), "closed the reply before its end"),
    ]:
        Canned.behaviour = staticmethod(behaviour)
        with pytest.raises(GenerationFailed, match=says):
            client.complete([{"role": "user", "content": "q"}])
    down = ChatClient(f"http://127.0.0.1:{free_port()}/v1", "m", connect_timeout_s=1)
    with pytest.raises(GenerationFailed, match="cannot reach the LLM server"):
        down.complete([{"role": "user", "content": "q"}])


def test_the_engine_writes_only_when_it_answers_and_falls_back_on_failure(engine, canned, monkeypatch):
    generator = Generator(ChatClient(canned, "m", read_timeout_s=5), context_tokens=2048, passages=3)
    monkeypatch.setattr(engine, "generator", generator)
    Canned.behaviour = staticmethod(stream_of("지어낸 답이다 [1]. 2099년에 끝난다 [1]."))
    refused = ask_json(engine, "김치찌개 끓이는 법을 알려줘")
    assert refused["abstained"] and refused["mode"] == "extractive" and not Canned.requests  # never asked
    answered = ask_json(engine, "미국의 AI 반도체는?")
    assert not answered["abstained"] and len(Canned.requests) == 1
    assert answered["mode"] == "extractive" and answered["generation"]["kept"] == 0  # made up: the quotes stay
    assert "2099" in answered["generation"]["dropped"][1]["reason"]
    Canned.behaviour = staticmethod(status_500)
    failed = ask_json(engine, "미국의 AI 반도체는?")
    assert failed["mode"] == "extractive" and "500" in failed["generation"]["fallback"]
    health = health_json(engine)
    assert health["status"] == "degraded" and health["llm"]["state"] == "failing" and "500" in health["warning"]


def test_events_send_the_quotes_first_then_tokens_then_the_checked_answer(engine, canned, monkeypatch):
    generator = Generator(ChatClient(canned, "m", read_timeout_s=5), context_tokens=2048, passages=3)
    monkeypatch.setattr(engine, "generator", generator)
    reply = engine.ask("미국의 AI 반도체는?")
    chunk = generator.prompt(reply.answer.question, prompt_chunks(reply), "ko").passages[0]
    first_words = " ".join(chunk.text.split()[:6])
    Canned.behaviour = staticmethod(stream_of(first_words, " [1]."))
    seen = list(events(reply, engine.generator))
    kinds = [k for k, _ in seen]
    assert kinds[0] == "extractive" and kinds[-1] == "answer" and kinds.count("token") == 2
    final = seen[-1][1]  # passage 1's own words, cited to it: kept
    assert final["mode"] == "generated" and final["generation"]["kept"] == 1
    assert final["extractive"]["answer"] == seen[0][1]["answer"]
    assert final["citations"][0]["quote"] in chunk.text
    assert health_json(engine)["llm"]["state"] == "ok"


def copy_passage_one(h: BaseHTTPRequestHandler) -> None:
    """A stand-in writer that copies the first words of the prompt's passage [1] and cites it."""
    prompt = Canned.requests[-1]["messages"][-1]["content"]
    first = prompt.split("[1] ", 1)[1].split("\n")[0]
    stream_of(" ".join(first.split()[:6]), " [1].")(h)


def test_eval_counts_the_answers_the_llm_wrote(engine, canned, monkeypatch):
    from aiqa.evaluate import Case, run_eval

    monkeypatch.setattr(engine, "generator", Generator(ChatClient(canned, "m", read_timeout_s=5), 2048, 3))
    Canned.behaviour = staticmethod(copy_passage_one)
    cases = [
        Case("a", "미국의 AI 반도체는?", ("NVIDIA",)),
        Case("b", "중국이 해외 인재를 데려오는 제도는?", ("천인계획",)),
        Case("c", "김치찌개 끓이는 법을 알려줘", (), answerable=False),
    ]
    report = run_eval(engine, cases, k=5)
    modes = {c["id"]: c["mode"] for c in report["cases"]}
    assert modes["c"] == "extractive" and report["abstention_accuracy"] == 1.0
    assert report["written_answers"] == sum(m == "generated" for m in modes.values()) >= 1
    assert len(Canned.requests) == 2  # the refused question never reached the writer
