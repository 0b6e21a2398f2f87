"""The default store: index versions as folders on this machine's disk, FAISS vectors and keyword files.

Layout of the index folder:

    index/
      CURRENT            name of the live version folder (replaced atomically)
      .lock              held while a build runs
      v-<id>/            one complete version: manifest.json, chunks.json, documents.json,
                         vectors.faiss (aiqa.index.dense) and the keyword postings keywords.* (aiqa.index.keyword)

A build writes a new version folder beside the live one and then swaps CURRENT with an atomic
rename, so a reader always sees a complete version and a killed build leaves the old one live
(versions.py). An index folder on a read-only volume is served as it is and never written.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from aiqa.config import Settings
from aiqa.errors import IndexMismatch, IndexNotFound
from aiqa.index import dense
from aiqa.index.format import (
    REBUILD_HINT,
    Allowed,
    LoadedIndex,
    NewVersion,
    check_manifest,
    checked_shape,
    chunk_from_json,
    stored_documents,
    view_offsets,
)
from aiqa.index.keyword import KeywordIndex
from aiqa.stores.versions import current_version, make_live, prune, tidy


class LocalSearch:
    """The FAISS store's search: this process's FAISS index and memory-mapped keyword postings."""

    def __init__(self, vectors: Any, keywords: KeywordIndex):
        self.vectors = vectors
        self.keywords = keywords

    @property
    def vector_count(self) -> int:
        return int(self.vectors.ntotal)

    def dense(self, vector: np.ndarray, k: int, allowed: Allowed | None = None) -> tuple[np.ndarray, np.ndarray]:
        return dense.search(self.vectors, vector, k, None if allowed is None else allowed.rows)

    def keyword(self, terms: Sequence[str]) -> np.ndarray:
        return self.keywords.scores(terms)

    def rows(self, start: int, n: int) -> np.ndarray:
        return dense.rows(self.vectors, start, n)

    def rows_of(self, spans: Sequence[tuple[int, int]]) -> list[np.ndarray]:
        return [dense.rows(self.vectors, start, n) for start, n in spans]

    def all_rows(self) -> np.ndarray:
        return dense.all_rows(self.vectors)


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def read_manifest(index_dir: Path, version: str | None = None) -> dict[str, Any]:
    """Return the manifest of `version` (default: the live one); raise IndexNotFound when there is none."""
    version = version or current_version(index_dir)
    if version is None or not (index_dir / version / "manifest.json").exists():
        raise IndexNotFound(f"no index in {index_dir}/: run `aiqa index` to build it")
    try:
        manifest = _read_json(index_dir / version / "manifest.json")
    except ValueError:  # JSONDecodeError and UnicodeDecodeError: a damaged file
        manifest = None
    return checked_shape(manifest, f"{index_dir / version}/manifest.json")


class FileStore:
    """Versions as folders on this machine's disk: the default store."""

    def __init__(self, index_dir: Path):
        self.index_dir = index_dir

    def live(self) -> str | None:
        return current_version(self.index_dir)

    def manifest(self) -> dict[str, Any]:
        return read_manifest(self.index_dir)

    def load(self, settings: Settings) -> LoadedIndex:
        return _load_files(settings)

    def publish(self, settings: Settings, new: NewVersion) -> None:
        _write_version(settings, new)

    def tidy(self, live: str) -> None:
        tidy(self.index_dir, live)


def _load_files(settings: Settings) -> LoadedIndex:
    index_dir = settings.index_dir
    # CURRENT is read once: a build may swap it while we load, and the manifest and the files
    # must come from the same version.
    version = current_version(index_dir) or ""
    manifest = read_manifest(index_dir, version)
    check_manifest(manifest, settings, index_dir)
    folder = index_dir / version
    for name, digest in manifest["files"].items():
        path = folder / name
        if not path.exists() or _file_digest(path) != digest:
            raise IndexMismatch(f"{folder}/{name} is missing or damaged: {REBUILD_HINT}")
    chunks = [chunk_from_json(item) for item in _read_json(folder / "chunks.json")]
    documents = stored_documents(_read_json(folder / "documents.json"))
    vectors = dense.read(folder / "vectors.faiss")
    if vectors.ntotal != view_offsets(chunks)[-1] or vectors.d != manifest["dim"]:
        raise IndexMismatch(f"{folder}/ holds {vectors.ntotal} vectors for {len(chunks)} chunks: {REBUILD_HINT}")
    keywords = KeywordIndex.load(folder)
    if len(keywords) != len(chunks):
        raise IndexMismatch(f"{folder}/ holds keywords for {len(keywords)} of {len(chunks)} chunks: {REBUILD_HINT}")
    return LoadedIndex(folder, version, manifest, chunks, documents, vectors, keywords, LocalSearch(vectors, keywords))


def _file_digest(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _write_version(settings: Settings, new: NewVersion) -> None:
    """Write a complete version folder, then make it live with one atomic rename."""
    index_dir, version = settings.index_dir, new.version
    tmp = index_dir / f".tmp-{version}"
    tmp.mkdir()
    previous = current_version(index_dir)
    graph = index_dir / previous / "vectors.faiss" if previous else None
    extended = _extended(graph, new.matrix, settings.ann_threshold) if graph else None
    vectors = extended if extended is not None else dense.build(new.matrix, settings.ann_threshold)
    dense.write(vectors, tmp / "vectors.faiss")
    files = ["vectors.faiss", "chunks.json", "documents.json", *new.keywords.save(tmp)]
    _write_json(tmp / "chunks.json", [asdict(c) for c in new.chunks])
    _write_json(tmp / "documents.json", new.documents)
    manifest = {
        **new.manifest,
        "dense": dense.describe(vectors) | ({"added_to": previous} if extended is not None else {}),
        "files": {name: _file_digest(tmp / name) for name in files},
    }
    _write_json(tmp / "manifest.json", manifest)
    _fsync_tree(tmp)
    os.replace(tmp, index_dir / version)
    make_live(index_dir, version)
    prune(index_dir, keep={version} | ({previous} if previous else set()))


def _extended(path: Path, matrix: np.ndarray, threshold: int) -> Any | None:
    """The live version's graph with the new rows added, when the new version only adds (dense.extend)."""
    if len(matrix) <= threshold or not path.exists():
        return None
    try:
        return dense.extend(dense.read(path), matrix, threshold)
    except RuntimeError:  # a damaged file: faiss says so; the build makes a graph anew
        return None


def _fsync_tree(folder: Path) -> None:
    for path in folder.iterdir():
        with open(path, "rb") as fh:
            os.fsync(fh.fileno())
