"""Build, update and load the index: what changed in the corpus becomes a new version on the store.

A build compares the corpus with the live version's manifest (per-document content hashes),
parses, chunks and embeds only new and changed documents, reuses the rest, and hands the whole
new version to the store (aiqa.stores), which makes it live only once it is complete: files on
this machine by default (aiqa.stores.files), or Milvus (aiqa.stores.milvus).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from aiqa.chunk import CHUNKER_VERSION, chunk_document
from aiqa.config import Settings
from aiqa.errors import EmptyCorpus, IndexBusy, IndexMismatch, IndexNotFound, IndexReadOnly
from aiqa.index.access import AccessRules
from aiqa.index.format import FORMAT_VERSION, LoadedIndex, NewVersion, check_manifest, document_json
from aiqa.index.keyword import KeywordIndex, build_keywords, token_counts
from aiqa.index.views import embed_views
from aiqa.ingest import READERS_VERSION, SUPPORTED_EXTENSIONS, format_counts
from aiqa.ingest.collect import collect
from aiqa.laps import Laps
from aiqa.records import Chunk, Document
from aiqa.stores.registry import open_store
from aiqa.text.korean import analyse
from aiqa.text.tokens import count_tokens

if TYPE_CHECKING:
    from aiqa.embedders.base import Embedder

__all__ = ["BuildReport", "build_index"]


@dataclass
class BuildReport:
    """What one `aiqa index` run did."""

    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    chunks: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)
    # Per format: files indexed and skipped; and what readers left out of files they read (hidden sheets, scans).
    formats: dict[str, dict[str, int]] = field(default_factory=dict)
    notes: list[dict[str, str]] = field(default_factory=list)
    index_version: str = ""
    embedded_chunks: int = 0
    seconds: float = 0.0
    # Seconds spent in each step: read, chunk, embed, keywords (Kiwi + BM25 postings), write.
    steps: dict[str, float] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["seconds"] = round(self.seconds, 3)
        data["steps"] = {name: round(s, 3) for name, s in self.steps.items()}
        return data


def _chunking(settings: Settings) -> dict[str, int]:
    """What decides how a file becomes chunks besides its bytes; a change re-reads every file."""
    return {"version": CHUNKER_VERSION, "readers": READERS_VERSION, "max_tokens": settings.chunk_tokens}


def _previous(settings: Settings) -> tuple[dict[str, Any] | None, LoadedIndex | None]:
    """The live manifest and index if they can be reused for an incremental build."""
    store = open_store(settings)
    try:
        manifest = store.manifest()
        check_manifest(manifest, settings, settings.index_dir)
        if manifest.get("chunking") != _chunking(settings):
            return manifest, None  # chunks were cut differently: every document is re-chunked
        if manifest.get("statement_vectors") != settings.statement_vectors:
            return manifest, None  # statements were embedded the other way: every vector is made again
        return manifest, store.load(settings)
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
    clock = Laps()
    rules = AccessRules.of_corpus(settings.corpus_dir)  # a bad rules file stops the build before any work
    old_manifest, old = _previous(settings)
    old_docs: dict[str, dict[str, Any]] = (old_manifest or {}).get("documents", {})
    old_skips: dict[str, dict[str, str]] = (old_manifest or {}).get("skipped", {})
    found = collect(settings, old_docs if old is not None else {}, old_skips if old is not None else {})
    plan = _Plan(found.keep, found.fresh, found.skipped)
    clock.lap("read")
    new_chunks = _chunk_fresh(settings, plan)
    clock.lap("chunk")
    if not plan.keep and not plan.fresh:
        raise EmptyCorpus(
            f"no readable document in {settings.corpus_dir}/ (supported: {' '.join(SUPPORTED_EXTENSIONS)}): "
            "add documents and run again"
        )
    report = _tally(plan, old_docs)
    regrouped = any(old_docs[src].get("groups") != list(rules.groups_of(src)) for src in plan.keep)
    if (
        old is not None
        and not (plan.fresh or regrouped)
        and report.removed == 0
        and set(plan.skipped) == set(old_skips)
    ):
        open_store(settings).tidy(old.version)  # nothing to write; leftovers of killed builds go
        report.chunks, report.index_version = len(old.chunks), old.version
    else:
        chunks, vectors, documents, counts = _reuse(old, plan.keep) if old else ([], [], {}, [])
        documents |= {doc.source: document_json(doc) for doc in plan.fresh}
        # The keyword analysis (Kiwi, in C++) runs beside the encoder, which leaves a core idle between batches.
        with ThreadPoolExecutor(1, thread_name_prefix="aiqa-keywords") as pool:
            analysed = pool.submit(lambda: [token_counts(analyse(c.context).tokens) for c in new_chunks])
            if new_chunks:
                embedder = embedder_factory() if embedder_factory else _default_embedder(settings)
                vectors.append(embed_views(embedder, new_chunks, settings.statement_vectors, progress=progress))
                chunks.extend(new_chunks)
            clock.lap("embed")
            counts.extend(analysed.result())
        keywords = build_keywords(counts)
        clock.lap("keywords")
        matrix = np.ascontiguousarray(np.vstack(vectors).astype(np.float32))
        # Groups follow today's rules for every document, the unchanged ones too (a rule may have changed).
        chunks = [c if c.groups == (g := rules.groups_of(c.source)) else replace(c, groups=g) for c in chunks]
        report.embedded_chunks, report.chunks = len(new_chunks), len(chunks)
        new = _new_version(settings, chunks, documents, plan.skipped, matrix, keywords, rules)
        open_store(settings).publish(settings, new)
        report.index_version = new.version
        clock.lap("write")
    report.seconds = time.perf_counter() - started
    report.steps = clock.steps
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
        formats=format_counts([*plan.keep, *fresh], plan.skipped),
        notes=[{"path": d.source, "note": note} for d in plan.fresh for note in d.notes],
    )


def _reuse(
    old: LoadedIndex, keep: list[str]
) -> tuple[list[Chunk], list[np.ndarray], dict[str, dict[str, Any]], list[dict[str, int]]]:
    """The chunks, vectors (all views, in chunk order), stored texts and term counts of the unchanged documents."""
    if not keep:
        return [], [], {}, []
    wanted = set(keep)
    kept = [i for i, c in enumerate(old.chunks) if c.source in wanted]
    starts = old.offsets  # a chunk's views are consecutive rows
    matrix = old.search.all_rows()
    rows = matrix[[row for i in kept for row in range(starts[i], starts[i + 1])]]
    documents = {src: document_json(old.documents[src]) for src in keep}
    counts = [old.keywords.chunk_counts_of(i) for i in kept]
    return [old.chunks[i] for i in kept], [rows], documents, counts


def _default_embedder(settings: Settings) -> Embedder:
    from aiqa.embedders.registry import load_embedder

    return load_embedder(settings.embed_model, settings.cache_dir, settings.encoder_runtime)


def _new_version(
    settings: Settings,
    chunks: list[Chunk],
    documents: dict[str, dict[str, Any]],
    skipped: dict[str, dict[str, str]],
    matrix: np.ndarray,
    keywords: KeywordIndex,
    rules: AccessRules,
) -> NewVersion:
    """A version's content and the manifest fields every store records."""
    version = time.strftime("v-%Y%m%dT%H%M%S-") + uuid.uuid4().hex[:8]
    per_doc: dict[str, dict[str, Any]] = {
        src: {
            "sha256": d["sha256"],
            "chunks": sum(1 for c in chunks if c.source == src),
            "groups": list(rules.groups_of(src)),
        }
        for src, d in documents.items()
    }
    manifest = {
        "format_version": FORMAT_VERSION,
        "model": settings.embed_model,
        "dim": int(matrix.shape[1]),
        "chunking": _chunking(settings),
        "statement_vectors": settings.statement_vectors,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "version": version,
        "documents": per_doc,
        "chunk_count": len(chunks),
        "skipped": skipped,
    }
    return NewVersion(version, manifest, chunks, documents, matrix, keywords)
