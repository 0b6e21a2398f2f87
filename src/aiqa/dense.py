"""The dense side of an index version: exact inner-product search, or an IVF index past a size.

Below `Settings.ann_threshold` vectors every question is compared with every vector (exact and,
at that size, a few milliseconds). Above it the vectors go into an inverted-file index: k-means
cells, of which a question visits the `NPROBE` nearest. The cells keep the full float vectors
(IVF-Flat), so scores and stored vectors stay exact and only recall is traded; bench/scale.py
measures that trade and the switch point. faiss is imported lazily.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

# Measured by bench/scale.py on 100k and 1M vectors: the cells per index size and cells visited per
# question that keep recall@10 of exact search at 0.95 or more.
CELLS_PER_SQRT = 4  # nlist = 4 * sqrt(n)
NPROBE = 32
TRAIN_PER_CELL = 40  # k-means training sample per cell (faiss warns below 39)


def build(matrix: np.ndarray, threshold: int) -> Any:
    """A faiss index over the rows of `matrix` (L2-normalized float32): exact up to `threshold` rows."""
    import faiss

    n, dim = matrix.shape
    if n <= threshold:
        flat = faiss.IndexFlatIP(dim)
        flat.add(matrix)
        return flat
    cells = max(1, min(n, int(CELLS_PER_SQRT * math.sqrt(n))))
    quantizer = faiss.IndexFlatIP(dim)
    ivf = faiss.IndexIVFFlat(quantizer, dim, cells, faiss.METRIC_INNER_PRODUCT)
    # A fixed seed: the same vectors give the same index, build after build.
    sample = np.random.default_rng(0).choice(n, size=min(n, cells * TRAIN_PER_CELL), replace=False)
    ivf.train(matrix[np.sort(sample)])
    ivf.add(matrix)
    ivf.nprobe = NPROBE
    return ivf


def write(index: Any, path: Path) -> None:
    import faiss

    faiss.write_index(index, str(path))


def read(path: Path) -> Any:
    """Load a written index; an IVF index is memory-mapped and can reconstruct its rows."""
    import faiss

    try:
        index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
    except RuntimeError:
        index = faiss.read_index(str(path))  # a layout faiss cannot map is read into memory
    if isinstance(index, faiss.IndexIVF):
        index.nprobe = NPROBE
        index.make_direct_map()
    return index


def search(index: Any, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores and row ids of the k best rows for one query vector (ids -1 where fewer exist)."""
    scores, ids = index.search(vector.reshape(1, -1).astype(np.float32), min(k, index.ntotal))
    return scores[0], ids[0]


def rows(index: Any, start: int, n: int) -> np.ndarray:
    """The stored vectors of rows start .. start + n - 1."""
    return index.reconstruct_n(start, n)


def all_rows(index: Any) -> np.ndarray:
    return index.reconstruct_n(0, index.ntotal)


def describe(index: Any) -> dict[str, Any]:
    """What the manifest records of the dense index: its kind and, for IVF, its cells."""
    import faiss

    if isinstance(index, faiss.IndexIVF):
        return {"kind": "ivf-flat", "cells": int(index.nlist), "nprobe": int(index.nprobe)}
    return {"kind": "flat"}
