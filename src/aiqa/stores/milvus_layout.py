"""One index version as a Milvus collection: its fields, its rows, and searching it (see aiqa.stores.milvus).

Rows are the version's dense vectors, numbered as the FAISS store numbers them (each chunk's
views, chunk by chunk). A chunk's first row also carries its text, its metadata and term counts,
and its keyword vector: the BM25+ weight of each of its terms (aiqa.index.keyword), by term id + 1.
A question's keyword vector is its term counts, so the inner product is aiqa's own BM25+ score
less the constant BM25+ gives every chunk for the question; MilvusSearch adds it back. Rows with
chunk = -1 hold long texts in pieces: the manifest and the documents.

Sparse vectors came to Milvus in 2.4. On an older server (2.3, e.g. the `milvus` package's
embedded server) a collection has no sparse field, and the keyword side is aiqa's own BM25+
postings, rebuilt by every replica from the term counts the chunk rows carry, as they are anyway
for the answer layer: the scores are the same, the keyword search runs in the replica.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from functools import wraps
from typing import Any, TypeVar

import numpy as np

from aiqa.chunk import chunk_views
from aiqa.errors import StoreUnavailable
from aiqa.index.access import row_filter
from aiqa.index.format import Allowed, NewVersion
from aiqa.index.keyword import DELTA

PAGE = 4096  # rows per query when reading a whole version
BATCH = 512  # rows per insert: a few MB per call at 384 dimensions
PIECE = 16_000  # characters per stored text piece: at most 64,000 UTF-8 bytes, under VARCHAR's 65,535
TEXT_BYTES = 65_535
# A version's term ids start at 1: Milvus refuses an empty sparse vector, so a row without terms
# (a chunk's later views, the manifest) carries weight on id 0, which no question ever asks for.
NO_TERMS = {0: 1.0}
MAX_TOPK = 16_384  # Milvus's cap on one search's limit
HNSW = {"M": 32, "efConstruction": 80}  # as aiqa.index.dense, for a cluster past Settings.ann_threshold
EF_SEARCH = 300
F = TypeVar("F", bound=Callable[..., Any])


def reported(method: F) -> F:
    """Turn what pymilvus raises (an unreachable server, a refused call) into StoreUnavailable."""

    @wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except Exception as exc:
            if not type(exc).__module__.startswith(("pymilvus", "grpc")):
                raise
            raise StoreUnavailable(
                f"Milvus refused {method.__name__} ({exc}): check that it runs at AIQA_MILVUS_URI and that "
                "AIQA_MILVUS_TOKEN may use it; then retry (a failed build left the live index as it was)"
            ) from None

    return call  # type: ignore[return-value]


def has_sparse(client: Any) -> bool:
    """Tell whether the server stores sparse vectors (Milvus 2.4 and later; a version it does not name: yes)."""
    found = re.search(r"(\d+)\.(\d+)", str(client.get_server_version()))
    return found is None or (int(found[1]), int(found[2])) >= (2, 4)


def sparse_field(client: Any, collection: str) -> bool:
    """Tell whether a version's collection has the sparse keyword field (see has_sparse)."""
    return any(f.get("name") == "sparse" for f in client.describe_collection(collection).get("fields", []))


def without_sparse(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k != "sparse"} for row in rows]


def create_collection(client: Any, collection: str, dim: int, graph: bool, sparse: bool = True) -> None:
    """An empty version collection: the fields of the rows below, FLAT or HNSW dense index, and (where the
    server has them) the sparse keyword vectors with their inverted index."""
    from pymilvus import DataType

    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("row", DataType.INT64, is_primary=True)
    schema.add_field("chunk", DataType.INT64)
    schema.add_field("view", DataType.INT64)
    schema.add_field("name", DataType.VARCHAR, max_length=TEXT_BYTES)
    schema.add_field("text", DataType.VARCHAR, max_length=TEXT_BYTES)
    schema.add_field("meta", DataType.JSON)
    schema.add_field("dense", DataType.FLOAT_VECTOR, dim=dim)
    if sparse:
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    index = client.prepare_index_params()
    if graph:
        index.add_index("dense", index_type="HNSW", metric_type="IP", params=HNSW)
    else:
        index.add_index("dense", index_type="FLAT", metric_type="IP")
    if sparse:
        index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
    # Strong: a replica that loads a version the moment its alias moves must see every row of it.
    client.create_collection(collection, schema=schema, index_params=index, consistency_level="Strong")


class MilvusSearch:
    """Dense and keyword search of one version's collection (not the alias: a version stays fixed once loaded)."""

    def __init__(
        self, client: Any, collection: str, keywords: Any, vector_count: int, text_rows: int, sparse: bool = True
    ):
        self.client, self.collection, self.keywords = client, collection, keywords
        self.sparse = sparse  # keyword search in Milvus; else in aiqa's own postings (see the module)
        self._count = vector_count
        # The manifest's and documents' rows have zero vectors. A filter on `chunk` would keep them out
        # but doubles a search's time on Milvus Lite; asking for as many more rows and dropping them is exact.
        self._text_rows = text_rows
        self.keyword_depth = 1000  # chunks a keyword search returns; the rest score the question's constant

    @property
    def vector_count(self) -> int:
        return self._count

    @reported
    def dense(self, vector: np.ndarray, k: int, allowed: Allowed | None = None) -> tuple[np.ndarray, np.ndarray]:
        # A reader's rows are a filter expression Milvus applies while it ranks (aiqa.index.access); it
        # also keeps the text rows out.
        extra = self._text_rows if allowed is None else 0
        if allowed is not None and not len(allowed.rows):
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
        k = max(1, min(k, self._count if allowed is None else len(allowed.rows), MAX_TOPK - extra))
        found = self.client.search(
            self.collection,
            data=[vector.astype(np.float32).tolist()],
            anns_field="dense",
            limit=k + extra,
            filter="" if allowed is None else row_filter(allowed.rows),
            search_params={"metric_type": "IP", "params": {"ef": max(EF_SEARCH, k + extra)}},
        )[0]
        scores = np.full(k, -np.inf, dtype=np.float32)
        ids = np.full(k, -1, dtype=np.int64)
        # A hit names its row by the primary key's name, or (Milvus 2.3) as "id".
        vectors = [(hit["distance"], hit["row"] if "row" in hit else hit["id"]) for hit in found]
        for i, (score, row) in enumerate([(s, r) for s, r in vectors if r >= 0][:k]):
            scores[i], ids[i] = score, row
        return scores, ids

    def question_vector(self, terms: Sequence[str]) -> tuple[dict[int, float], float]:
        """A question's keyword vector (its known terms' counts, by term id + 1) and its BM25+ constant."""
        keywords = self.keywords
        query: dict[int, float] = {}
        constant = 0.0
        for term in terms:
            j = keywords.column.get(term)
            if j is not None:
                query[j + 1] = query.get(j + 1, 0.0) + 1.0
                constant += DELTA * float(keywords.idf[j])  # what BM25+ gives every chunk, as KeywordIndex.scores
        return query, constant

    @reported
    def keyword(self, terms: Sequence[str]) -> np.ndarray:
        if not self.sparse:
            return np.asarray(self.keywords.scores(terms), dtype=np.float32)
        out = np.zeros(len(self.keywords), dtype=np.float32)
        query, constant = self.question_vector(terms)
        if query:
            found = self.client.search(
                self.collection,
                data=[query],
                anns_field="sparse",
                limit=min(self.keyword_depth, len(self.keywords), MAX_TOPK),
                output_fields=["chunk"],
                search_params={"metric_type": "IP"},
            )[0]
            for hit in found:
                out[hit["entity"]["chunk"]] = hit["distance"]
        return out + np.float32(constant)

    @reported
    def rows(self, start: int, n: int) -> np.ndarray:
        return self.rows_of([(start, n)])[0]

    @reported
    def rows_of(self, spans: Sequence[tuple[int, int]]) -> list[np.ndarray]:
        ids = [row for start, n in spans for row in range(start, start + n)]
        if not ids:
            return [np.zeros((0, 0), dtype=np.float32) for _ in spans]
        got = {r["row"]: r["dense"] for r in self.client.get(self.collection, ids=ids, output_fields=["dense"])}
        return [np.asarray([got[row] for row in range(start, start + n)], dtype=np.float32) for start, n in spans]

    @reported
    def all_rows(self) -> np.ndarray:
        got = sorted(pages(self.client, self.collection, "", ["row", "dense"], self._count), key=lambda r: r["row"])
        return np.asarray([r["dense"] for r in got], dtype=np.float32).reshape(len(got), -1)


def pages(client: Any, collection: str, where: str, fields: list[str], rows: int) -> Iterator[dict[str, Any]]:
    """The rows 0 .. rows - 1 that match `where`, a range of ids at a time (one query returns at most 16,384)."""
    for start in range(0, rows, PAGE):
        span = f"row >= {start} and row < {start + PAGE}"
        yield from client.query(
            collection, filter=f"{span} and {where}" if where else span, limit=PAGE, output_fields=fields
        )


def version_rows(new: NewVersion) -> Iterator[dict[str, Any]]:
    """Every row of a version but its manifest: the views of each chunk, then the documents' texts."""
    keywords, dim = new.keywords, new.matrix.shape[1]
    row = 0
    for i, chunk in enumerate(new.chunks):
        start, end = int(keywords.chunk_ptr[i]), int(keywords.chunk_ptr[i + 1])
        counts = keywords.chunk_counts_of(i)
        sparse = _chunk_vector(keywords, i) or NO_TERMS
        meta = asdict(chunk)
        text = meta.pop("text")
        if len(text.encode("utf-8")) > TEXT_BYTES:
            meta["text"], text = text, ""  # over VARCHAR's cap: the JSON field keeps it whole
        for view in range(len(chunk_views(chunk))):
            first = view == 0
            yield {
                "row": row,
                "chunk": i,
                "view": view,
                "name": chunk.source[:1000],
                "text": text if first else "",
                "meta": {"chunk": meta, "counts": counts, "terms": end - start} if first else {},
                "dense": new.matrix[row].tolist(),
                "sparse": sparse if first else NO_TERMS,
            }
            row += 1
    yield from blob_rows("documents", json.dumps(new.documents, ensure_ascii=False), dim, -2)


def _chunk_vector(keywords: Any, chunk: int) -> dict[int, float]:
    """A chunk's BM25+ weight of each of its terms, by term id + 1 (the by-term postings hold the weights)."""
    start, end = int(keywords.chunk_ptr[chunk]), int(keywords.chunk_ptr[chunk + 1])
    out = {}
    for j in keywords.chunk_terms[start:end]:
        lo, hi = int(keywords.term_ptr[j]), int(keywords.term_ptr[j + 1])
        at = lo + int(np.searchsorted(keywords.term_chunks[lo:hi], chunk))  # a term's chunks are ascending
        out[int(j) + 1] = float(keywords.term_weights[at])
    return out


def blob_rows(name: str, text: str, dim: int, first_id: int) -> Iterator[dict[str, Any]]:
    """A long text as rows of pieces (ids first_id, first_id - 2, ...: the two blobs interleave)."""
    pieces = [text[i : i + PIECE] for i in range(0, len(text), PIECE)] or [""]
    zero = [0.0] * dim
    for piece, part in enumerate(pieces):
        row = first_id - 2 * piece
        yield {
            "row": row,
            "chunk": -1,
            "view": piece,
            "name": name,
            "text": part,
            "meta": {},
            "dense": zero,
            "sparse": NO_TERMS,
        }


def batches(rows: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def terms_digest(terms: list[str]) -> str:
    return hashlib.sha256("\n".join(terms).encode("utf-8")).hexdigest()
