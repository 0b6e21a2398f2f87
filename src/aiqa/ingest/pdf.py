"""PDF: the text layer page by page, with the offset where each page starts for page citations.

A page without a text layer (a scan: images, fewer than OCR_MIN_CHARS characters of text) is read
by OCR from its images when Tesseract and its Korean model are installed (aiqa.ingest.ocr), and
marked in Parsed.ocr_pages so that its citations say "OCR"; without them the page is skipped
and the notes say what to install.
"""

from __future__ import annotations

import io
import logging
import warnings

from pypdf import PasswordType, PdfReader
from pypdf.errors import DependencyError

from aiqa.errors import UnreadableDocument
from aiqa.ingest import ocr
from aiqa.ingest.base import Parsed
from aiqa.ingest.text import normalize_newlines
from aiqa.text.reflow import reflow

# pypdf logs a warning, sometimes an "error", for every defect it works around (common in real
# PDFs) and goes on; what it cannot work around it raises, and that becomes UnreadableDocument.
# The log lines would bury the one line per unreadable file that the CLI reports.
logging.getLogger("pypdf").setLevel(logging.CRITICAL)

_PAGE_SEP = "\n\n"
OCR_MIN_CHARS = 10  # fewer characters of text than this on a page with images: a scan
_MAX_IMAGES = 20  # per page: a page tiled into many small images is no scan


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


def _scan_text(page) -> str | None:
    """OCR the images of a page; None when the page has no image to read."""
    try:
        images = list(page.images)[:_MAX_IMAGES]
    except Exception:  # an image stream pypdf cannot decode
        return None
    texts = []
    for image in images:
        try:
            picture = image.image
        except Exception:
            continue
        if picture is not None and (text := ocr.image_text(picture)):
            texts.append(text)
    return "\n\n".join(texts) if images else None


def _has_images(page) -> bool:
    try:
        return bool(page.images)
    except Exception:
        return False


def read(data: bytes) -> Parsed:
    """Extract the text layer of every page (OCR for scans); pages are joined with a blank line."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pypdf's PdfReadWarning: same noise as its logger
        reader = _open(data)
        try:
            pages = list(reader.pages)
        except Exception:
            raise UnreadableDocument("not a valid PDF (page tree is corrupt)") from None
        texts: list[str] = []
        failed = 0
        ocr_pages: list[int] = []
        scans: list[int] = []
        for number, page in enumerate(pages, start=1):
            try:
                text = page.extract_text() or ""
            except Exception:
                # One broken content stream should not cost the other pages; its page stays empty
                # so the page numbers of the rest remain right.
                failed += 1
                text = ""
            text = normalize_newlines(text).replace("\x00", "").strip()
            if len("".join(text.split())) < OCR_MIN_CHARS and _has_images(page):
                scans.append(number)
                if ocr.missing() is None and (read_text := _scan_text(page)):
                    text = read_text
                    ocr_pages.append(number)
            texts.append(text)
    notes = []
    unread = [n for n in scans if n not in ocr_pages]
    if unread:
        where = ", ".join(map(str, unread))
        why = ocr.missing()
        notes.append(
            f"scanned page(s) {where} skipped: {why}"
            if why
            else f"OCR found no text on scanned page(s) {where} (a faint scan or a picture?)"
        )
    if not any(texts):
        if failed:
            raise UnreadableDocument("PDF pages cannot be parsed (file is corrupt?)")
        if notes:
            raise UnreadableDocument(f"PDF has no text layer (a scan): {notes[0]}")
        raise UnreadableDocument("PDF has no text layer and no images to read (empty pages?)")
    starts: list[int] = []
    offset = 0
    for text in texts:
        starts.append(offset)
        offset += len(text) + len(_PAGE_SEP)
    # Lines are the page's, not the writer's: re-flow them (aiqa.text.reflow), page furniture out.
    flowed = reflow(_PAGE_SEP.join(texts), tuple(starts))
    return Parsed(text=flowed.text, pages=flowed.pages, notes=tuple(notes), ocr_pages=tuple(ocr_pages))
