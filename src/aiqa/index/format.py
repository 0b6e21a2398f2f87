"""The on-disk format of an index version: its manifest checks, its records, and how it is searched.

Below both the stores that keep versions (aiqa.stores) and the build that makes them (aiqa.build):
each reads and writes a version through what is defined here, and neither imports the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from aiqa.chunk import chunk_views
from aiqa.errors import IndexMismatch
from aiqa.index.keyword import KeywordIndex
from aiqa.records import Chunk, Document

if TYPE_CHECKING:
    from aiqa.config import Settings

# 5: statement vectors may be pooled from their chunk's encoder pass (aiqa.index.views).
FORMAT_VERSION = 5
REBUILD_HINT = "run `aiqa index` to rebuild it"


@dataclass(frozen=True)
class Allowed:
    """The dense rows one reader may see (sorted) and their groups: what a store's search masks by
    (aiqa.index.access)."""

    rows: np.ndarray
    groups: frozenset[str]


class Search(Protocol):
    """How one loaded version is searched: what Retriever reads besides the chunks."""

    @property
    def vector_count(self) -> int:
        """Dense rows in the version (each chunk's views, chunk by chunk)."""
        ...

    def dense(self, vector: np.ndarray, k: int, allowed: Allowed | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Inner products and row ids of the k best rows (ids -1 where fewer exist); with `allowed`,
        of the best among those rows only, masked before ranking (aiqa.index.access)."""
        ...

    def keyword(self, terms: Sequence[str]) -> np.ndarray:
        """BM25+ score of every chunk for the question's terms (as KeywordIndex.scores)."""
        ...

    def rows(self, start: int, n: int) -> np.ndarray:
        """The stored vectors of rows start .. start + n - 1."""
        ...

    def rows_of(self, spans: Sequence[tuple[int, int]]) -> list[np.ndarray]:
        """The stored vectors of several (start, n) row spans, in one call where the store allows."""
        ...

    def all_rows(self) -> np.ndarray:
        """Every stored vector in row order (a build reuses the unchanged documents' rows)."""
        ...


@dataclass
class NewVersion:
    """Everything one build writes: the store adds what it needs (files, digests) to the manifest."""

    version: str
    manifest: dict[str, Any]
    chunks: list[Chunk]
    documents: dict[str, dict[str, Any]]  # source -> {"sha256", "text", "pages"}
    matrix: np.ndarray  # every view's vector, chunk by chunk
    keywords: KeywordIndex


@dataclass
class LoadedIndex:
    """One version of the index in memory: what retrieval and answering read."""

    path: Path
    version: str
    manifest: dict[str, Any]
    chunks: list[Chunk]
    documents: dict[str, Document]
    vectors: Any  # faiss.Index (None on Milvus): each chunk's views (see Chunk.views) in consecutive rows
    keywords: KeywordIndex  # on Milvus: rebuilt from the stored term counts, for the answer layer's statistics
    search: Search  # dense and keyword search over this version, on whichever store holds it

    @property
    def model(self) -> str:
        return str(self.manifest["model"])

    @cached_property
    def offsets(self) -> np.ndarray:
        """Row of each chunk's first vector; offsets[i + 1] - offsets[i] is its number of views."""
        return view_offsets(self.chunks)

    @cached_property
    def owners(self) -> np.ndarray:
        """The chunk each vector row belongs to."""
        return np.repeat(np.arange(len(self.chunks)), np.diff(self.offsets))


def view_offsets(chunks: list[Chunk]) -> np.ndarray:
    """Cumulative vector rows of chunks laid out view by view (one more entry than chunks)."""
    return np.concatenate([[0], np.cumsum([len(chunk_views(c)) for c in chunks], dtype=np.int64)])


def checked_shape(manifest: Any, where: str) -> dict[str, Any]:
    """Return a parsed manifest if it has the fields a build and a load read; raise IndexMismatch if not."""
    if not isinstance(manifest, dict):
        raise IndexMismatch(f"{where} is damaged: {REBUILD_HINT}")
    for key, kind in (("files", dict), ("documents", dict), ("skipped", dict), ("dim", int)):
        if not isinstance(manifest.get(key), kind):
            raise IndexMismatch(f"{where} is damaged (bad '{key}'): {REBUILD_HINT}")
    return manifest


def check_manifest(manifest: dict[str, Any], settings: Settings, where: Path) -> None:
    """Refuse an index that another format version or embedding model wrote."""
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexMismatch(
            f"{where}/ has index format {manifest.get('format_version')}, this aiqa reads format "
            f"{FORMAT_VERSION}: {REBUILD_HINT}"
        )
    if manifest.get("model") != settings.embed_model:
        raise IndexMismatch(
            f"{where}/ was built with model {manifest.get('model')}, this aiqa uses "
            f"{settings.embed_model}: {REBUILD_HINT} (or set AIQA_EMBED_MODEL to the index's model)"
        )


def stored_documents(data: dict[str, dict[str, Any]]) -> dict[str, Document]:
    """The documents of a version from their JSON form (source -> sha256, text, pages)."""
    return {src: Document(src, d["text"], d["sha256"], tuple(d.get("pages", ()))) for src, d in data.items()}


def chunk_from_json(item: dict[str, Any]) -> Chunk:
    item = dict(item)
    item["cells"] = tuple(tuple(pair) for pair in item.get("cells", ()))
    item["statements"] = tuple(tuple(span) for span in item.get("statements", ()))
    item["groups"] = tuple(item.get("groups", ()))
    return Chunk(**item)


def document_json(doc: Document) -> dict[str, Any]:
    return {"sha256": doc.sha256, "text": doc.text, "pages": list(doc.pages)}
