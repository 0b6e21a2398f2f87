"""Search at 10k, 100k and 1M chunks: build time, memory, disk, p50/p95 and recall of the dense and keyword sides.

Usage: .venv/bin/python bench/scale.py [--sizes 10000,100000,1000000] [--json out.json]

The corpora are synthetic but made of real parts: each chunk is two or three sentences drawn from
the KorQuAD calibration articles (../shared/eval/korquad/corpus, or --articles), its keyword tokens
are those sentences' Kiwi tokens, and its vector is a mix of those sentences' e5 vectors plus a
little noise, so vectors keep the shape of real ones (one vector per chunk here; a real index holds
about three per chunk, one per view: multiply the vector figures). Queries are real KorQuAD
questions. Recall@10 is measured against exact search over the same vectors.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from aiqa.config import Settings
from aiqa.embedders.registry import load_embedder
from aiqa.evaluate import percentile
from aiqa.index import dense
from aiqa.index.keyword import KeywordIndex, build_keywords, token_counts
from aiqa.text.korean import analyse
from evalsets import REPO

ARTICLES = REPO.parent / "shared" / "eval" / "korquad"
DEPTH = 300  # vectors a question asks for: retrieval's depth 100 x about 3 views per chunk
BASES = 4000  # real sentences embedded as the building blocks
QUERIES = 300


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def folder_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def latencies(fn, items) -> tuple[float, float]:
    ms = []
    for item in items:
        t = time.perf_counter()
        fn(item)
        ms.append((time.perf_counter() - t) * 1000)
    return percentile(ms, 0.5), percentile(ms, 0.95)


def materials(articles: Path):
    """Real sentences (text, tokens, vector) and real questions (tokens, vector)."""
    sentences = []
    for path in sorted((articles / "corpus").glob("*.txt")):
        for s in re.split(r"(?<=[.!?])\s+", path.read_text(encoding="utf-8")):
            if 20 <= len(s) <= 400:
                sentences.append(s)
    rng = np.random.default_rng(0)
    sentences = [sentences[i] for i in sorted(rng.choice(len(sentences), min(BASES, len(sentences)), replace=False))]
    questions = [json.loads(line)["q"] for line in (articles / "questions.jsonl").read_text().splitlines()]
    questions = [questions[i] for i in sorted(rng.choice(len(questions), QUERIES, replace=False))]
    embedder = load_embedder(Settings().embed_model, Settings().cache_dir)
    t = time.perf_counter()
    tokens = [list(analyse(s).tokens) for s in sentences]
    kiwi_chars_s = sum(map(len, sentences)) / (time.perf_counter() - t)
    base_vectors = embedder.embed_passages(sentences, batch_size=64)
    query_vectors = embedder.embed_queries(questions)
    query_tokens = [list(analyse(q).tokens) for q in questions]
    return sentences, tokens, base_vectors, query_tokens, query_vectors, kiwi_chars_s


def synthetic(n: int, tokens, base_vectors, seed: int = 1):
    """n chunks: token counts and unit vectors of 2-3 recombined real sentences each."""
    rng = np.random.default_rng(seed)
    parts = rng.integers(0, len(tokens), size=(n, 3))
    three = rng.random(n) < 0.5
    counts = []
    for row, use_three in zip(parts, three, strict=True):
        picked = row if use_three else row[:2]
        counts.append(token_counts(t for i in picked for t in tokens[i]))
    weights = rng.dirichlet(np.ones(3), size=n).astype(np.float32)
    weights[~three, 2] = 0
    vectors = np.zeros((n, base_vectors.shape[1]), np.float32)
    for j in range(3):
        vectors += weights[:, j : j + 1] * base_vectors[parts[:, j]]
    vectors += 0.02 * rng.standard_normal(vectors.shape, dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return counts, vectors


def recall_at_10(index, vectors_q: np.ndarray, truth: np.ndarray) -> float:
    _, ids = index.search(vectors_q, 10)
    return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, truth, strict=True)]))


def ivf_flat(matrix: np.ndarray):
    """The alternative measured against HNSW: k-means cells of 4 * sqrt(n), trained on 40 vectors a cell."""
    import faiss

    n, dim = matrix.shape
    cells = int(4 * np.sqrt(n))
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, cells, faiss.METRIC_INNER_PRODUCT)
    sample = np.random.default_rng(0).choice(n, size=min(n, 40 * cells), replace=False)
    index.train(matrix[np.sort(sample)])
    index.add(matrix)
    return index


def measure(n: int, mats, root: Path) -> list[dict]:
    import faiss

    _, tokens, base_vectors, query_tokens, query_vectors, _ = mats
    counts, matrix = synthetic(n, tokens, base_vectors)
    rows = []
    folder = root / f"n{n}"
    folder.mkdir()

    before = rss_mb()
    keywords, build_s = timed(build_keywords, counts)
    del counts
    names = keywords.save(folder)
    del keywords
    loaded = KeywordIndex.load(folder)
    p50, p95 = latencies(loaded.scores, query_tokens)
    rows.append(
        {
            "chunks": n,
            "search": "keyword: sparse BM25+ (memory-mapped)",
            "build_s": build_s,
            "disk_mb": sum((folder / f).stat().st_size for f in names) / 1e6,
            "ram_mb": rss_mb() - before,
            "p50_ms": p50,
            "p95_ms": p95,
            "recall10": None,
            "terms": len(loaded.terms),
        }
    )
    del loaded

    flat, flat_s = timed(dense.build, matrix, n)
    _, truth = flat.search(query_vectors, 10)
    p50, p95 = latencies(lambda q, index=flat: dense.search(index, q, DEPTH), query_vectors)
    rows.append(
        {
            "chunks": n,
            "search": "dense: exact (flat)",
            "build_s": flat_s,
            "disk_mb": matrix.nbytes / 1e6,
            "ram_mb": matrix.nbytes / 1e6,
            "p50_ms": p50,
            "p95_ms": p95,
            "recall10": 1.0,
        }
    )
    del flat

    graph, graph_s = timed(dense.build, matrix, 0)
    dense.write(graph, folder / "vectors.faiss")
    del graph
    before = rss_mb()
    graph = dense.read(folder / "vectors.faiss")
    loaded_mb = rss_mb() - before
    for ef in (dense.EF_SEARCH, 2 * dense.EF_SEARCH):
        params = faiss.SearchParametersHNSW(efSearch=ef)

        def one(q, index=graph, params=params):
            return index.search(q.reshape(1, -1), DEPTH, params=params)

        p50, p95 = latencies(one, query_vectors)
        _, ids = graph.search(query_vectors, 10, params=params)
        rows.append(
            {
                "chunks": n,
                "search": f"dense: HNSW32 efSearch {ef}" + (" (shipped)" if ef == dense.EF_SEARCH else ""),
                "build_s": graph_s,
                "disk_mb": (folder / "vectors.faiss").stat().st_size / 1e6,
                "ram_mb": loaded_mb,
                "p50_ms": p50,
                "p95_ms": p95,
                "recall10": float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, truth, strict=True)])),
            }
        )
    del graph
    ivf, ivf_s = timed(ivf_flat, matrix)
    for nprobe in (32, 128):
        ivf.nprobe = nprobe
        p50, p95 = latencies(lambda q, index=ivf: index.search(q.reshape(1, -1), DEPTH), query_vectors)
        rows.append(
            {
                "chunks": n,
                "search": f"dense: IVF-Flat {ivf.nlist} cells, nprobe {nprobe}",
                "build_s": ivf_s,
                "disk_mb": None,
                "ram_mb": None,
                "p50_ms": p50,
                "p95_ms": p95,
                "recall10": recall_at_10(ivf, query_vectors, truth),
            }
        )
    del ivf
    shutil.rmtree(folder)
    return rows


def show(rows: list[dict]) -> None:
    head = ("build s", "disk MB", "RAM MB", "p50 ms", "p95 ms")
    print(f"{'chunks':>9} {'search':<40} " + " ".join(f"{h:>8}" for h in head) + f" {'R@10':>5}")
    for r in rows:

        def f(key, fmt, r=r):
            return format(r[key], fmt) if r.get(key) is not None else "-"

        print(
            f"{r['chunks']:>9} {r['search']:<40} {f('build_s', '.1f'):>8} {f('disk_mb', '.0f'):>8} "
            f"{f('ram_mb', '.0f'):>8} {f('p50_ms', '.2f'):>8} {f('p95_ms', '.2f'):>8} {f('recall10', '.3f'):>5}"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--articles", default=str(ARTICLES), help="folder with corpus/*.txt and questions.jsonl")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()
    articles = Path(args.articles)
    if not (articles / "questions.jsonl").exists():
        raise SystemExit(f"scale.py: {articles} has no questions.jsonl (the KorQuAD set lives beside the repo)")
    mats = materials(articles)
    print(f"Kiwi analysis: {mats[5]:,.0f} characters/s (one core); {len(mats[0])} base sentences, {QUERIES} questions")
    root = Path(tempfile.mkdtemp(prefix="aiqa-scale-"))
    rows: list[dict] = []
    try:
        for n in (int(s) for s in args.sizes.split(",")):
            rows.extend(measure(n, mats, root))
            show([r for r in rows if r["chunks"] == n])
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print()
    show(rows)
    keyword = [r for r in rows if r["search"].startswith("keyword")]
    if keyword:
        biggest = keyword[-1]
        per_million = 1e6 / biggest["chunks"]
        print(
            f"keyword postings per million chunks: {biggest['disk_mb'] * per_million:,.0f} MB on disk; "
            f"dense vectors: {1e6 * 384 * 4 / 1e6:,.0f} MB per million vectors (float32, 384 dims)"
        )
    print(f"median keyword p50 over sizes: {statistics.median(r['p50_ms'] for r in keyword):.2f} ms")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
