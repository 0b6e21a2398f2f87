"""Which store serves the index: a setting names the backend, imported only when asked for."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiqa.config import Settings
    from aiqa.index.format import LoadedIndex
    from aiqa.stores.base import Store


def open_store(settings: Settings) -> Store:
    """The store that settings name (AIQA_STORE); pymilvus is imported only for "milvus"."""
    if settings.store == "milvus":
        from aiqa.stores.milvus import milvus_store

        return milvus_store(settings)
    from aiqa.stores.files import FileStore

    return FileStore(settings.index_dir)


def live_version(settings: Settings) -> str | None:
    """The live version on the configured store (what Engine compares to reload after a rebuild)."""
    return open_store(settings).live()


def load_index(settings: Settings) -> LoadedIndex:
    """Load the live version of the index from the configured store, verifying format, model and integrity."""
    return open_store(settings).load(settings)
