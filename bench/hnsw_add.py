"""A version that only adds documents: HNSW add to the live graph against a rebuild, time and recall@10.

Usage: .venv/bin/python bench/hnsw_add.py [--sizes 100000] [--added 1000] [--json bench/results/hnsw_add.json]

For each size N: a graph of N vectors is built and written as the live version's would be; then
the next version (N + --added vectors, the old ones first, as aiqa.build orders an added-only
version) is made both ways, side by side: rebuilt from scratch (aiqa.index.dense.build) and
through aiqa.index.dense.extend on the graph read back from disk (read, check the old rows, add,
write: the whole path of aiqa.stores.files). Recall@10 of each against exact search, on 300
queries near the vectors. The vectors are synthetic: noisy mixtures of 2,000 random directions
in 384 dimensions, L2-normalized, so they cluster as text embeddings do.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from aiqa.index import dense

DIM = 384
QUERIES = 300


def vectors(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    topics = np.random.default_rng(0).normal(size=(2000, DIM)).astype(np.float32)
    picks = rng.integers(0, len(topics), size=(n, 2))
    out = topics[picks[:, 0]] + 0.5 * topics[picks[:, 1]] + 0.8 * rng.normal(size=(n, DIM)).astype(np.float32)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def recall(index, matrix: np.ndarray, queries: np.ndarray) -> float:
    import faiss

    exact = faiss.IndexFlatIP(DIM)
    exact.add(matrix)
    truth = exact.search(queries, 10)[1]
    found = [set(dense.search(index, q, 10)[1]) for q in queries]
    return float(np.mean([len(f & set(t)) / 10 for f, t in zip(found, truth, strict=True)]))


def measure(n: int, added: int) -> dict:
    matrix = np.vstack([vectors(n, 1), vectors(added, 2)])
    rng = np.random.default_rng(5)
    queries = matrix[rng.choice(len(matrix), QUERIES, replace=False)] + 0.05 * rng.normal(size=(QUERIES, DIM))
    queries = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        live = Path(tmp) / "vectors.faiss"
        t = time.perf_counter()
        dense.write(dense.build(matrix[:n], 0), live)
        first_s = time.perf_counter() - t

        t = time.perf_counter()
        rebuilt = dense.build(matrix, 0)
        dense.write(rebuilt, Path(tmp) / "rebuilt.faiss")
        rebuild_s = time.perf_counter() - t

        t = time.perf_counter()
        grown = dense.extend(dense.read(live), matrix, 0)
        assert grown is not None
        dense.write(grown, Path(tmp) / "grown.faiss")
        add_s = time.perf_counter() - t
    row = {
        "vectors before": n,
        "added": added,
        "first build s": round(first_s, 1),
        "rebuild s": round(rebuild_s, 1),
        "add s": round(add_s, 2),
        "rebuild / add": round(rebuild_s / add_s, 1),
        "recall@10 rebuilt": round(recall(rebuilt, matrix, queries), 3),
        "recall@10 added": round(recall(grown, matrix, queries), 3),
    }
    print(row, flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100000", help="vectors in the live graph, comma-separated")
    parser.add_argument("--added", type=int, default=1000, help="vectors the new version adds")
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args()
    rows = [measure(int(n), args.added) for n in args.sizes.split(",")]
    if args.json:
        command = ".venv/bin/python bench/hnsw_add.py --sizes " + args.sizes + f" --added {args.added}"
        Path(args.json).write_text(json.dumps({"command": command, "rows": rows}, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
