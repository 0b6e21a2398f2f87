"""Files -> Document: find the corpus files, read each with the reader for its format."""

from __future__ import annotations

import hashlib
import importlib
import io
import zipfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from aiqa.errors import UnreadableDocument
from aiqa.records import Document

# Bump when a reader's output changes, so `aiqa index` re-reads files whose bytes did not change
# (and retries files it skipped before).
# 2: PDF text and PDF-like .txt are re-flowed (aiqa.text.reflow); 3: scanned PDF pages are OCR'd.
READERS_VERSION = 3
# One module per format; each exposes read(data: bytes) -> Parsed.
_EXT_TO_MODULE = {
    ".txt": "aiqa.ingest.text",
    ".md": "aiqa.ingest.text",
    ".markdown": "aiqa.ingest.text",
    ".html": "aiqa.ingest.html",
    ".htm": "aiqa.ingest.html",
    ".pdf": "aiqa.ingest.pdf",
    ".docx": "aiqa.ingest.docx",
    ".xlsx": "aiqa.ingest.xlsx",
    ".xlsm": "aiqa.ingest.xlsx",
    ".pptx": "aiqa.ingest.pptx",
    ".hwp": "aiqa.ingest.hwp",
    ".hwpx": "aiqa.ingest.hwpx",
}
SUPPORTED_EXTENSIONS = tuple(sorted(_EXT_TO_MODULE))


def format_counts(read: Iterable[str], skipped: Iterable[str]) -> dict[str, dict[str, int]]:
    """Per file format (extension without the dot, "other" when none): how many files were read and skipped."""
    out: dict[str, dict[str, int]] = {}
    for key, sources in (("indexed", read), ("skipped", skipped)):
        for source in sources:
            suffix = PurePosixPath(source).suffix.lower().lstrip(".") or "other"
            counts = out.setdefault(suffix, {"indexed": 0, "skipped": 0})
            counts[key] += 1
    return dict(sorted(out.items()))


def is_supported(path: Path) -> bool:
    """Tell whether a file's extension has a reader."""
    return path.suffix.lower() in _EXT_TO_MODULE


def file_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_archive(data: bytes, max_unzipped_bytes: int, max_entries: int) -> None:
    """Refuse a zip-based file (.docx) that would unpack to more than the caps: a "zip bomb".

    The sizes in the zip's directory bound what reading can produce: zipfile stops each entry
    at its declared size.
    """
    if not data.startswith(b"PK") or not zipfile.is_zipfile(io.BytesIO(data)):
        return
    try:
        entries = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return  # the format's reader says what is wrong with it
    if len(entries) > max_entries:
        raise UnreadableDocument(
            f"archive holds {len(entries)} entries, over the cap of {max_entries} (raise AIQA_MAX_ZIP_ENTRIES)"
        )
    unpacked = sum(e.file_size for e in entries)
    if unpacked > max_unzipped_bytes:
        raise UnreadableDocument(
            f"archive unpacks to {unpacked / 1e6:.0f} MB, over the cap of {max_unzipped_bytes / 1e6:.0f} MB "
            "(raise AIQA_MAX_UNZIPPED_MB)"
        )


def read_document(
    path: Path,
    root: Path,
    *,
    max_bytes: int,
    data: bytes | None = None,
    max_unzipped_bytes: int = 200_000_000,
    max_zip_entries: int = 2000,
) -> Document:
    """Read one corpus file into a Document; raise UnreadableDocument with a one-line reason."""
    module_name = _EXT_TO_MODULE.get(path.suffix.lower())
    if module_name is None:
        raise UnreadableDocument(
            f"unsupported file type '{path.suffix or path.name}' (supported: {', '.join(SUPPORTED_EXTENSIONS)})"
        )
    if data is None:
        size = path.stat().st_size
        if size > max_bytes:
            raise UnreadableDocument(
                f"file is {size / 1e6:.1f} MB, over the {max_bytes / 1e6:.0f} MB limit (raise AIQA_MAX_FILE_MB)"
            )
        data = path.read_bytes()
    if not data.strip():
        raise UnreadableDocument("empty file")
    check_archive(data, max_unzipped_bytes, max_zip_entries)
    reader = importlib.import_module(module_name)
    try:
        # Readers that unpack streams themselves (HWP's deflated records) take the cap of check_archive.
        parsed = reader.read(data, max_unzipped_bytes) if getattr(reader, "CAPPED", False) else reader.read(data)
    except UnreadableDocument:
        raise
    except Exception as exc:  # a parser library failing on a corrupt file
        raise UnreadableDocument(f"cannot parse {path.suffix} file: {type(exc).__name__}: {exc}") from None
    if not parsed.text.strip():
        raise UnreadableDocument("no readable text (scanned image or empty document?)")
    return Document(
        source=path.relative_to(root).as_posix(),
        text=parsed.text,
        sha256=file_sha256(data),
        pages=parsed.pages,
        notes=parsed.notes,
        ocr_pages=parsed.ocr_pages,
    )
