"""The index on Milvus: one collection per version, an alias naming the live one (AIQA_STORE=milvus).

A version's collection holds one row per dense vector, numbered as the FAISS store numbers them
(each chunk's views, chunk by chunk; see aiqa.chunk.chunk_views). A chunk's first row also carries its text,
its metadata and term counts, and its keyword vector: the BM25+ weight of each of its terms
(aiqa.index.keyword, Kiwi morphology), so the inner product with a question's term counts is aiqa's
own BM25+ score less a per-question constant, and rankings match. The manifest and the documents'
texts (what citations quote) are rows with chunk = -1. Everything a replica needs is in the
collection, so replicas on one URI share it; each rebuilds the term statistics the answer layer
reads (vocabulary, document frequencies, each chunk's terms) from the stored counts when it loads.

A build fills a new collection and then moves the alias in one call: a build killed before that
leaves the old version answering, and a replica that sees the alias move loads the new version.
The collection's fields and rows, and searching it, are aiqa.stores.milvus_layout. pymilvus is imported
in these two modules only, and only when the store is chosen.
"""

from __future__ import annotations

import json
import re
import threading
import time
from typing import TYPE_CHECKING, Any

from aiqa.chunk import chunk_views
from aiqa.errors import BadSetting, IndexMismatch, IndexNotFound
from aiqa.index.format import NewVersion
from aiqa.index.keyword import build_keywords
from aiqa.stores.milvus_layout import (
    BATCH,
    MilvusSearch,
    batches,
    blob_rows,
    create_collection,
    has_sparse,
    pages,
    reported,
    sparse_field,
    terms_digest,
    version_rows,
    without_sparse,
)

if TYPE_CHECKING:
    from aiqa.config import Settings
    from aiqa.index.format import LoadedIndex

ALIAS_TTL = 1.0  # seconds a replica trusts its last look at the alias
# gRPC waits up to two minutes between reconnections by default: a replica would answer 503s for that
# long after its Milvus server came back. Capped, it is answering again within about two seconds.
RECONNECT = {
    "grpc.initial_reconnect_backoff_ms": 500,
    "grpc.min_reconnect_backoff_ms": 500,
    "grpc.max_reconnect_backoff_ms": 2000,
}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,100}")
_clients: dict[tuple[str, str], Any] = {}
_stores: dict[tuple[str, str, str], MilvusStore] = {}
_lock = threading.Lock()


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
            _clients[uri, token] = MilvusClient(uri=uri, token=token, grpc_options=RECONNECT)
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

    @reported
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

    @reported
    def manifest(self) -> dict[str, Any]:
        version = self.live()
        if version is None:
            raise IndexNotFound(f"no index in Milvus at {self.uri} (alias {self.alias}): run `aiqa index` to build it")
        return self._manifest(self.collection(version))

    def _manifest(self, collection: str) -> dict[str, Any]:
        from aiqa.index.format import checked_shape

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

    @reported
    def load(self, settings: Settings) -> LoadedIndex:
        from aiqa.index.format import REBUILD_HINT, LoadedIndex, check_manifest, chunk_from_json, stored_documents

        version = self.live()
        manifest = self.manifest()
        where = f"Milvus collection {self.collection(version or '')}"
        check_manifest(manifest, settings, settings.index_dir)
        collection = self.collection(str(version))
        documents = stored_documents(json.loads(self._blob(collection, "documents") or "{}"))
        rows = self.client.query(collection, filter="chunk >= 0", output_fields=["count(*)"])[0]["count(*)"]
        firsts = sorted(pages(self.client, collection, "view == 0", ["chunk", "text", "meta"], rows), key=_by_chunk)
        chunks = [chunk_from_json({"text": r["text"], **r["meta"]["chunk"]}) for r in firsts]
        keywords = build_keywords(r["meta"]["counts"] for r in firsts)
        expected = sum(len(chunk_views(c)) for c in chunks)
        if len(chunks) != manifest.get("chunk_count") or rows != expected:
            raise IndexMismatch(f"{where} holds {rows} vectors for {len(chunks)} chunks: {REBUILD_HINT}")
        if terms_digest(keywords.terms) != manifest.get("keyword_terms"):
            raise IndexMismatch(f"{where} holds term counts its keyword vectors were not built from: {REBUILD_HINT}")
        texts = self.client.query(collection, filter="chunk == -1", output_fields=["count(*)"])[0]["count(*)"]
        search = MilvusSearch(self.client, collection, keywords, expected, texts, sparse_field(self.client, collection))
        return LoadedIndex(settings.index_dir, str(version), manifest, chunks, documents, None, keywords, search)

    @reported
    def publish(self, settings: Settings, new: NewVersion) -> None:
        collection = self.collection(new.version)
        previous = self.live()
        sparse = has_sparse(self.client)
        graph = len(new.matrix) > settings.ann_threshold
        create_collection(self.client, collection, new.matrix.shape[1], graph, sparse)
        self._loaded.add(collection)  # created with its indexes, a collection is loaded
        fit = (lambda rows: rows) if sparse else without_sparse
        for batch in batches(version_rows(new), BATCH):
            self.client.insert(collection, fit(batch))
        manifest = {
            **new.manifest,
            "dense": {"kind": "milvus", "index": "HNSW" if len(new.matrix) > settings.ann_threshold else "FLAT"},
            "files": {},
            "keyword_terms": terms_digest(new.keywords.terms),
            "keyword": "milvus sparse" if sparse else "aiqa postings",
        }
        # The manifest goes in last: a collection with one is complete (see _complete).
        self.client.insert(collection, fit(list(blob_rows("manifest", json.dumps(manifest), new.matrix.shape[1], -1))))
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

    @reported
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


def _by_chunk(row: dict[str, Any]) -> int:
    return int(row["chunk"])
