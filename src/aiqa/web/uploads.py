"""Save uploaded documents into the corpus folder and rebuild: one implementation for the API and the UI.

A name is refused unless it is a plain file name (no path separators or look-alikes of them such
as "∕", no `..`, not hidden, no control or format characters such as U+200F or U+FEFF, no
separators but the plain space) with a supported extension; a file is refused over
settings.max_file_mb. Two files of one batch with the same name (compared in NFKC: NFC "한" and
NFD "한", "report.md" and "ｒｅｐｏｒｔ.md" look the same) are refused, as is a name whose NFKC form
already exists in the corpus, so no file is overwritten silently. Every file of a batch is first
written to a hidden temporary name inside the corpus folder (the indexer skips hidden files) and
only renamed into place once the whole batch is accepted. A corpus folder that cannot be written
gets a message, not a 500.
"""

from __future__ import annotations

import os
import tempfile
import unicodedata
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO

from aiqa.config import Settings
from aiqa.errors import BadRequest
from aiqa.ingest import SUPPORTED_EXTENSIONS
from aiqa.web.limits import MAX_FILES

_BLOCK = 1 << 20
# Characters that look like a path separator but are none (NFKC keeps them): "a∕b.md" shows as "a/b.md".
_SLASHES = set("\u2215\u2044\u29f8\u29f5\u29f9\u2216\u3033\u30fb")


class UploadRejected(BadRequest):
    """An uploaded file cannot be accepted; `status` is the HTTP status that says why."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def check_name(name: Any) -> str:
    """Return the upload's file name (NFC) if it is safe and supported; raise UploadRejected if not."""
    if not isinstance(name, str) or not name.strip():
        raise UploadRejected("every uploaded file needs a file name")
    name = unicodedata.normalize("NFC", name)
    shown = name.encode("unicode_escape").decode("ascii")
    folded = unicodedata.normalize("NFKC", name)  # "／" and "．．" are "/" and ".." in NFKC
    if any(c in folded for c in ("/", "\\", "..")) or any(ch in _SLASHES for ch in name):
        raise UploadRejected(f"'{shown}' is not a plain file name: upload the file itself, without a folder or '..'")
    if folded.startswith("."):
        raise UploadRejected(f"'{shown}' is a hidden file name: rename it so it does not start with '.'")
    # Cc control, Cf format (bidirectional marks and overrides, zero-width characters, BOM), and
    # Z* separators but the plain space (line and paragraph separators, odd spaces).
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") or (ch.isspace() and ch != " ") for ch in name):
        raise UploadRejected(f"'{shown}' contains control characters, format characters or separators: rename the file")
    if len(name.encode("utf-8")) > 255:
        raise UploadRejected(f"'{shown[:40]}…' is longer than 255 bytes: shorten the file name")
    suffix = Path(name).suffix.lower()
    if suffix not in SUPPORTED_EXTENSIONS:
        supported = ", ".join(SUPPORTED_EXTENSIONS)
        raise UploadRejected(f"'{shown}': unsupported file type '{suffix or name}'; supported: {supported}", 415)
    return name


def _fold(name: str) -> str:
    """The form in which two names that look alike are equal (NFKC, case kept: the disk keeps it)."""
    return unicodedata.normalize("NFKC", name)


def save_uploads(settings: Settings, files: Iterable[tuple[str, BinaryIO]]) -> list[str]:
    """Write uploaded (name, stream) pairs into the corpus folder; return the saved names.

    All or nothing: when one file is refused, none of the batch is written.
    """
    files = list(files)
    if not files:
        raise UploadRejected("no file in the upload: send one or more files in the 'files' field")
    if len(files) > MAX_FILES:
        raise UploadRejected(f"{len(files)} files in one upload: send at most {MAX_FILES} at a time", status=413)
    names = [check_name(name) for name, _ in files]
    folded = [_fold(n) for n in names]
    if len(set(folded)) < len(folded):
        twice = next(n for n, f in zip(names, folded, strict=True) if folded.count(f) > 1)
        raise UploadRejected(f"two files are named '{twice}' (perhaps in different Unicode forms): rename one")
    root = settings.corpus_dir.resolve()
    try:
        return _write_batch(settings, root, files, names)
    except OSError as exc:  # a read-only volume or a folder this user may not write
        raise UploadRejected(
            f"cannot write to the corpus folder ({exc.strerror}): make {settings.corpus_dir}/ writable",
            status=503,
        ) from None


def _write_batch(settings: Settings, root: Path, files: list[tuple[str, BinaryIO]], names: list[str]) -> list[str]:
    root.mkdir(parents=True, exist_ok=True)
    existing = {_fold(p.name): p.name for p in root.iterdir()}
    for name in names:
        if existing.get(_fold(name), name) != name:
            raise UploadRejected(
                f"the corpus already holds '{name}' under another Unicode form of the name: rename the upload"
            )
    targets = []
    for name in names:
        target = (root / name).resolve()
        # resolve() follows a symlink already in the corpus, so this also catches one pointing outside.
        if target.parent != root or target.is_dir():
            raise UploadRejected(f"'{name}' would not land inside the corpus folder: rename the file")
        targets.append(target)

    limit = settings.max_file_mb * 1_000_000
    written: list[tuple[str, Path]] = []
    try:
        for (_, stream), name in zip(files, names, strict=True):
            fd, tmp = tempfile.mkstemp(prefix=".upload-", suffix=".part", dir=root)
            written.append((tmp, root / name))
            size = 0
            with os.fdopen(fd, "wb") as out:
                while block := stream.read(_BLOCK):
                    size += len(block)
                    if size > limit:
                        raise UploadRejected(
                            f"'{name}' is over the {settings.max_file_mb} MB limit (raise AIQA_MAX_FILE_MB)",
                            status=413,
                        )
                    out.write(block)
            if size == 0:
                raise UploadRejected(f"'{name}' is empty: upload a document with text")
        for tmp, target in written:
            os.replace(tmp, target)
    finally:
        for tmp, _ in written:
            Path(tmp).unlink(missing_ok=True)
    return names


def uploaded_files(paths: list[str] | None) -> list[Path]:
    """Keep the admin tab to files Gradio received: each must be a regular file in its upload folder.

    A second line behind Gradio's own check (see mount_ui): a file component trusts the `path`
    a client sends, and any file on the server (e.g. /etc/passwd) that reached the corpus would
    be quoted in answers.
    """
    from gradio.utils import get_upload_folder

    folder = os.path.realpath(get_upload_folder())
    out = []
    for raw in paths or []:
        path = Path(raw)
        real = os.path.realpath(path)
        if path.is_symlink() or os.path.commonpath([folder, real]) != folder or not path.is_file():
            raise UploadRejected(f"'{path.name}' was not uploaded through this page: upload the file again")
        out.append(path)
    return out


def rebuild(settings: Settings, embedder_factory: Callable[[], Any] | None = None) -> dict[str, Any]:
    """Bring the index up to date with the corpus; return the BuildReport as JSON."""
    from aiqa.build import build_index

    return build_index(settings, embedder_factory=embedder_factory).as_json()


def upload_and_rebuild(
    settings: Settings,
    files: Iterable[tuple[str, BinaryIO]],
    embedder_factory: Callable[[], Any] | None = None,
) -> dict[str, Any]:
    """Save the uploads, then rebuild; return {"saved": [...], "report": BuildReport JSON}."""
    saved = save_uploads(settings, files)
    return {"saved": saved, "report": rebuild(settings, embedder_factory)}
