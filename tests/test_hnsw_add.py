"""A version that only adds documents adds their vectors to the live HNSW graph; any other change rebuilds it."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np

from aiqa.build import build_index
from aiqa.contract import ask_json
from aiqa.index import dense
from aiqa.retrieve import Retriever
from aiqa.stores.registry import load_index

from .conftest import REPORT, REPORT_QUESTIONS, engine_over

ADDED = (
    "# 오로라 프로젝트\n\n오로라 프로젝트는 2027년 3월에 시작하는 사내 위성 통신 과제이다.\n\n"
    "오로라 프로젝트의 예산은 37억 원이며, 책임자는 한빛 연구소의 김서연 박사이다.\n"
)
QUESTIONS = [json.loads(line)["q"] for line in REPORT_QUESTIONS.read_text(encoding="utf-8").splitlines()][:15]
QUESTIONS += ["오로라 프로젝트의 예산은 얼마인가?", "오로라 프로젝트의 책임자는 누구인가?"]


def _settings(fake_settings, root, name: str):
    corpus = root / name / "corpus"
    corpus.mkdir(parents=True)
    shutil.copy(REPORT, corpus / REPORT.name)
    return dataclasses.replace(fake_settings, corpus_dir=corpus, index_dir=root / name / "index", ann_threshold=10)


def _hits(settings, embedder) -> list[list[tuple[str, int]]]:
    index = load_index(settings)
    retriever = Retriever(index, embedder)
    return [[(h.chunk.source, h.chunk.start) for h in retriever.search(q)] for q in QUESTIONS]


def test_an_added_document_goes_into_the_previous_graph_and_answers_as_a_rebuild(
    tmp_path, fake_settings, fake_embedder
):
    grown = _settings(fake_settings, tmp_path, "grown")
    build_index(grown, embedder_factory=lambda: fake_embedder)
    first = load_index(grown)
    assert first.manifest["dense"]["kind"] == "hnsw-flat" and "added_to" not in first.manifest["dense"]
    (grown.corpus_dir / "aurora.md").write_text(ADDED, encoding="utf-8")
    build_index(grown, embedder_factory=lambda: fake_embedder)
    second = load_index(grown)
    assert second.manifest["dense"]["added_to"] == first.version  # the graph was extended, not rebuilt
    assert second.search.vector_count > first.search.vector_count

    rebuilt = _settings(fake_settings, tmp_path, "rebuilt")
    (rebuilt.corpus_dir / "aurora.md").write_text(ADDED, encoding="utf-8")
    build_index(rebuilt, embedder_factory=lambda: fake_embedder)
    fresh = load_index(rebuilt)
    assert "added_to" not in fresh.manifest["dense"]
    # The same vectors (a rebuild orders documents by path; the added one came last here).
    assert np.array_equal(np.unique(second.search.all_rows(), axis=0), np.unique(fresh.search.all_rows(), axis=0))
    assert _hits(grown, fake_embedder) == _hits(rebuilt, fake_embedder)
    for question in QUESTIONS[-2:]:
        a = ask_json(engine_over(grown, fake_embedder).load(), question)
        b = ask_json(engine_over(rebuilt, fake_embedder).load(), question)
        assert a["answer"] == b["answer"] and a["citations"] == b["citations"]


def test_a_removed_or_changed_document_rebuilds_the_graph(tmp_path, fake_settings, fake_embedder):
    settings = _settings(fake_settings, tmp_path, "changed")
    (settings.corpus_dir / "aurora.md").write_text(ADDED, encoding="utf-8")
    build_index(settings, embedder_factory=lambda: fake_embedder)
    (settings.corpus_dir / "aurora.md").write_text(ADDED.replace("37억", "41억"), encoding="utf-8")
    build_index(settings, embedder_factory=lambda: fake_embedder)
    assert "added_to" not in load_index(settings).manifest["dense"]
    (settings.corpus_dir / "aurora.md").unlink()
    build_index(settings, embedder_factory=lambda: fake_embedder)
    assert "added_to" not in load_index(settings).manifest["dense"]


def test_extend_takes_only_a_graph_whose_rows_lead_the_new_matrix():
    rng = np.random.default_rng(3)
    matrix = rng.normal(size=(300, 16)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    assert dense.extend(dense.build(matrix[:200], 10), matrix, 10).ntotal == 300
    assert dense.extend(dense.build(matrix[100:300], 10), matrix, 10) is None  # other rows first
    assert dense.extend(dense.build(matrix[:200], 1000), matrix, 10) is None  # exact search, no graph
    assert dense.extend(dense.build(matrix[:200], 10), matrix[:250], 400) is None  # now under the threshold
