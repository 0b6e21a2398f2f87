"""Build, update, load and verify the on-disk index: FAISS vectors + chunk store + manifest.

Layout of the index folder:

    index/
      CURRENT            name of the live version folder (replaced atomically)
      .lock              held while a build runs
      v-<id>/            one complete version: manifest.json, chunks.json, documents.json, vectors.faiss

A build writes a new version folder beside the live one and then swaps CURRENT with an atomic
rename, so a reader always sees a complete version and a killed build leaves the old one live
(versions.py). An index folder on a read-only volume is served as it is and never written.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from aiqa.chunk import CHUNKER_VERSION, Chunk, chunk_document
from aiqa.config import Settings
from aiqa.errors import EmptyCorpus, IndexBusy, IndexMismatch, IndexNotFound, IndexReadOnly
from aiqa.ingest import READERS_VERSION, Document, file_sha256
from aiqa.ingest.collect import collect
from aiqa.tokens import count_tokens
from aiqa.versions import CURRENT, current_version, make_live, prune, tidy

if TYPE_CHECKING:
    from aiqa.embed import Embedder

__all__ = ["CURRENT", "BuildReport", "LoadedIndex", "build_index", "current_version", "load_index", "read_manifest"]

FORMAT_VERSION = 3
REBUILD_HINT = "run `aiqa index` to rebuild it"


@dataclass(frozen=True)
class StoredDocument:
    source: str
    sha256: str
    text: str
    pages: tuple[int, ...] = ()


@dataclass
class LoadedIndex:
    """One version of the index in memory: what retrieval and answering read."""

    path: Path
    version: str
    manifest: dict[str, Any]
    chunks: list[Chunk]
    documents: dict[str, StoredDocument]
    vectors: Any  # faiss.Index: each chunk's views (see Chunk.views) in consecutive rows, chunk by chunk

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
    return np.concatenate([[0], np.cumsum([len(c.views) for c in chunks], dtype=np.int64)])


@dataclass
class BuildReport:
    """What one `aiqa index` run did."""

    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    chunks: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)
    index_version: str = ""
    embedded_chunks: int = 0
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["seconds"] = round(self.seconds, 3)
        return data


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
    if not isinstance(manifest, dict):
        raise IndexMismatch(f"{index_dir / version}/manifest.json is damaged: {REBUILD_HINT}")
    for key, kind in (("files", dict), ("documents", dict), ("skipped", dict), ("dim", int)):
        if not isinstance(manifest.get(key), kind):
            raise IndexMismatch(f"{index_dir / version}/manifest.json is damaged (bad '{key}'): {REBUILD_HINT}")
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


def load_index(settings: Settings) -> LoadedIndex:
    """Load the live version of the index, verifying format, model and file integrity."""
    import faiss

    index_dir = settings.index_dir
    # CURRENT is read once: a build may swap it while we load, and the manifest and the files
    # must come from the same version.
    version = current_version(index_dir) or ""
    manifest = read_manifest(index_dir, version)
    check_manifest(manifest, settings, index_dir)
    folder = index_dir / version
    for name, digest in manifest["files"].items():
        path = folder / name
        if not path.exists() or file_sha256(path.read_bytes()) != digest:
            raise IndexMismatch(f"{folder}/{name} is missing or damaged: {REBUILD_HINT}")
    chunks = [_chunk_from_json(item) for item in _read_json(folder / "chunks.json")]
    documents = {
        src: StoredDocument(src, d["sha256"], d["text"], tuple(d.get("pages", ())))
        for src, d in _read_json(folder / "documents.json").items()
    }
    vectors = faiss.read_index(str(folder / "vectors.faiss"))
    if vectors.ntotal != view_offsets(chunks)[-1] or vectors.d != manifest["dim"]:
        raise IndexMismatch(f"{folder}/ holds {vectors.ntotal} vectors for {len(chunks)} chunks: {REBUILD_HINT}")
    return LoadedIndex(folder, version, manifest, chunks, documents, vectors)


def _chunk_from_json(item: dict[str, Any]) -> Chunk:
    item = dict(item)
    item["cells"] = tuple(tuple(pair) for pair in item.get("cells", ()))
    item["statements"] = tuple(tuple(span) for span in item.get("statements", ()))
    return Chunk(**item)


def _chunking(settings: Settings) -> dict[str, int]:
    """What decides how a file becomes chunks besides its bytes; a change re-reads every file."""
    return {"version": CHUNKER_VERSION, "readers": READERS_VERSION, "max_tokens": settings.chunk_tokens}


def _previous(settings: Settings) -> tuple[dict[str, Any] | None, LoadedIndex | None]:
    """The live manifest and index if they can be reused for an incremental build."""
    try:
        manifest = read_manifest(settings.index_dir)
        check_manifest(manifest, settings, settings.index_dir)
        if manifest.get("chunking") != _chunking(settings):
            return manifest, None  # chunks were cut differently: every document is re-chunked
        return manifest, load_index(settings)
    except (IndexNotFound, IndexMismatch, OSError, ValueError, KeyError):
        return None, None


def build_index(
    settings: Settings,
    *,
    embedder_factory: Callable[[], Any] | None = None,
    progress: bool = False,
) -> BuildReport:
    """Bring the index in line with the corpus: embed new and changed documents only, then swap.

    Unchanged documents reuse their chunks and vectors; a run with no change neither loads the
    embedding model nor writes anything.
    """
    from filelock import FileLock, Timeout

    started = time.perf_counter()
    corpus, index_dir = settings.corpus_dir, settings.index_dir
    if not corpus.is_dir():
        raise EmptyCorpus(f"corpus folder {corpus}/ does not exist: create it and add documents, or pass --corpus")
    lock = FileLock(str(index_dir / ".lock"))
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        lock.acquire(timeout=0)
    except Timeout:
        raise IndexBusy(f"another `aiqa index` is building {index_dir}/ right now: wait for it to finish") from None
    except OSError as exc:  # a read-only volume (EROFS) or a folder this user may not write (EACCES)
        raise IndexReadOnly(
            f"cannot write to {index_dir}/ ({exc.strerror}): make it writable to rebuild, "
            "or serve the index in it as it is"
        ) from None
    try:
        return _build_locked(settings, embedder_factory, progress, started)
    finally:
        lock.release()


@dataclass
class _Plan:
    """What a build does with each corpus file, decided by comparing it with the live index."""

    keep: list[str] = field(default_factory=list)  # unchanged documents: chunks and vectors are reused
    fresh: list[Document] = field(default_factory=list)  # new or changed documents, parsed
    skipped: dict[str, dict[str, str]] = field(default_factory=dict)  # source -> reason and sha256


def _build_locked(
    settings: Settings, embedder_factory: Callable[[], Embedder] | None, progress: bool, started: float
) -> BuildReport:
    old_manifest, old = _previous(settings)
    old_docs: dict[str, dict[str, Any]] = (old_manifest or {}).get("documents", {})
    old_skips: dict[str, dict[str, str]] = (old_manifest or {}).get("skipped", {})
    found = collect(settings, old_docs if old is not None else {}, old_skips if old is not None else {})
    plan = _Plan(found.keep, found.fresh, found.skipped)
    new_chunks = _chunk_fresh(settings, plan)
    if not plan.keep and not plan.fresh:
        raise EmptyCorpus(
            f"no readable document in {settings.corpus_dir}/ (supported: .txt .md .html .pdf .docx): "
            "add documents and run again"
        )
    report = _tally(plan, old_docs)
    if old is not None and not plan.fresh and report.removed == 0 and set(plan.skipped) == set(old_skips):
        tidy(settings.index_dir, old.version)  # nothing to write; leftovers of killed builds go
        report.chunks, report.index_version = len(old.chunks), old.version
    else:
        chunks, vectors, documents = _reuse(old, plan.keep) if old else ([], [], {})
        documents |= {doc.source: _document_json(doc) for doc in plan.fresh}
        if new_chunks:
            embedder = embedder_factory() if embedder_factory else _default_embedder(settings)
            vectors.append(embedder.embed_passages([v for c in new_chunks for v in c.views], progress=progress))
            chunks.extend(new_chunks)
        matrix = np.ascontiguousarray(np.vstack(vectors).astype(np.float32))
        report.embedded_chunks, report.chunks = len(new_chunks), len(chunks)
        report.index_version = _write_version(settings, chunks, documents, plan.skipped, matrix)
    report.seconds = time.perf_counter() - started
    return report


def _chunk_fresh(settings: Settings, plan: _Plan) -> list[Chunk]:
    """Chunk the new and changed documents; one over the chunk cap moves to the skipped with a reason."""
    chunks: list[Chunk] = []
    cap = settings.max_chunks_per_document
    for doc in list(plan.fresh):
        made = chunk_document(doc, count_tokens, settings.chunk_tokens)
        if len(made) > cap:
            reason = f"makes {len(made)} chunks, over the cap of {cap} (split the file or raise AIQA_MAX_CHUNKS)"
            plan.skipped[doc.source] = {"reason": reason, "sha256": doc.sha256}
            plan.fresh.remove(doc)
            continue
        chunks.extend(made)
    return chunks


def _tally(plan: _Plan, old_docs: dict[str, dict[str, Any]]) -> BuildReport:
    """Count what the plan adds, updates, removes and keeps, against the live manifest's documents."""
    fresh = {d.source for d in plan.fresh}
    added = len(fresh - set(old_docs))
    return BuildReport(
        added=added,
        updated=len(fresh) - added,
        removed=len(set(old_docs) - set(plan.keep) - fresh),
        unchanged=len(plan.keep),
        skipped=[{"path": src, "reason": s["reason"]} for src, s in sorted(plan.skipped.items())],
    )


def _reuse(old: LoadedIndex, keep: list[str]) -> tuple[list[Chunk], list[np.ndarray], dict[str, dict[str, Any]]]:
    """The chunks, vectors (all views, in chunk order) and stored texts of the unchanged documents."""
    if not keep:
        return [], [], {}
    wanted = set(keep)
    kept = [i for i, c in enumerate(old.chunks) if c.source in wanted]
    starts = old.offsets  # a chunk's views are consecutive rows
    matrix = old.vectors.reconstruct_n(0, old.vectors.ntotal)
    rows = matrix[[row for i in kept for row in range(starts[i], starts[i + 1])]]
    documents = {src: _document_json(old.documents[src]) for src in keep}
    return [old.chunks[i] for i in kept], [rows], documents


def _document_json(doc: Document | StoredDocument) -> dict[str, Any]:
    return {"sha256": doc.sha256, "text": doc.text, "pages": list(doc.pages)}


def _default_embedder(settings: Settings) -> Embedder:
    from aiqa.embed import load_embedder

    return load_embedder(settings.embed_model, settings.cache_dir, settings.encoder_runtime)


def _write_version(
    settings: Settings,
    chunks: list[Chunk],
    documents: dict[str, dict[str, Any]],
    skipped: dict[str, dict[str, str]],
    matrix: np.ndarray,
) -> str:
    """Write a complete version folder, then make it live with one atomic rename."""
    import faiss

    index_dir = settings.index_dir
    version = time.strftime("v-%Y%m%dT%H%M%S-") + uuid.uuid4().hex[:8]
    tmp = index_dir / f".tmp-{version}"
    tmp.mkdir()
    vectors = faiss.IndexFlatIP(matrix.shape[1])
    vectors.add(matrix)
    faiss.write_index(vectors, str(tmp / "vectors.faiss"))
    _write_json(tmp / "chunks.json", [asdict(c) for c in chunks])
    _write_json(tmp / "documents.json", documents)
    per_doc: dict[str, dict[str, Any]] = {
        src: {"sha256": d["sha256"], "chunks": sum(1 for c in chunks if c.source == src)}
        for src, d in documents.items()
    }
    manifest = {
        "format_version": FORMAT_VERSION,
        "model": settings.embed_model,
        "dim": int(matrix.shape[1]),
        "chunking": _chunking(settings),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "version": version,
        "documents": per_doc,
        "chunk_count": len(chunks),
        "skipped": skipped,
        "files": {
            name: file_sha256((tmp / name).read_bytes()) for name in ("vectors.faiss", "chunks.json", "documents.json")
        },
    }
    _write_json(tmp / "manifest.json", manifest)
    _fsync_tree(tmp)
    previous = current_version(index_dir)
    os.replace(tmp, index_dir / version)
    make_live(index_dir, version)
    prune(index_dir, keep={version} | ({previous} if previous else set()))
    return version


def _fsync_tree(folder: Path) -> None:
    for path in folder.iterdir():
        with open(path, "rb") as fh:
            os.fsync(fh.fileno())
