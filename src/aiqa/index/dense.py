"""The dense side of an index version: exact inner-product search, or an HNSW graph past a size.

Below `Settings.ann_threshold` vectors every question is compared with every vector: exact, and at
that size a few milliseconds. Above it the vectors go into an HNSW graph, which visits a few
thousand of them per question. The graph keeps the full float vectors (HNSW-Flat), so scores and
stored vectors stay exact and only recall is traded. bench/scale.py measured the choice: on 100k
vectors HNSW kept recall@10 at 0.996 in 3 ms, where IVF-Flat needed 11 ms for 0.98. faiss is
imported lazily.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

LINKS = 32  # graph neighbours per vector
EF_CONSTRUCTION = 80
EF_SEARCH = 300  # candidates a search keeps; at least the number of rows asked for


def build(matrix: np.ndarray, threshold: int) -> Any:
    """A faiss index over the rows of `matrix` (L2-normalized float32): exact up to `threshold` rows."""
    import faiss

    n, dim = matrix.shape
    if n <= threshold:
        flat = faiss.IndexFlatIP(dim)
        flat.add(matrix)
        return flat
    graph = faiss.IndexHNSWFlat(dim, LINKS, faiss.METRIC_INNER_PRODUCT)
    graph.hnsw.efConstruction = EF_CONSTRUCTION
    graph.add(matrix)
    return graph


def extend(previous: Any, matrix: np.ndarray, threshold: int) -> Any | None:
    """`previous` (a graph read from disk) with the rows of `matrix` it lacks added, when `matrix` starts with
    exactly its rows (a version that only adds documents); None when it does not, or is no graph.

    Adding inserts the new vectors the way a build inserts every vector, one after the other, so
    the graph is one a rebuild could have made: bench/hnsw_add.py measures recall and time against
    a rebuild. Anything else (a document removed or changed) rebuilds: a graph cannot drop a
    vector, and masking removed ones would cost every question for the life of the version.
    """
    import faiss

    n = int(previous.ntotal)
    if not isinstance(previous, faiss.IndexHNSW) or len(matrix) <= threshold or n > len(matrix):
        return None
    if previous.d != matrix.shape[1] or not np.array_equal(previous.reconstruct_n(0, n), matrix[:n]):
        return None
    previous.hnsw.efConstruction = EF_CONSTRUCTION
    if len(matrix) > n:
        previous.add(np.ascontiguousarray(matrix[n:]))
    return previous


def write(index: Any, path: Path) -> None:
    import faiss

    faiss.write_index(index, str(path))


def read(path: Path) -> Any:
    import faiss

    return faiss.read_index(str(path))


def search(index: Any, vector: np.ndarray, k: int, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Scores and row ids of the k best rows for one query vector (ids -1 where fewer exist).

    With `rows` (sorted row ids), only those rows are candidates: faiss skips the others while it
    ranks (an ID selector), so a row outside them never takes a place among the k."""
    import faiss

    k = min(k, index.ntotal if rows is None else len(rows))
    query = vector.reshape(1, -1).astype(np.float32)
    if k <= 0:
        return np.zeros(0, np.float32), np.zeros(0, np.int64)
    selector = None if rows is None else _selector(faiss, index.ntotal, rows)
    if isinstance(index, faiss.IndexHNSW):
        params = faiss.SearchParametersHNSW(efSearch=max(EF_SEARCH, k), sel=selector)  # type: ignore[attr-defined]
        scores, ids = index.search(query, k, params=params)
    elif selector is not None:
        scores, ids = index.search(query, k, params=faiss.SearchParameters(sel=selector))  # type: ignore[call-arg]
    else:
        scores, ids = index.search(query, k)
    return scores[0], ids[0]


def _selector(faiss: Any, total: int, rows: np.ndarray) -> Any:
    """A bitmap of the allowed rows; the selector keeps a reference to the bits it reads."""
    bits = np.zeros(total, dtype=bool)
    bits[rows] = True
    packed = np.packbits(bits, bitorder="little")
    selector = faiss.IDSelectorBitmap(total, faiss.swig_ptr(packed))
    selector.bits = packed  # faiss reads the array by pointer: it must live as long as the selector
    return selector


def rows(index: Any, start: int, n: int) -> np.ndarray:
    """The stored vectors of rows start .. start + n - 1."""
    return index.reconstruct_n(start, n)


def all_rows(index: Any) -> np.ndarray:
    return index.reconstruct_n(0, index.ntotal)


def describe(index: Any) -> dict[str, Any]:
    """What the manifest records of the dense index: its kind and, for a graph, its links."""
    import faiss

    if isinstance(index, faiss.IndexHNSW):
        return {"kind": "hnsw-flat", "links": LINKS, "ef_construction": EF_CONSTRUCTION}
    return {"kind": "flat"}
