"""Where index versions live: the interface the builder and the retriever use, and which store serves it.

Two stores keep the same versions (docs/scaling.md):

- "faiss" (the default): version folders on this machine's disk, FAISS vectors and keyword postings
  memory-mapped into each process (aiqa.files, aiqa.versions);
- "milvus": one Milvus collection per version and an alias naming the live one (aiqa.milvus), on a
  Milvus Lite file or a cluster that several app replicas share.

A build writes a whole new version and then switches the live one, on either store: when one
document changes, every chunk's BM25+ weights change with the corpus's term statistics, so editing
the live version in place would leave it scored against the old corpus while readers use it.
Unchanged documents' chunks, vectors and term counts are carried over, not recomputed
(index._reuse), which is what makes adding, replacing or deleting one document cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from aiqa import dense

if TYPE_CHECKING:
    from aiqa.chunk import Chunk
    from aiqa.config import Settings
    from aiqa.index import LoadedIndex
    from aiqa.keyword import KeywordIndex


class Search(Protocol):
    """How one loaded version is searched: what Retriever reads besides the chunks."""

    @property
    def vector_count(self) -> int:
        """Dense rows in the version (each chunk's views, chunk by chunk)."""
        ...

    def dense(self, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Inner products and row ids of the k best rows (ids -1 where fewer exist)."""
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


class Store(Protocol):
    """Where versions are kept and which one is live."""

    def live(self) -> str | None:
        """The live version's name, or None when there is no index yet."""
        ...

    def manifest(self) -> dict[str, Any]:
        """The live version's manifest; raise IndexNotFound or IndexMismatch."""
        ...

    def load(self, settings: Settings) -> LoadedIndex:
        """The live version, verified; raise IndexNotFound or IndexMismatch."""
        ...

    def publish(self, settings: Settings, new: NewVersion) -> None:
        """Write a complete version, then make it live; a failure before the switch leaves the old one live."""
        ...

    def tidy(self, live: str) -> None:
        """After a build that changed nothing: repair the live pointer and drop what failed builds left."""
        ...


class LocalSearch:
    """The FAISS store's search: this process's FAISS index and memory-mapped keyword postings."""

    def __init__(self, vectors: Any, keywords: KeywordIndex):
        self.vectors = vectors
        self.keywords = keywords

    @property
    def vector_count(self) -> int:
        return int(self.vectors.ntotal)

    def dense(self, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        return dense.search(self.vectors, vector, k)

    def keyword(self, terms: Sequence[str]) -> np.ndarray:
        return self.keywords.scores(terms)

    def rows(self, start: int, n: int) -> np.ndarray:
        return dense.rows(self.vectors, start, n)

    def rows_of(self, spans: Sequence[tuple[int, int]]) -> list[np.ndarray]:
        return [dense.rows(self.vectors, start, n) for start, n in spans]

    def all_rows(self) -> np.ndarray:
        return dense.all_rows(self.vectors)


def open_store(settings: Settings) -> Store:
    """The store that settings name (AIQA_STORE); pymilvus is imported only for "milvus"."""
    if settings.store == "milvus":
        from aiqa.milvus import milvus_store

        return milvus_store(settings)
    from aiqa.files import FileStore

    return FileStore(settings.index_dir)


def live_version(settings: Settings) -> str | None:
    """The live version on the configured store (what Engine compares to reload after a rebuild)."""
    return open_store(settings).live()
