"""The index on either store, end to end: FAISS files and Milvus (through Milvus Lite, the same client code).

Most tests run over both stores with the fake embedder (what is under test is how versions are
written, swapped and searched); the ones whose outcome depends on the model use the real one.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import httpx
import numpy as np
import pytest

if importlib.util.find_spec("milvus_lite") is None:  # found, not imported: collection stays light
    pytest.skip(
        "milvus-lite is not installed: pip install -e '.[test]' to test AIQA_STORE=milvus", allow_module_level=True
    )

from aiqa.build import build_index
from aiqa.chunk import chunk_views
from aiqa.config import Settings
from aiqa.contract import ask_json
from aiqa.errors import BadSetting
from aiqa.evaluate import contains, load_cases
from aiqa.retrieve import Retriever
from aiqa.stores.registry import live_version, load_index
from aiqa.text.korean import analyse

from .conftest import ADMIN, CORPUS, REPO, REPORT_QUESTIONS, SRC, engine_over
from .test_index import AURORA, HANBIT, Recording, no_model

# Milvus Lite starts a server process: a test on it is in the slow tier (tests/README.md).
STORES = ["faiss", pytest.param("milvus", marks=pytest.mark.model)]
CASES = [case for case in load_cases(REPORT_QUESTIONS) if case.answerable is not False]


def store_settings(root: Path, store: str, cache_dir: Path, embed_model: str, corpus: Path | None = None) -> Settings:
    """Settings over a corpus under `root` whose index lives on `store` (a Milvus Lite file under `root`)."""
    if corpus is not None:
        shutil.copytree(corpus, root / "corpus")
    (root / "corpus").mkdir(exist_ok=True)
    return Settings(
        corpus_dir=root / "corpus",
        index_dir=root / "index",
        cache_dir=cache_dir,
        embed_model=embed_model,
        store=store,
        milvus_uri=str(root / "milvus.db"),
    )


@pytest.fixture(params=STORES)
def store(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def milvus_report(tmp_path_factory, cache_dir, embedder) -> Settings:
    """The bundled report indexed on Milvus Lite with the real model."""
    settings = store_settings(tmp_path_factory.mktemp("milvus-report"), "milvus", cache_dir, embedder.name, CORPUS)
    build_index(settings, embedder_factory=lambda: embedder)
    return settings


@pytest.fixture(scope="module")
def milvus_engine(milvus_report, embedder):
    return engine_over(milvus_report, embedder).load()


@pytest.fixture
def engine_on(request, engine, milvus_engine):
    """The real-model engine over the report on the store named by the test's `store`."""
    return {"faiss": engine, "milvus": milvus_engine}[request.getfixturevalue("store")]


def test_the_report_is_indexed_whole_and_its_vectors_are_the_models(tmp_path, cache_dir, fake_embedder, store):
    settings = store_settings(tmp_path, store, cache_dir, fake_embedder.name, CORPUS)
    recording = Recording(fake_embedder)
    report = build_index(settings, embedder_factory=lambda: recording)
    index = load_index(settings)
    assert report.chunks == len(index.chunks) > 10 and report.index_version == index.version == live_version(settings)
    assert index.search.vector_count == sum(len(chunk_views(c)) for c in index.chunks) == len(recording.texts)
    assert recording.texts == [v for c in index.chunks for v in chunk_views(c)]
    np.testing.assert_array_equal(index.search.all_rows(), np.vstack(recording.vectors))
    assert set(index.documents) == {p.name for p in CORPUS.iterdir()} == set(index.manifest["documents"])
    for source, doc in index.documents.items():
        assert all(doc.text[c.start : c.end] == c.text for c in index.chunks if c.source == source)
    start, end = int(index.offsets[3]), int(index.offsets[4])
    np.testing.assert_array_equal(index.search.rows(start, end - start), np.vstack(recording.vectors)[start:end])


def test_incremental_rebuilds_add_and_delete_documents_on_either_store(tmp_path, cache_dir, fake_embedder, store):
    settings = store_settings(tmp_path, store, cache_dir, fake_embedder.name)
    (settings.corpus_dir / "hanbit.md").write_text(HANBIT, encoding="utf-8")
    first = build_index(settings, embedder_factory=lambda: fake_embedder)
    hanbit = load_index(settings)
    hanbit_rows = hanbit.search.all_rows()

    again = build_index(settings, embedder_factory=no_model)  # nothing changed: no model, same version
    assert again.index_version == first.index_version == live_version(settings) and again.unchanged == 1

    (settings.corpus_dir / "aurora.md").write_text(AURORA, encoding="utf-8")
    recording = Recording(fake_embedder)
    added = build_index(settings, embedder_factory=lambda: recording)
    index = load_index(settings)
    assert (added.added, added.unchanged, added.removed) == (1, 1, 0) and index.version == added.index_version
    assert recording.texts and all(c.source == "aurora.md" for c in index.chunks[len(hanbit.chunks) :])
    assert index.chunks[: len(hanbit.chunks)] == hanbit.chunks  # carried over, not re-embedded
    np.testing.assert_array_equal(index.search.all_rows()[: len(hanbit_rows)], hanbit_rows)
    assert index.keywords.document_frequency("김서연") == 1 and "zx-4471" in {t.lower() for t in index.keywords.terms}

    (settings.corpus_dir / "hanbit.md").unlink()
    removed = build_index(settings, embedder_factory=no_model)
    index = load_index(settings)
    assert (removed.removed, removed.unchanged) == (1, 1) and {c.source for c in index.chunks} == {"aurora.md"}
    assert set(index.manifest["documents"]) == set(index.documents) == {"aurora.md"}
    assert index.keywords.document_frequency("김서연") == 0
    retriever = Retriever(index, fake_embedder)
    assert {h.chunk.source for h in retriever.search("프로젝트 한빛의 예산 책임자", k=3)} == {"aurora.md"}
    if store == "milvus":  # the live version and the one before it stay; older ones are dropped
        from aiqa.stores.milvus import milvus_store

        kept = milvus_store(settings)._versions()
        assert kept == sorted(milvus_store(settings).collection(v) for v in (added.index_version, index.version))


@pytest.mark.model  # Milvus Lite
def test_milvus_search_scores_as_the_faiss_store_does(fake_settings, tmp_path, cache_dir, fake_embedder):
    """Same chunks, same vectors, same BM25+: the stores differ only in where the arithmetic runs."""
    faiss_index = load_index(fake_settings)
    settings = store_settings(tmp_path, "milvus", cache_dir, fake_embedder.name, fake_settings.corpus_dir)
    build_index(settings, embedder_factory=lambda: fake_embedder)
    milvus_index = load_index(settings)
    assert milvus_index.chunks == faiss_index.chunks and milvus_index.keywords.terms == faiss_index.keywords.terms
    here, there = Retriever(faiss_index, fake_embedder), Retriever(milvus_index, fake_embedder)
    for case in load_cases(REPORT_QUESTIONS):
        terms = here.stats.normalize(analyse(case.q).tokens)
        np.testing.assert_allclose(milvus_index.search.keyword(terms), faiss_index.keywords.scores(terms), rtol=1e-5)
        vector = fake_embedder.embed_queries([case.q])[0]
        a, b = faiss_index.search.dense(vector, 20), milvus_index.search.dense(vector, 20)
        np.testing.assert_allclose(a[0], b[0], atol=1e-5)
        hits_here, hits_there = here.search(case.q, k=5), there.search(case.q, k=5)
        assert [h.id for h in hits_here] == [h.id for h in hits_there], case.q
        statements = [[s for h in hits for s in h.statement_dense] for hits in (hits_here, hits_there)]
        assert statements[0] and statements[0] == pytest.approx(statements[1], abs=1e-5)


@pytest.mark.model  # Milvus Lite
def test_a_milvus_version_past_the_threshold_gets_a_graph_and_answers_like_the_exact_one(
    fake_settings, tmp_path, cache_dir, fake_embedder
):
    exact = load_index(fake_settings)
    settings = replace(
        store_settings(tmp_path, "milvus", cache_dir, fake_embedder.name, fake_settings.corpus_dir), ann_threshold=10
    )
    build_index(settings, embedder_factory=lambda: fake_embedder)
    graph = load_index(settings)
    assert graph.manifest["dense"] == {"kind": "milvus", "index": "HNSW"}
    for case in load_cases(REPORT_QUESTIONS):
        vector = fake_embedder.embed_queries([case.q])[0]
        (got, got_ids), (expected, expected_ids) = graph.search.dense(vector, 10), exact.search.dense(vector, 10)
        np.testing.assert_allclose(got, expected, atol=1e-5)  # the same ten best scores (ties may swap rows)
        assert got_ids[0] == expected_ids[0], case.q


@pytest.mark.parametrize("store", STORES)
@pytest.mark.parametrize(
    ("question", "cited"),
    [("해외로 나간 인재를 중국이 귀국시키는 제도는?", "천인계획"), ("미국 쪽 AI 칩으로는 무엇이 있나?", "NVIDIA A100")],
)
def test_asks_are_answered_and_cited_from_either_store(engine_on, store, question, cited):
    result = ask_json(engine_on, question)
    assert not result["abstained"] and cited in result["answer"], result["answer"]
    assert any(cited in c["quote"] for c in result["citations"]), result["citations"]
    corpus = "".join(p.read_text(encoding="utf-8") for p in CORPUS.iterdir())
    assert all(c["quote"] in corpus for c in result["citations"])  # quoted from the stored document texts
    assert engine_on.index.manifest["dense"]["kind"] == ("milvus" if store == "milvus" else "flat")


@pytest.mark.parametrize("store", STORES)
@pytest.mark.parametrize("question", ["김치찌개 끓이는 법을 알려줘", "일본의 AI 반도체 전략은?"])
def test_abstains_on_either_store(engine_on, store, question):
    result = ask_json(engine_on, question)
    assert result["abstained"] and not result["citations"] and result["passages"]


def test_both_stores_find_the_same_passages_for_the_shipped_questions(engine, milvus_engine):
    """hit@5 as `aiqa eval` counts it (a passage holds a gold string), and the very same top five."""
    found = {}
    for name, on in (("faiss", engine), ("milvus", milvus_engine)):
        retriever = on.pipeline().retriever
        found[name] = [[h.chunk for h in retriever.search(case.q, k=5)] for case in CASES]
    assert [[(c.source, c.start) for c in top] for top in found["faiss"]] == [
        [(c.source, c.start) for c in top] for top in found["milvus"]
    ]
    hit_at_5 = {
        name: sum(
            any(contains(c.text, g) for c in top for g in case.gold) for case, top in zip(CASES, tops, strict=True)
        )
        / len(CASES)
        for name, tops in found.items()
    }
    assert hit_at_5["faiss"] >= 0.8  # the questions are answerable: two empty results would also "agree"
    assert abs(hit_at_5["faiss"] - hit_at_5["milvus"]) <= 0.01


def test_the_server_rebuild_route_swaps_the_milvus_version_without_restart(tmp_path, milvus_report, embedder):
    from .test_server import ThreadedServer

    root = tmp_path / "site"
    settings = replace(
        store_settings(root, "milvus", milvus_report.cache_dir, embedder.name, milvus_report.corpus_dir),
        admin_token=ADMIN,
    )
    build_index(settings, embedder_factory=lambda: embedder)
    first, replica = engine_over(settings, embedder).load(), engine_over(settings, embedder).load()
    question = "프로젝트 한빛의 예산 책임자는 누구인가?"
    assert ask_json(replica, question)["abstained"]
    with ThreadedServer(settings, first) as server:
        (settings.corpus_dir / "hanbit.md").write_text(HANBIT, encoding="utf-8")
        r = httpx.post(f"{server.url}/api/index", headers={"Authorization": f"Bearer {ADMIN}"}, timeout=120)
        assert r.status_code == 200 and r.json()["added"] == 1, r.text
        health = httpx.get(f"{server.url}/api/health").json()
        assert health["index_version"] == r.json()["index_version"] == live_version(settings)
        served = httpx.post(f"{server.url}/api/ask", json={"question": question}).json()
    # Both the serving engine and the one that never rebuilt anything answer from the new version.
    for answer in (served, ask_json(replica, question)):
        assert not answer["abstained"] and any("김서연" in c["quote"] for c in answer["citations"]), answer


def test_index_ask_and_eval_commands_run_on_milvus(tmp_path, monkeypatch, capsys, shared_model):
    """`aiqa index`, `ask` and `eval` as a user runs them, with AIQA_STORE=milvus and a Milvus Lite file."""
    import json

    from aiqa.cli import main

    shutil.copytree(CORPUS, tmp_path / "corpus")
    for name, value in {"STORE": "milvus", "MILVUS_URI": str(tmp_path / "data" / "milvus.db")}.items():
        monkeypatch.setenv(f"AIQA_{name}", value)
    paths = ["--index", str(tmp_path / "index")]
    capsys.readouterr()
    assert main(["index", "--json", "--corpus", str(tmp_path / "corpus"), *paths]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["added"] == 1 and report["chunks"] > 10 and (tmp_path / "data" / "milvus.db").exists()
    assert main(["ask", "--json", "해외로 나간 인재를 중국이 귀국시키는 제도는?", *paths]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert not answer["abstained"] and any("천인계획" in c["quote"] for c in answer["citations"])
    assert main(["eval", "--json", str(REPORT_QUESTIONS), *paths]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["crashes"] == 0 and figures["recall@5"] >= 0.9 and figures["abstention_accuracy"] == 1.0


# Builds in a child process that exits at once (SIGKILL) part way through writing the new
# collection: Milvus Lite opens a file in one process at a time, so the test reads it afterwards.
CHILD = r"""
import os, signal, sys
from pathlib import Path

from aiqa.config import Settings
from aiqa.build import build_index
import aiqa.stores.milvus as milvus
from tests.fakes import FakeEmbedder

root, moment = Path(sys.argv[1]), sys.argv[2]
settings = Settings(corpus_dir=root / "corpus", index_dir=root / "index", store="milvus",
                    milvus_uri=str(root / "milvus.db"), embed_model=FakeEmbedder.name)
if moment == "writing":
    create = milvus.create_collection

    def create_then_die_on_insert(client, *args):
        create(client, *args)
        insert = client.insert

        def insert_once_then_die(collection, rows):
            insert(collection, rows[:1])
            os.kill(os.getpid(), signal.SIGKILL)

        client.insert = insert_once_then_die

    milvus.create_collection = create_then_die_on_insert
print(build_index(settings, embedder_factory=FakeEmbedder).index_version, flush=True)
"""


def run_child(root: Path, moment: str) -> subprocess.CompletedProcess:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AIQA_")},
        "PYTHONPATH": os.pathsep.join([str(SRC), str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run([sys.executable, "-c", CHILD, str(root), moment], capture_output=True, text=True, env=env)


@pytest.mark.model  # Milvus Lite
def test_a_milvus_build_killed_midway_leaves_the_old_alias_answering(tmp_path, cache_dir, fake_embedder):
    settings = store_settings(tmp_path, "milvus", cache_dir, fake_embedder.name)
    (settings.corpus_dir / "hanbit.md").write_text(HANBIT, encoding="utf-8")
    built = run_child(tmp_path, "whole")
    assert built.returncode == 0, built.stderr[-2000:]
    live = built.stdout.split()[-1]
    (settings.corpus_dir / "aurora.md").write_text(AURORA, encoding="utf-8")
    killed = run_child(tmp_path, "writing")
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr[-2000:]

    from aiqa.stores.milvus import milvus_store

    store = milvus_store(settings)
    assert len(store._versions()) == 2  # the killed build's collection is there, unfinished
    assert live_version(settings) == live
    index = load_index(settings)
    assert index.version == live and {c.source for c in index.chunks} == {"hanbit.md"}
    hits = Retriever(index, fake_embedder).search("프로젝트 한빛의 예산 책임자는 누구인가?", k=3)
    assert hits and hits[0].chunk.source == "hanbit.md" and "김서연" in " ".join(h.chunk.text for h in hits)

    report = build_index(settings, embedder_factory=lambda: fake_embedder)
    assert (report.added, report.unchanged) == (1, 1)
    assert store._versions() == sorted(store.collection(v) for v in (live, report.index_version))


def test_the_faiss_store_never_imports_pymilvus_and_a_wrong_store_name_says_what_to_do(fake_settings, monkeypatch):
    model = fake_settings.embed_model
    code = (
        "import sys; from pathlib import Path; from aiqa.config import Settings; "
        "from aiqa.stores.registry import load_index; "
        f"load_index(Settings(index_dir=Path(sys.argv[1]), embed_model={model!r})); "
        "print(','.join(m for m in ('pymilvus', 'milvus_lite') if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    env.pop("AIQA_STORE", None)
    run = subprocess.run(
        [sys.executable, "-c", code, str(fake_settings.index_dir)], capture_output=True, text=True, env=env
    )
    assert run.returncode == 0 and run.stdout.strip() == "", run.stderr[-2000:]
    monkeypatch.setenv("AIQA_STORE", "elastic")
    with pytest.raises(BadSetting, match="AIQA_STORE='elastic' is not one of faiss, milvus"):
        Settings()
