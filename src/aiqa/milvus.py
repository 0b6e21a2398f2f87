"""The index on Milvus: one collection per version, an alias naming the live one (AIQA_STORE=milvus).

A version's collection holds one row per dense vector, numbered as the FAISS store numbers them
(each chunk's views, chunk by chunk; see Chunk.views). A chunk's first row also carries its text,
its metadata and term counts, and its keyword vector: the BM25+ weight of each of its terms
(aiqa.keyword, Kiwi morphology), so the inner product with a question's term counts is aiqa's
own BM25+ score less a per-question constant, and rankings match. The manifest and the documents'
texts (what citations quote) are rows with chunk = -1. Everything a replica needs is in the
collection, so replicas on one URI share it; each rebuilds the term statistics the answer layer
reads (vocabulary, document frequencies, each chunk's terms) from the stored counts when it loads.

A build fills a new collection and then moves the alias in one call: a build killed before that
leaves the old version answering, and a replica that sees the alias move loads the new version.
pymilvus is imported here only, and only when the store is chosen.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from functools import wraps
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from aiqa.errors import BadSetting, IndexMismatch, IndexNotFound, StoreUnavailable
from aiqa.keyword import DELTA, build_keywords
from aiqa.store import NewVersion

if TYPE_CHECKING:
    from aiqa.config import Settings
    from aiqa.index import LoadedIndex

PAGE = 4096  # rows per query when reading a whole version
BATCH = 512  # rows per insert: a few MB per call at 384 dimensions
PIECE = 16_000  # characters per stored text piece: at most 64,000 UTF-8 bytes, under VARCHAR's 65,535
TEXT_BYTES = 65_535
# A version's term ids start at 1: Milvus refuses an empty sparse vector, so a row without terms
# (a chunk's later views, the manifest) carries weight on id 0, which no question ever asks for.
NO_TERMS = {0: 1.0}
MAX_TOPK = 16_384  # Milvus's cap on one search's limit
HNSW = {"M": 32, "efConstruction": 80}  # as aiqa.dense, for a cluster past Settings.ann_threshold
EF_SEARCH = 300
ALIAS_TTL = 1.0  # seconds a replica trusts its last look at the alias
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,100}")
_clients: dict[tuple[str, str], Any] = {}
_stores: dict[tuple[str, str, str], MilvusStore] = {}
_lock = threading.Lock()
F = TypeVar("F", bound=Callable[..., Any])


def _reported(method: F) -> F:
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


def milvus_store(settings: Settings) -> MilvusStore:
    """The store for settings' URI and name, one per process (Milvus Lite opens a file in one process)."""
    name = settings.milvus_name
    if not _NAME.fullmatch(name):
        raise BadSetting(f"AIQA_MILVUS_NAME={name!r} must be letters, digits and underscores: fix it")
    key = (settings.milvus_target, settings.milvus_token or "", name)
    with _lock:
        if key not in _stores:
            _stores[key] = MilvusStore(_client(key[0], key[1]), name, key[0])
        return _stores[key]


def _client(uri: str, token: str) -> Any:
    try:
        from pymilvus import MilvusClient
    except ImportError:
        raise BadSetting(
            "AIQA_STORE=milvus needs pymilvus: install aiqa with the milvus extra (pip install 'aiqa[milvus]')"
        ) from None
    if (uri, token) not in _clients:
        if uri.endswith(".db"):
            from pathlib import Path

            Path(uri).parent.mkdir(parents=True, exist_ok=True)
        try:
            _clients[uri, token] = MilvusClient(uri=uri, token=token)
        except Exception as exc:  # pymilvus raises its own kinds for a refused, unreachable or locked target
            raise IndexNotFound(
                f"cannot open Milvus at {uri} ({exc}): check AIQA_MILVUS_URI and AIQA_MILVUS_TOKEN; a Milvus Lite "
                "file is open in one process at a time, so stop the other aiqa process using it"
            ) from None
    return _clients[uri, token]


class MilvusStore:
    """Versions as collections `<name>_v_...` and the live one as the alias `<name>`."""

    def __init__(self, client: Any, name: str, uri: str):
        self.client, self.alias, self.uri = client, name, uri
        self._seen: tuple[float, str | None] = (0.0, None)
        self._loaded: set[str] = set()

    def ready(self, collection: str) -> str:
        """Load a collection into Milvus's memory once (after a restart every collection is released)."""
        if collection not in self._loaded:
            self.client.load_collection(collection)
            self._loaded.add(collection)
        return collection

    def collection(self, version: str) -> str:
        return f"{self.alias}_{version.replace('-', '_')}"

    @_reported
    def live(self) -> str | None:
        at, version = self._seen
        if time.monotonic() - at < ALIAS_TTL:
            return version
        version = None
        if self.alias in self.client.list_aliases().get("aliases", []):  # asked first: a miss is logged as an error
            target = self.client.describe_alias(self.alias)["collection_name"]
            version = str(target)[len(self.alias) + 1 :].replace("_", "-")
        self._seen = (time.monotonic(), version)
        return version

    @_reported
    def manifest(self) -> dict[str, Any]:
        version = self.live()
        if version is None:
            raise IndexNotFound(f"no index in Milvus at {self.uri} (alias {self.alias}): run `aiqa index` to build it")
        return self._manifest(self.collection(version))

    def _manifest(self, collection: str) -> dict[str, Any]:
        from aiqa.index import checked_shape

        text = self._blob(collection, "manifest")
        try:
            manifest = json.loads(text) if text else None
        except ValueError:
            manifest = None
        return checked_shape(manifest, f"the manifest of Milvus collection {collection}")

    def _blob(self, collection: str, name: str) -> str:
        rows = self.client.query(
            self.ready(collection), filter=f'chunk == -1 and name == "{name}"', output_fields=["view", "text"]
        )
        return "".join(r["text"] for r in sorted(rows, key=lambda r: r["view"]))

    @_reported
    def load(self, settings: Settings) -> LoadedIndex:
        from aiqa.index import REBUILD_HINT, LoadedIndex, check_manifest, chunk_from_json, stored_documents

        version = self.live()
        manifest = self.manifest()
        where = f"Milvus collection {self.collection(version or '')}"
        check_manifest(manifest, settings, settings.index_dir)
        collection = self.collection(str(version))
        documents = stored_documents(json.loads(self._blob(collection, "documents") or "{}"))
        rows = self.client.query(collection, filter="chunk >= 0", output_fields=["count(*)"])[0]["count(*)"]
        firsts = sorted(_pages(self.client, collection, "view == 0", ["chunk", "text", "meta"], rows), key=_by_chunk)
        chunks = [chunk_from_json({"text": r["text"], **r["meta"]["chunk"]}) for r in firsts]
        keywords = build_keywords(r["meta"]["counts"] for r in firsts)
        expected = sum(len(c.views) for c in chunks)
        if len(chunks) != manifest.get("chunk_count") or rows != expected:
            raise IndexMismatch(f"{where} holds {rows} vectors for {len(chunks)} chunks: {REBUILD_HINT}")
        if _terms_digest(keywords.terms) != manifest.get("keyword_terms"):
            raise IndexMismatch(f"{where} holds term counts its keyword vectors were not built from: {REBUILD_HINT}")
        search = MilvusSearch(self.client, collection, keywords, expected)
        return LoadedIndex(settings.index_dir, str(version), manifest, chunks, documents, None, keywords, search)

    @_reported
    def publish(self, settings: Settings, new: NewVersion) -> None:
        collection = self.collection(new.version)
        previous = self.live()
        self._create(collection, new.matrix.shape[1], len(new.matrix) > settings.ann_threshold)
        for batch in _batches(_rows(new), BATCH):
            self.client.insert(collection, batch)
        manifest = {
            **new.manifest,
            "dense": {"kind": "milvus", "index": "HNSW" if len(new.matrix) > settings.ann_threshold else "FLAT"},
            "files": {},
            "keyword_terms": _terms_digest(new.keywords.terms),
        }
        # The manifest goes in last: a collection with one is complete (see _complete).
        self.client.insert(collection, list(_blob_rows("manifest", json.dumps(manifest), new.matrix.shape[1], -1)))
        self.client.flush(collection)
        if previous is None and not self.client.has_collection(self.alias):
            try:
                self.client.create_alias(collection, self.alias)
            except Exception:  # another build created it meanwhile, or it is left from a dropped index
                self.client.alter_alias(collection, self.alias)
        else:
            self.client.alter_alias(collection, self.alias)
        self._seen = (time.monotonic(), new.version)
        self._prune(keep={collection} | ({self.collection(previous)} if previous else set()))

    def _create(self, collection: str, dim: int, graph: bool) -> None:
        from pymilvus import DataType

        schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("row", DataType.INT64, is_primary=True)
        schema.add_field("chunk", DataType.INT64)
        schema.add_field("view", DataType.INT64)
        schema.add_field("name", DataType.VARCHAR, max_length=TEXT_BYTES)
        schema.add_field("text", DataType.VARCHAR, max_length=TEXT_BYTES)
        schema.add_field("meta", DataType.JSON)
        schema.add_field("dense", DataType.FLOAT_VECTOR, dim=dim)
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        index = self.client.prepare_index_params()
        if graph:
            index.add_index("dense", index_type="HNSW", metric_type="IP", params=HNSW)
        else:
            index.add_index("dense", index_type="FLAT", metric_type="IP")
        index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
        # Strong: a replica that loads a version the moment its alias moves must see every row of it.
        self.client.create_collection(collection, schema=schema, index_params=index, consistency_level="Strong")
        self._loaded.add(collection)  # created with its indexes, a collection is loaded

    @_reported
    def tidy(self, live: str) -> None:
        older = [c for c in self._versions() if c < self.collection(live) and self._complete(c)]
        self._prune(keep={self.collection(live), *older[-1:]})

    def _versions(self) -> list[str]:
        return sorted(c for c in self.client.list_collections() if c.startswith(f"{self.alias}_v_"))

    def _complete(self, collection: str) -> bool:
        where = 'chunk == -1 and name == "manifest"'
        return bool(self.client.query(self.ready(collection), filter=where, output_fields=["row"]))

    def _prune(self, keep: set[str]) -> None:
        """Drop every version but `keep` (the live one and the one before, which a replica may still read)."""
        for collection in self._versions():
            if collection not in keep:
                self.client.drop_collection(collection)
                self._loaded.discard(collection)


class MilvusSearch:
    """Dense and keyword search of one version's collection (not the alias: a version stays fixed once loaded)."""

    def __init__(self, client: Any, collection: str, keywords: Any, vector_count: int):
        self.client, self.collection, self.keywords = client, collection, keywords
        self._count = vector_count
        self.keyword_depth = 1000  # chunks a keyword search returns; the rest score the question's constant

    @property
    def vector_count(self) -> int:
        return self._count

    @_reported
    def dense(self, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = max(1, min(k, self._count, MAX_TOPK))
        found = self.client.search(
            self.collection,
            data=[vector.astype(np.float32).tolist()],
            anns_field="dense",
            filter="chunk >= 0",
            limit=k,
            search_params={"metric_type": "IP", "params": {"ef": max(EF_SEARCH, k)}},
        )[0]
        scores = np.full(k, -np.inf, dtype=np.float32)
        ids = np.full(k, -1, dtype=np.int64)
        for i, hit in enumerate(found):
            scores[i], ids[i] = hit["distance"], hit["row"]
        return scores, ids

    @_reported
    def keyword(self, terms: Sequence[str]) -> np.ndarray:
        keywords = self.keywords
        out = np.zeros(len(keywords), dtype=np.float32)
        query: dict[int, float] = {}
        constant = 0.0
        for term in terms:
            j = keywords.column.get(term)
            if j is not None:
                query[j + 1] = query.get(j + 1, 0.0) + 1.0
                constant += DELTA * float(keywords.idf[j])  # what BM25+ gives every chunk, as KeywordIndex.scores
        if query:
            found = self.client.search(
                self.collection,
                data=[query],
                anns_field="sparse",
                limit=min(self.keyword_depth, len(keywords), MAX_TOPK),
                output_fields=["chunk"],
                search_params={"metric_type": "IP"},
            )[0]
            for hit in found:
                out[hit["entity"]["chunk"]] = hit["distance"]
        return out + np.float32(constant)

    @_reported
    def rows(self, start: int, n: int) -> np.ndarray:
        got = self.client.get(self.collection, ids=list(range(start, start + n)), output_fields=["dense"])
        return np.asarray([r["dense"] for r in sorted(got, key=lambda r: r["row"])], dtype=np.float32)

    @_reported
    def all_rows(self) -> np.ndarray:
        got = sorted(_pages(self.client, self.collection, "", ["row", "dense"], self._count), key=lambda r: r["row"])
        return np.asarray([r["dense"] for r in got], dtype=np.float32).reshape(len(got), -1)


def _pages(client: Any, collection: str, where: str, fields: list[str], rows: int) -> Iterator[dict[str, Any]]:
    """The rows 0 .. rows - 1 that match `where`, a range of ids at a time (one query returns at most 16,384)."""
    for start in range(0, rows, PAGE):
        span = f"row >= {start} and row < {start + PAGE}"
        yield from client.query(
            collection, filter=f"{span} and {where}" if where else span, limit=PAGE, output_fields=fields
        )


def _rows(new: NewVersion) -> Iterator[dict[str, Any]]:
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
        for view in range(len(chunk.views)):
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
    yield from _blob_rows("documents", json.dumps(new.documents, ensure_ascii=False), dim, -2)


def _chunk_vector(keywords: Any, chunk: int) -> dict[int, float]:
    """A chunk's BM25+ weight of each of its terms, by term id + 1 (the by-term postings hold the weights)."""
    start, end = int(keywords.chunk_ptr[chunk]), int(keywords.chunk_ptr[chunk + 1])
    out = {}
    for j in keywords.chunk_terms[start:end]:
        lo, hi = int(keywords.term_ptr[j]), int(keywords.term_ptr[j + 1])
        at = lo + int(np.searchsorted(keywords.term_chunks[lo:hi], chunk))  # a term's chunks are ascending
        out[int(j) + 1] = float(keywords.term_weights[at])
    return out


def _blob_rows(name: str, text: str, dim: int, first_id: int) -> Iterator[dict[str, Any]]:
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


def _batches(rows: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _terms_digest(terms: list[str]) -> str:
    return hashlib.sha256("\n".join(terms).encode("utf-8")).hexdigest()


def _by_chunk(row: dict[str, Any]) -> int:
    return int(row["chunk"])
