"""Fast unit tests of the plumbing over the fake embedder: fusion, retrieval order, the answer contract.

What these answer depends on the real model, and test_answer.py checks that; here only the
shape of results and the arithmetic that joins the pieces are under test, in milliseconds.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from aiqa.contract import ask_json
from aiqa.errors import BadRequest
from aiqa.evaluate import squash
from aiqa.retrieve import DENSE_WEIGHT, fuse

from .conftest import REPORT

CONTRACT = {"question", "answer", "abstained", "mode", "language", "resolved_question", "citations", "passages"}
CONTRACT |= {"related"}
SOFTWARE_ROW = "PyTorch, TensorFlow, CUDA 등 글로벌 표준"


def test_fusion_leans_on_keywords_only_as_far_as_the_words_are_known():
    dense = np.array([0.9, 0.5, 0.1], dtype=np.float32)
    keyword = np.array([0.0, 0.2, 1.0], dtype=np.float32)
    np.testing.assert_allclose(
        fuse(dense, keyword, known=0.0), [1.0, 0.5, 0.0], atol=1e-6
    )  # dense alone, min-max scaled
    keyword_weight = 1 - DENSE_WEIGHT
    expected = (1 - keyword_weight) * np.array([1.0, 0.5, 0.0]) + keyword_weight * keyword
    np.testing.assert_allclose(fuse(dense, keyword, known=1.0), expected, atol=1e-6)
    # An English question over Korean text knows few words: the dense order stands; a known one flips it.
    assert int(np.argmax(fuse(dense, keyword, known=0.0))) == 0 and int(np.argmax(fuse(dense, keyword, 1.0))) == 2


def test_fusion_scores_chunks_beyond_the_dense_depth_as_zero_and_flat_scores_as_one():
    dense = np.array([np.nan, 0.8, 0.4], dtype=np.float32)
    np.testing.assert_allclose(fuse(dense, np.zeros(3, np.float32), known=0.0), [0.0, 1.0, 0.0], atol=1e-6)
    flat = np.array([0.3, 0.3, np.nan], dtype=np.float32)
    np.testing.assert_allclose(fuse(flat, np.zeros(3, np.float32), known=0.0), [1.0, 1.0, 0.0], atol=1e-6)


def test_search_ranks_hits_best_first_and_points_at_their_chunks(fake_engine):
    retriever = fake_engine.pipeline().retriever
    hits = retriever.search(SOFTWARE_ROW, k=7)
    assert [h.rank for h in hits] == list(range(1, 8))
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert all(h.chunk is retriever.chunks[h.id] for h in hits)
    assert hits[0].chunk.locator == "lines 7-8, table 1, row 3" and hits[0].keyword == 1.0
    assert len({h.id for h in hits}) == 7


def test_a_search_also_returns_the_wanted_passages_of_its_documents_after_the_best(fake_engine):
    retriever = fake_engine.pipeline().retriever
    plain = retriever.search(SOFTWARE_ROW, k=2)
    found = [u.chunk for h in plain for u in (h, *h.units)]
    bullets = [c for c in retriever.chunks if c.source == plain[0].chunk.source and c.kind == "bullet"]
    far = [c for c in bullets if all(c is not f for f in found)][-1]  # a unit the search did not find
    hits = retriever.search(SOFTWARE_ROW, k=2, also=lambda chunk: chunk is far)
    assert [h.id for h in hits[:2]] == [h.id for h in plain]  # the best stay first
    assert len(hits) == 3 and any(far is u.chunk for u in (hits[2], *hits[2].units))
    assert retriever.search(SOFTWARE_ROW, k=2, also=lambda chunk: False) == plain


def test_an_answer_is_the_contract_with_every_marker_cited_verbatim(fake_engine):
    result = ask_json(fake_engine, SOFTWARE_ROW, 3)
    assert CONTRACT | {"timings_ms"} <= set(result)
    steps = {"analyse", "embed", "dense", "keyword", "fuse", "rerank"}
    assert set(result["timings_ms"]) == {"retrieve", "answer", "compose"} | steps
    assert abs(result["timings_ms"]["retrieve"] - sum(result["timings_ms"][s] for s in steps)) < 0.1
    assert result["question"] == SOFTWARE_ROW and not result["abstained"] and result["related"] == []
    assert [p["rank"] for p in result["passages"]] == [1, 2, 3]
    assert {int(n) for n in re.findall(r"\[(\d+)\]", result["answer"])} == {c["n"] for c in result["citations"]}
    report = squash(REPORT.read_text(encoding="utf-8"))
    for c in result["citations"]:
        assert {"n", "source", "section", "locator", "quote", "passage"} <= set(c)
        assert squash(c["quote"]) in squash(c["passage"]) and squash(c["passage"]) in report


def test_an_abstention_lists_related_passages_but_cites_nothing(fake_engine):
    result = ask_json(fake_engine, "What is the capital of France?")
    assert result["abstained"] and result["language"] == "en"
    assert result["answer"].startswith("The documents do not answer this")
    assert result["citations"] == [] and result["related"] and len(result["passages"]) == 5


@pytest.mark.parametrize(
    ("question", "k", "history", "message"),
    [
        ("", 5, None, "question is empty"),
        ("   ", 5, None, "question is empty"),
        (123, 5, None, "question must be a string"),
        ("가" * 1001, 5, None, "over 1000 characters"),
        ("질문", 0, None, "k must be a whole number from 1 to 50"),
        ("질문", 51, None, "k must be a whole number from 1 to 50"),
        ("질문", True, None, "k must be a whole number"),
        ("질문", "5", None, "k must be a whole number"),
        ("질문", 5, "earlier question", "history must be a list"),
        ("질문", 5, [1], "history items must be strings"),
        ("질문", 5, [{"role": "user"}], "needs a text 'content'"),
    ],
)
def test_bad_questions_are_refused_with_what_is_wrong(fake_engine, question, k, history, message):
    with pytest.raises(BadRequest, match=re.escape(message)):
        ask_json(fake_engine, question, k, history)


def test_a_turn_is_analysed_by_kiwi_once(fake_engine, monkeypatch):
    """One Kiwi pass per text of a turn: the question, each earlier question, what a follow-up resolves to.

    Each turn is asked twice: the first time also analyses the statements of its passages (kept
    per index version), so the second time only the turn's own texts can reach Kiwi.
    """
    import aiqa.text.korean as korean

    seen: list[str] = []
    real = korean._analyse
    monkeypatch.setattr(korean, "_analyse", lambda text: seen.append(text) or real(text))
    question = "미국의 AI 반도체는?"
    for _ in range(2):
        seen.clear()
        reply = fake_engine.ask(question)
    assert seen == [question]
    assert reply.language == "ko" and reply.answer.question == question
    follow_up, earlier = "중국은?", ["미국의 AI 반도체는?", "그럼 일본은?"]
    for _ in range(2):
        seen.clear()
        reply = fake_engine.ask(follow_up, history=earlier)
    resolved = reply.answer.resolved_question
    assert resolved != follow_up and resolved.startswith(follow_up)
    assert len(seen) == len(set(seen)) and {follow_up, *earlier, resolved} <= set(seen)
    assert seen.count(follow_up) == 1


def test_a_turn_is_read_into_a_query_before_any_index_is_touched():
    from aiqa.pipeline import QueryLimits, read_query

    query = read_query("  그럼 중국은?  ", 3, ["미국의 AI 반도체는?"], QueryLimits(max_k=5))
    assert query.question == "그럼 중국은?" and query.k == 3 and query.language == "ko"
    assert query.analysis.text.startswith("그럼 중국은?") and "반도체" in query.analysis.terms
    with pytest.raises(BadRequest, match="k must be a whole number from 1 to 5"):
        read_query("중국은?", 6, None, QueryLimits(max_k=5))
    assert read_query("What about China's chips?", 5).language == "en"
