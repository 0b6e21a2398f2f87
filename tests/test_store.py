"""The index's two search structures at any size: sparse BM25+ postings and the exact/HNSW dense switch."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from aiqa.build import build_index
from aiqa.chunk import chunk_document
from aiqa.contract import ask_json
from aiqa.index import dense
from aiqa.index.keyword import KeywordIndex, build_keywords, token_counts
from aiqa.ingest import read_document
from aiqa.retrieve import Retriever
from aiqa.stores.registry import load_index
from aiqa.text.korean import analyse
from aiqa.text.tokens import count_tokens

from .conftest import REPO, REPORT, REPORT_QUESTIONS, engine_over


def _questions() -> list[str]:
    files = (REPORT_QUESTIONS, REPO / "bench" / "questions.jsonl", REPO / "bench" / "report_calibration.jsonl")
    return [json.loads(line)["q"] for path in files for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def report_tokens() -> list[list[str]]:
    chunks = chunk_document(read_document(REPORT, REPORT.parent, max_bytes=10**8), count_tokens, 256)
    return [list(analyse(c.context).tokens) for c in chunks]


def test_sparse_bm25_scores_and_ranks_as_the_reference_bm25plus(report_tokens):
    from rank_bm25 import BM25Plus

    reference = BM25Plus([tokens or ["<empty>"] for tokens in report_tokens])
    postings = build_keywords(token_counts(tokens) for tokens in report_tokens)
    questions = _questions()
    assert len(questions) > 100
    for question in questions:
        query = list(analyse(question).tokens)
        expected = np.asarray(reference.get_scores(query))
        got = postings.scores(query)
        assert np.allclose(got, expected, rtol=1e-5, atol=1e-4), question
        top = np.argsort(-expected, kind="stable")[:10]
        # Equal scores may swap; the scores at each rank may not.
        assert np.allclose(expected[top], got[np.argsort(-got, kind="stable")[:10]], rtol=1e-5), question


def test_postings_round_trip_through_files_memory_mapped(tmp_path, report_tokens):
    built = build_keywords(token_counts(tokens) for tokens in report_tokens)
    names = built.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)
    loaded = KeywordIndex.load(tmp_path)
    assert isinstance(loaded.term_weights, np.memmap)
    assert loaded.terms == built.terms
    for i in range(len(built)):
        assert loaded.chunk_counts_of(i) == token_counts(report_tokens[i])
    query = list(analyse("중국의 AI 반도체 수출 통제").tokens)
    assert np.array_equal(loaded.scores(query), built.scores(query))


def test_reused_chunk_counts_give_the_same_postings_as_a_fresh_build(report_tokens):
    fresh = build_keywords(token_counts(tokens) for tokens in report_tokens)
    half = len(report_tokens) // 2
    first = build_keywords(token_counts(tokens) for tokens in report_tokens[:half])
    reused = [first.chunk_counts_of(i) for i in range(half)]
    again = build_keywords([*reused, *(token_counts(tokens) for tokens in report_tokens[half:])])
    query = list(analyse("미국의 관세와 중국의 자급률").tokens)
    assert np.allclose(again.scores(query), fresh.scores(query))
    assert sorted(again.terms) == sorted(fresh.terms)


def _clustered(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    """Unit vectors around a few hundred centres, as texts on a few hundred topics would be."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(300, dim))
    matrix = centres[rng.integers(0, 300, n)] + 0.35 * rng.normal(size=(n, dim))
    return (matrix / np.linalg.norm(matrix, axis=1, keepdims=True)).astype(np.float32)


def test_dense_index_switches_to_ivf_above_the_threshold_and_finds_the_same_top_hit(tmp_path):
    matrix = _clustered(6000)
    exact = dense.build(matrix, threshold=6000)
    approximate = dense.build(matrix, threshold=5999)
    assert dense.describe(exact) == {"kind": "flat"}
    assert dense.describe(approximate)["kind"] == "hnsw-flat"
    dense.write(approximate, tmp_path / "vectors.faiss")
    loaded = dense.read(tmp_path / "vectors.faiss")
    # Stored vectors come back exact (HNSW-Flat keeps them whole), so reuse in the next build loses nothing.
    assert np.array_equal(dense.all_rows(loaded), matrix)
    rng = np.random.default_rng(1)
    queries = matrix[rng.choice(6000, 200, replace=False)] + 0.05 * rng.normal(size=(200, 32)).astype(np.float32)
    same = 0
    for query in queries / np.linalg.norm(queries, axis=1, keepdims=True):
        same += dense.search(exact, query, 10)[1][0] == dense.search(loaded, query, 10)[1][0]
    assert same == len(queries)


def test_an_index_past_the_threshold_is_built_approximate_and_answers_like_the_exact_one(
    tmp_path, cache_dir, fake_embedder, fake_settings
):
    exact = load_index(fake_settings)
    settings = dataclasses.replace(fake_settings, index_dir=tmp_path / "index", ann_threshold=10)
    build_index(settings, embedder_factory=lambda: fake_embedder)
    approximate = load_index(settings)
    assert approximate.manifest["dense"]["kind"] == "hnsw-flat"
    assert exact.manifest["dense"] == {"kind": "flat"}
    for question in _questions()[:20]:
        expected = [(h.chunk.source, h.chunk.start) for h in Retriever(exact, fake_embedder).search(question)]
        got = [(h.chunk.source, h.chunk.start) for h in Retriever(approximate, fake_embedder).search(question)]
        assert got[:1] == expected[:1], question
    answer = ask_json(engine_over(settings, fake_embedder).load(), "미국의 대중 반도체 수출 통제는?")
    assert answer["citations"] or answer["abstained"]
