"""The index on FAISS files against the index on Milvus Lite: build, load, query time and hit@5, side by side.

Usage: .venv/bin/python bench/milvus.py [--set NAME=CORPUS:QUESTIONS ...] [--json out.json]

Default sets: the bundled report (corpus/ with tests/data/report_questions.jsonl) and, if it is
there, the KorQuAD calibration set (.cache/calibration/korquad/{corpus,report.jsonl} in the
repository; pass --set to point elsewhere). For each set, one process: the model embeds every
chunk once and both stores are built from those vectors (so build times compare the stores, not
the model), then every question is embedded once and searched on both stores. hit@5 counts an
answerable question whose top five passages hold a gold string (as `aiqa eval` does). Milvus's own
hybrid search (its weighted and RRF rankers over the same two searches) is measured beside aiqa's
fusion on the same collection.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from aiqa.build import build_index
from aiqa.config import Settings
from aiqa.embedders.registry import load_embedder
from aiqa.evaluate import contains, is_answerable, load_cases
from aiqa.retrieve import Retriever
from aiqa.stores.registry import load_index
from aiqa.text.korean import analyse
from evalsets import REPO

CALIBRATION = REPO / ".cache" / "calibration" / "korquad"
DEFAULT_SETS = [
    f"report={REPO / 'corpus'}:{REPO / 'tests' / 'data' / 'report_questions.jsonl'}",
    f"korquad={CALIBRATION / 'corpus'}:{CALIBRATION / 'report.jsonl'}",
]


class Cached:
    """The model, remembering what it embedded: the second store's build reuses the first's vectors."""

    def __init__(self, inner: Any):
        self.inner, self.memo, self.seconds = inner, {}, 0.0

    def embed_passages(self, texts: list[str], **kwargs: Any) -> np.ndarray:
        todo = [t for t in dict.fromkeys(texts) if t not in self.memo]
        if todo:
            t = time.perf_counter()
            for text, vector in zip(todo, self.inner.embed_passages(todo, **kwargs), strict=True):
                self.memo[text] = vector
            self.seconds += time.perf_counter() - t
        return np.vstack([self.memo[t] for t in texts])

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self.inner.embed_queries(texts)


def hybrid_top(index: Any, vector: np.ndarray, terms: list[str], ranker: Any, k: int = 5) -> list[int]:
    """Milvus's own hybrid search over the version's collection: the best k chunks by `ranker`."""
    from pymilvus import AnnSearchRequest

    search = index.search
    query, _ = search.question_vector(terms)
    requests = [AnnSearchRequest([vector.tolist()], "dense", {"metric_type": "IP"}, limit=100, expr="chunk >= 0")]
    if query:
        requests.append(AnnSearchRequest([query], "sparse", {"metric_type": "IP"}, limit=100))
    else:
        ranker = type(ranker)(1.0) if type(ranker).__name__ == "WeightedRanker" else ranker
    found = search.client.hybrid_search(search.collection, requests, ranker, limit=100, output_fields=["chunk"])[0]
    chunks: list[int] = []
    for hit in found:
        if hit["entity"]["chunk"] not in chunks:
            chunks.append(hit["entity"]["chunk"])
    return chunks[:k]


def measure(name: str, corpus: Path, questions: Path, embedder: Any, root: Path) -> dict[str, Any]:
    from pymilvus import RRFRanker, WeightedRanker

    cached = Cached(embedder)
    out: dict[str, Any] = {"set": name}
    indexes = {}
    for store in ("faiss", "milvus"):
        where = root / f"{name}-{store}"
        shutil.copytree(corpus, where / "corpus")
        settings = Settings(
            corpus_dir=where / "corpus", index_dir=where / "index", store=store, milvus_uri=str(where / "milvus.db")
        )
        before = cached.seconds
        t = time.perf_counter()
        report = build_index(settings, embedder_factory=lambda: cached)
        build_s = time.perf_counter() - t - (cached.seconds - before)  # the model's time is the same for both
        t = time.perf_counter()
        indexes[store] = load_index(settings)
        load_s = time.perf_counter() - t
        first = sorted((where / "corpus").iterdir())[0]
        first.write_text(first.read_text(encoding="utf-8") + "\n추가 문단입니다.\n", encoding="utf-8")
        before = cached.seconds
        t = time.perf_counter()
        build_index(settings, embedder_factory=lambda: cached)
        one_s = time.perf_counter() - t - (cached.seconds - before)
        first.write_text(first.read_text(encoding="utf-8").removesuffix("\n추가 문단입니다.\n"), encoding="utf-8")
        build_index(settings, embedder_factory=lambda: cached)  # back to the measured corpus
        indexes[store] = load_index(settings)
        out[store] = {"chunks": report.chunks, "build_s": build_s, "load_s": load_s, "one_changed_s": one_s}
    out["embed_s"] = cached.seconds

    cases = load_cases(questions)
    sources = set(indexes["faiss"].documents)
    vectors = embedder.embed_queries([c.q for c in cases])
    answerable = [i for i, c in enumerate(cases) if is_answerable(c, sources)]
    tops: dict[str, list[list[int]]] = {}
    for store, index in indexes.items():
        retriever = Retriever(index, embedder)
        times, top = [], []
        retriever.search(cases[0].q, k=5, query_vector=vectors[0])  # warm-up
        for case, vector in zip(cases, vectors, strict=True):
            t = time.perf_counter()
            hits = retriever.search(case.q, k=5, query_vector=vector)
            times.append((time.perf_counter() - t) * 1000)
            top.append([h.id for h in hits])
        tops[store] = top
        out[store]["query_p50_ms"] = statistics.median(times)
        out[store]["query_p95_ms"] = float(np.percentile(times, 95))
        out[store]["hit@5"] = _hit_at_5(cases, answerable, index, top)
    out["same_top5"] = sum(a == b for a, b in zip(tops["faiss"], tops["milvus"], strict=True)) / len(cases)
    milvus = indexes["milvus"]
    stats = Retriever(milvus, embedder).stats
    for label, ranker in (("weighted 0.35/0.65", WeightedRanker(0.35, 0.65)), ("rrf k=60", RRFRanker(60))):
        top = [hybrid_top(milvus, vectors[i], stats.normalize(analyse(cases[i].q).tokens), ranker) for i in answerable]
        out[f"milvus hybrid, {label}"] = _hit_at_5([cases[i] for i in answerable], range(len(top)), milvus, top)
    out["questions"], out["answerable"] = len(cases), len(answerable)
    return out


def _hit_at_5(cases: list[Any], answerable: Any, index: Any, tops: list[list[int]]) -> float:
    chosen = list(answerable)
    hits = sum(any(contains(index.chunks[i].text, g) for i in tops[n] for g in cases[n].gold) for n in chosen)
    return hits / max(1, len(chosen))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--set", action="append", help="NAME=CORPUS_DIR:QUESTIONS_JSONL (repeatable)")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    sets = []
    for spec in args.set or DEFAULT_SETS:
        name, _, paths = spec.partition("=")
        corpus, _, questions = paths.rpartition(":")
        if not Path(corpus).is_dir() or not Path(questions).is_file():
            print(f"milvus.py: {corpus} or {questions} is not here: set {name} skipped")
            continue
        sets.append((name, Path(corpus), Path(questions)))
    if not sets:
        raise SystemExit("milvus.py: no question set to measure: pass --set NAME=CORPUS:QUESTIONS")
    embedder = load_embedder(Settings().embed_model, Settings().cache_dir)
    analyse("형태소 분석기를 미리 불러 둔다")  # Kiwi loads once per process: not in the first store's build time
    root = Path(tempfile.mkdtemp(prefix="aiqa-milvus-bench-"))
    try:
        results = [measure(name, corpus, questions, embedder, root) for name, corpus, questions in sets]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(
        f"{'set':<9} {'store':<7} {'chunks':>6} {'build s':>8} {'1 doc s':>8} {'load s':>7} {'p50 ms':>7} "
        f"{'p95 ms':>7} {'hit@5':>6}"
    )
    for r in results:
        for store in ("faiss", "milvus"):
            s = r[store]
            print(
                f"{r['set']:<9} {store:<7} {s['chunks']:>6} {s['build_s']:>8.2f} {s['one_changed_s']:>8.2f} "
                f"{s['load_s']:>7.2f} {s['query_p50_ms']:>7.1f} {s['query_p95_ms']:>7.1f} {s['hit@5']:>6.3f}"
            )
    print()
    for r in results:
        print(
            f"{r['set']}: {r['questions']} questions ({r['answerable']} answerable); same top five on both stores "
            f"for {r['same_top5']:.1%}; model embedding {r['embed_s']:.1f} s (left out of build times)"
        )
        for key in (k for k in r if k.startswith("milvus hybrid")):
            print(f"  {key}: hit@5 {r[key]:.3f} (aiqa's fusion on the same collection: {r['milvus']['hit@5']:.3f})")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
