"""PDF: the text layer page by page, with the offset where each page starts for page citations."""

from __future__ import annotations

import io
import logging
import warnings

from pypdf import PasswordType, PdfReader
from pypdf.errors import DependencyError

from aiqa.errors import UnreadableDocument
from aiqa.ingest.base import Parsed
from aiqa.ingest.text import normalize_newlines
from aiqa.text.reflow import reflow

# pypdf logs a warning, sometimes an "error", for every defect it works around (common in real
# PDFs) and goes on; what it cannot work around it raises, and that becomes UnreadableDocument.
# The log lines would bury the one line per unreadable file that the CLI reports.
logging.getLogger("pypdf").setLevel(logging.CRITICAL)

_PAGE_SEP = "\n\n"


def _open(data: bytes) -> PdfReader:
    # The spec tolerates junk before the header, but not a file without one.
    if b"%PDF-" not in data[:1024]:
        raise UnreadableDocument("not a PDF (no %PDF header; wrong extension or corrupt file?)")
    try:
        reader = PdfReader(io.BytesIO(data))
    except Exception:  # pypdf raises many types on a damaged file; all mean the same to the user
        raise UnreadableDocument("not a valid PDF (file is corrupt or truncated)") from None
    if reader.is_encrypted:
        try:
            # Many PDFs are "encrypted" with an empty user password only to restrict printing.
            opened = reader.decrypt("") != PasswordType.NOT_DECRYPTED
        except DependencyError:
            raise UnreadableDocument(
                "encrypted PDF uses AES (install the 'cryptography' package, or remove the encryption)"
            ) from None
        except Exception:
            opened = False
        if not opened:
            raise UnreadableDocument("encrypted PDF (remove the password and re-add it)")
    return reader


def read(data: bytes) -> Parsed:
    """Extract the text layer of every page; pages are joined with a blank line."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pypdf's PdfReadWarning: same noise as its logger
        reader = _open(data)
        try:
            pages = list(reader.pages)
        except Exception:
            raise UnreadableDocument("not a valid PDF (page tree is corrupt)") from None
        texts: list[str] = []
        failed = 0
        for page in pages:
            try:
                text = page.extract_text() or ""
            except Exception:
                # One broken content stream should not cost the other pages; its page stays empty
                # so the page numbers of the rest remain right.
                failed += 1
                text = ""
            texts.append(normalize_newlines(text).replace("\x00", "").strip())
    if not any(texts):
        if failed:
            raise UnreadableDocument("PDF pages cannot be parsed (file is corrupt?)")
        raise UnreadableDocument("PDF has no text layer (scanned image?); run OCR first")
    starts: list[int] = []
    offset = 0
    for text in texts:
        starts.append(offset)
        offset += len(text) + len(_PAGE_SEP)
    # Lines are the page's, not the writer's: re-flow them (aiqa.text.reflow), page furniture out.
    flowed = reflow(_PAGE_SEP.join(texts), tuple(starts))
    return Parsed(text=flowed.text, pages=flowed.pages)
