"""Corpus folder -> the documents a build needs: walk it safely, read new files in a worker with a time limit.

Odd entries are skipped with a reason instead of stopping the build: a file name that is not
valid UTF-8, a symbolic link that leads out of the corpus (unless AIQA_FOLLOW_SYMLINKS is set:
its text would be quoted in answers), a dangling link or a link loop, a FIFO, socket or device
(opening a FIFO would wait forever). Hidden files and folders are ignored.

Each new or changed file is parsed in a separate worker process: a hostile file cannot hold
the server's interpreter, and one that takes longer than AIQA_READ_TIMEOUT is stopped and skipped.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiqa.config import Settings
from aiqa.errors import UnreadableDocument
from aiqa.ingest import file_sha256, is_supported
from aiqa.ingest.worker import Worker
from aiqa.records import Document


@dataclass
class Collected:
    """What a build found: unchanged sources, parsed new or changed documents, and skips with reasons."""

    keep: list[str] = field(default_factory=list)
    fresh: list[Document] = field(default_factory=list)
    skipped: dict[str, dict[str, str]] = field(default_factory=dict)


def shown(rel: str) -> str:
    """A path as text that JSON and a terminal can carry: undecodable bytes as \\xNN."""
    return os.fsencode(rel).decode("utf-8", "backslashreplace")


def _special(mode: int) -> str | None:
    for test, what in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device")):
        if test(mode):
            return what
    return "a device" if stat.S_ISBLK(mode) else None


def walk(root: Path, follow_symlinks: bool = False) -> Iterator[tuple[str, Path | None, str]]:
    """Yield (source, path, "") for each readable file under `root`, or (source, None, reason) for a skip."""
    real_root = os.path.realpath(root)

    def visit(folder: Path, prefix: str) -> Iterator[tuple[str, Path | None, str]]:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: os.fsencode(e.name))
        for entry in entries:
            if entry.name.startswith("."):
                continue
            rel, path = prefix + entry.name, Path(entry.path)
            try:
                rel.encode("utf-8")
            except UnicodeEncodeError:
                yield shown(rel), None, "file name is not valid UTF-8: rename it"
                continue
            if entry.is_symlink():
                reason = _link_problem(path, real_root, follow_symlinks)
                if reason:
                    yield rel, None, reason
                    continue
            mode = os.stat(path).st_mode
            if stat.S_ISDIR(mode):
                if not entry.is_symlink():
                    yield from visit(path, rel + "/")
                continue
            special = _special(mode)
            yield (rel, None, f"not a regular file ({special})") if special else (rel, path, "")

    yield from visit(root, "")


def _link_problem(path: Path, real_root: str, follow: bool) -> str | None:
    try:
        os.stat(path)
    except FileNotFoundError:
        return "dangling symbolic link (its target does not exist)"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symbolic link loop"
        return f"cannot follow symbolic link ({exc.strerror})"
    target = os.path.realpath(path)
    if os.path.isdir(target):
        return "symbolic link to a folder (link the files, or move the folder into the corpus)"
    inside = os.path.commonpath([real_root, target]) == real_root
    if not inside and not follow:
        return "symbolic link to a file outside the corpus folder (set AIQA_FOLLOW_SYMLINKS=1 to read it)"
    return None


def collect(settings: Settings, old_docs: dict[str, Any], old_skips: dict[str, Any]) -> Collected:
    """Walk the corpus; reuse what `old_docs` / `old_skips` already hold for unchanged bytes."""
    corpus = settings.corpus_dir
    out = Collected()
    max_bytes = settings.max_file_mb * 1_000_000
    caps = {
        "max_bytes": max_bytes,
        "max_unzipped_bytes": settings.max_unzipped_mb * 1_000_000,
        "max_zip_entries": settings.max_zip_entries,
    }
    worker = Worker(settings.read_timeout_s)
    try:
        for source, path, reason in walk(corpus, settings.follow_symlinks):
            if path is None:
                out.skipped[source] = {"reason": reason, "sha256": ""}
                continue
            if not is_supported(path):
                out.skipped[source] = {"reason": f"unsupported file type '{path.suffix or path.name}'", "sha256": ""}
                continue
            size = path.stat().st_size
            if size > max_bytes:
                reason = (
                    f"file is {size / 1e6:.1f} MB, over the {settings.max_file_mb} MB limit (raise AIQA_MAX_FILE_MB)"
                )
                out.skipped[source] = {"reason": reason, "sha256": ""}
                continue
            data = path.read_bytes()
            digest = file_sha256(data)
            if old_docs.get(source, {}).get("sha256") == digest:
                out.keep.append(source)
            elif old_skips.get(source, {}).get("sha256") == digest:
                out.skipped[source] = old_skips[source]
            else:
                try:
                    out.fresh.append(worker.read(path, corpus, data, caps))
                except UnreadableDocument as exc:
                    out.skipped[source] = {"reason": str(exc), "sha256": digest}
    finally:
        worker.close()
    return out
