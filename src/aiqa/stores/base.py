"""Where index versions live: the interface every store implements (aiqa.stores.registry picks one).

Two stores keep the same versions (docs/scaling.md):

- "faiss" (the default): version folders on this machine's disk, FAISS vectors and keyword postings
  memory-mapped into each process (aiqa.stores.files, aiqa.stores.versions);
- "milvus": one Milvus collection per version and an alias naming the live one (aiqa.stores.milvus), on a
  Milvus Lite file or a cluster that several app replicas share.

A build writes a whole new version and then switches the live one, on either store: when one
document changes, every chunk's BM25+ weights change with the corpus's term statistics, so editing
the live version in place would leave it scored against the old corpus while readers use it.
Unchanged documents' chunks, vectors and term counts are carried over, not recomputed
(aiqa.build), which is what makes adding, replacing or deleting one document cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from aiqa.config import Settings
    from aiqa.index.format import LoadedIndex, NewVersion


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
