"""Token alignment for questions not in Korean (aiqa.answer.align), and how it enters the decision.

The questions and statements are written for these tests; none comes from an evaluation set.
"""

from __future__ import annotations

import numpy as np
import pytest

from aiqa.answer.align import Aligner, content_pieces, maxsim
from aiqa.answer.candidates import RERANK_DEPTH, Question, aligned_text, candidates, reranked
from aiqa.answer.decision import load_decision
from aiqa.errors import BadRequest, BadSetting
from aiqa.text.korean import analyse


def test_content_pieces_leave_out_stop_words_and_punctuation():
    pieces = ["▁How", "▁does", "▁the", "▁company", "▁hire", "▁engineer", "s", "?"]
    assert [pieces[i] for i in content_pieces(pieces)] == ["▁company", "▁hire", "▁engineer", "s"]
    assert content_pieces(["▁the", "?"]) == [0, 1]  # nothing left: every piece counts


def test_maxsim_averages_each_question_piece_s_best_match():
    question = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    statement = np.array([[1.0, 0.0], [0.6, 0.8]], np.float32)
    assert maxsim(question, statement) == pytest.approx((1.0 + 0.8) / 2)
    assert maxsim(question, np.zeros((0, 2), np.float32)) == 0.0


class _Tokens:
    """Token states where a piece is a one-hot of its first letter: alignment counts shared initials."""

    def embed_tokens(self, texts, *, query):
        out = []
        for text in texts:
            pieces = ["▁" + w for w in text.split()]
            states = np.zeros((len(pieces), 26), np.float32)
            for i, p in enumerate(pieces):
                states[i, (ord(p[1].lower()) - 97) % 26] = 1.0
            out.append((pieces, states))
        return out


def test_the_aligner_scores_each_statement_and_says_when_it_cannot():
    aligner = Aligner(_Tokens())
    scores = aligner.scores("which river flows", ["rivers wind far", "mountains stand", "rivers wind far"])
    assert scores[0] == scores[2] > scores[1]
    assert aligner.scores("which river", []) == []
    assert Aligner(object()).scores("which river", ["a b"]) is None and not Aligner(object()).available


def test_english_questions_get_alignment_and_korean_ones_do_not(engine):
    pipeline = engine.pipeline()
    retriever, composer = pipeline.retriever, pipeline.composer
    for text, korean in (("How does China bring scientists back home?", False), ("중국의 인재 유치 방법은?", True)):
        analysis = analyse(text)
        question = Question.read(analysis, retriever.stats)
        found = candidates(question, retriever.search(analysis, k=5), composer.statements, composer.aligner)
        aligns = [c.features["align"] for c in found]
        if korean:
            assert set(aligns) == {0.0}
        else:
            assert composer.aligner.available and min(aligns) > 0.0
            assert min(c.features["align_gap"] for c in found) == 0.0  # the best one
        # Without token states the statements' own cosines stand in.
        fallback = candidates(question, retriever.search(analysis, k=5), composer.statements, None)
        assert [c.features["align"] for c in fallback] == (
            [0.0] * len(fallback) if korean else [c.features["statement_dense"] for c in fallback]
        )


def test_an_older_decision_file_without_the_newer_features_still_loads(tmp_path):
    import json

    data = load_decision().as_json()
    for part in ("selection", "answer"):
        keep = [i for i, f in enumerate(data[part]["features"]) if not f.startswith("align")]
        for key in ("features", "mean", "scale", "coef"):
            data[part][key] = [data[part][key][i] for i in keep]
    old = tmp_path / "old.json"
    old.write_text(json.dumps(data), encoding="utf-8")
    loaded = load_decision(old)
    assert "align" not in loaded.selection.features and "align_top" not in loaded.answer.features
    data["answer"]["features"][0] = "made_up"  # a feature this version does not compute
    old.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(BadSetting, match="made_up"):
        load_decision(old)


def test_english_questions_can_teach_the_selection_only(engine):
    from aiqa.calibrate import collect, fit
    from aiqa.evaluate import Case

    rows = [
        ("중국 기업들이 국산 클러스터로 구현한 것은?", ["GPT-3.5 수준 모델 일부 구현"]),
        ("중국의 자원 전략은?", ["희토류"]),
        ("유럽의 AI 규제는?", []),
        ("사내 식당 메뉴는?", []),
    ]
    english = [
        ("Which models did Chinese firms build on local clusters?", ["GPT-3.5 수준 모델 일부 구현"]),
        ("How does China secure raw materials?", ["희토류"]),
    ]
    cases = [Case(f"c{i}", q, tuple(g), answerable=bool(g)) for i, (q, g) in enumerate(rows)]
    extra = [Case(f"e{i}", q, tuple(g)) for i, (q, g) in enumerate(english)]
    alone, taught = fit(collect(engine, cases)), fit(collect(engine, cases), selection_only=collect(engine, extra))
    assert alone.selection.coef != taught.selection.coef  # which statement answers, learnt from more
    assert 0 < taught.answer.threshold < 1
    with pytest.raises(BadRequest, match="both answerable and unanswerable"):
        fit(collect(engine, cases[:2]), selection_only=collect(engine, extra))  # they do not count for that


@pytest.mark.parametrize(
    ("question", "answering"),
    [
        ("Which animal was used in the experiments?", "실험에는 쥐가 사용되었다."),
        ("What is the company's main product?", "이 회사의 주력 제품은 산업용 로봇이다."),
        ("When was the company founded?", "회사는 2001년에 설립되었다."),
    ],
)
def test_an_english_question_aligns_best_with_the_korean_statement_that_answers_it(embedder, question, answering):
    statements = [
        "실험에는 쥐가 사용되었다.",
        "이 회사의 주력 제품은 산업용 로봇이다.",
        "회사는 2001년에 설립되었다.",
        "금강산의 가장 높은 봉우리는 비로봉이다.",
    ]
    scores = Aligner(embedder).scores(question, statements)
    best = statements[max(range(len(scores)), key=scores.__getitem__)]
    assert best == answering
    assert max(scores) - sorted(scores)[-2] > 0.05  # by a clear margin, not a tie


class _Counting(_Tokens):
    def __init__(self):
        self.encoded: list[str] = []

    def embed_tokens(self, texts, *, query):
        self.encoded.extend(texts)
        return super().embed_tokens(texts, query=query)


def test_the_aligner_encodes_each_statement_once_while_it_is_cached():
    tokens = _Counting()
    aligner = Aligner(tokens)
    first = aligner.scores("which river flows", ["rivers wind far", "mountains stand"])
    again = aligner.scores("which river flows", ["mountains stand", "forests grow"])
    assert again[0] == first[1]
    assert tokens.encoded == ["which river flows", "rivers wind far", "mountains stand", "forests grow"]
    later = aligner.scores("where mountains stand", ["mountains stand", "rivers wind far"])
    assert tokens.encoded[4:] == ["where mountains stand"]  # a new question; its statements were seen
    assert later[0] > later[1]


def test_the_statement_cache_keeps_to_its_size():
    tokens = _Counting()
    one = 26 * 4 * 2  # the states of a two-word statement (two pieces of 26 float32)
    aligner = Aligner(tokens, cache_bytes=2 * one)
    aligner.scores("which river", ["rivers wind", "mountains stand", "forests grow"])
    aligner.scores("which forest", ["rivers wind"])  # the oldest was dropped: encoded again
    assert tokens.encoded == [
        "which river",
        "rivers wind",
        "mountains stand",
        "forests grow",
        "which forest",
        "rivers wind",
    ]
    aligner.scores("which mountain", ["forests grow"])  # still cached
    assert tokens.encoded[-1] == "which mountain"


class _Favours:
    """An aligner that scores a statement by whether it holds a given word."""

    available = True

    def __init__(self, word: str):
        self.word = word

    def scores(self, question, statements):
        return [1.0 if self.word in s else 0.0 for s in statements]


def test_an_english_question_s_passages_are_reordered_by_alignment(engine):
    pipeline = engine.pipeline()
    retriever, composer = pipeline.retriever, pipeline.composer
    analysis = analyse("How does China secure its raw materials?")
    question = Question.read(analysis, retriever.stats)
    hits = retriever.search(analysis, k=8)
    target = hits[RERANK_DEPTH - 1]  # the last passage the rerank reads
    word = _texts(composer, target)[0]  # a statement only that passage holds, as alignment reads it

    out = reranked(question, hits, composer.statements, _Favours(word))

    assert out[0].id == target.id  # alignment lifted the passage retrieval put last of those it reads
    assert sorted(h.id for h in out) == sorted(h.id for h in hits)  # nothing lost, nothing added
    assert [h.rank for h in out] == list(range(1, len(out) + 1))
    scores = [h.score for h in out]
    assert scores == sorted(scores, reverse=True)  # the later passages stay below the reordered ones
    assert out[RERANK_DEPTH:] == hits[RERANK_DEPTH:]
    # Korean questions, and aligners without token states, keep retrieval's order.
    korean = analyse("중국의 원자재 확보 방법은?")
    assert reranked(Question.read(korean, retriever.stats), hits, composer.statements, _Favours(word)) == hits
    assert reranked(question, hits, composer.statements, Aligner(object())) == hits


def _texts(composer, hit) -> list[str]:
    doc = composer.statements.texts[hit.chunk.source]
    return [aligned_text(hit.chunk, doc[a:b]) for a, b in hit.chunk.statements] or [hit.chunk.text]


def test_alignment_reads_a_table_row_with_its_headers(engine):
    retriever = engine.pipeline().retriever
    row = next(c for c in retriever.chunks if c.kind == "table_row" and c.cells)
    text = aligned_text(row, row.text)
    assert all(f"{header}: {cell}" in text for header, cell in row.cells)
    prose = next(c for c in retriever.chunks if c.kind == "paragraph")
    assert aligned_text(prose, "한 문장.") == "한 문장."
