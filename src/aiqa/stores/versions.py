"""Version folders of the index on disk: which one is live, making one live, clearing leftovers.

CURRENT names the live version folder. A CURRENT that cannot be read (a stray non-UTF-8 byte),
names no folder or names something that is not a version counts as damaged, not as a crash:
the newest complete version on disk is live instead, and the next build writes CURRENT anew.
A missing CURRENT means there is no index yet (a folder beside it is a killed first build).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from pathlib import Path

CURRENT = "CURRENT"
_NAME = re.compile(r"v-[0-9A-Za-z-]{1,80}")


def _complete(folder: Path) -> bool:
    """Tell whether a folder holds a manifest that parses (load_index verifies the rest)."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and isinstance(manifest.get("files"), dict)


def written_version(index_dir: Path) -> str | None:
    """What CURRENT says, if it names a version folder; None when it is missing or damaged.

    The folder's files are not checked here: a damaged file there is load_index's to report.
    """
    try:
        name = (index_dir / CURRENT).read_bytes().decode("utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return name if _NAME.fullmatch(name) and (index_dir / name).is_dir() else None


def newest_complete(index_dir: Path, before: str | None = None) -> str | None:
    """The newest complete version folder (names sort by build time), optionally older than `before`."""
    names = sorted((p.name for p in index_dir.glob("v-*") if _NAME.fullmatch(p.name)), reverse=True)
    return next((n for n in names if (before is None or n < before) and _complete(index_dir / n)), None)


def current_version(index_dir: Path) -> str | None:
    """Return the live version name, or None when the folder holds no index."""
    if not (index_dir / CURRENT).exists():
        return None
    return written_version(index_dir) or newest_complete(index_dir)


def make_live(index_dir: Path, version: str) -> None:
    """Point CURRENT at `version` with one atomic rename of a synced file."""
    pointer = index_dir / f".{CURRENT}.{uuid.uuid4().hex[:8]}"
    pointer.write_text(version, encoding="utf-8")
    with open(pointer, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(pointer, index_dir / CURRENT)


def prune(index_dir: Path, keep: set[str]) -> None:
    """Remove every version folder but `keep`, and what killed builds left behind.

    `keep` holds the live version and the one live before it: a process that loaded that one a
    moment ago may still be reading its files. A version folder that a killed build wrote but
    never made live goes, even when its name sorts last.
    """
    versions = [p for p in index_dir.glob("v-*") if p.is_dir() and p.name not in keep]
    for path in versions + list(index_dir.glob(".tmp-v-*")) + list(index_dir.glob(f".{CURRENT}.*")):
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


def tidy(index_dir: Path, live: str) -> None:
    """After a run that changed nothing: repair a damaged CURRENT and clear orphans of failed runs."""
    if written_version(index_dir) != live:
        make_live(index_dir, live)
    keep = {live, newest_complete(index_dir, before=live)}
    prune(index_dir, keep={v for v in keep if v is not None})
