"""Plain text and Markdown: decode the bytes (UTF-8/16 with or without BOM, CP949, EUC-KR...)."""

from __future__ import annotations

import codecs

from aiqa.errors import UnreadableDocument
from aiqa.ingest.base import Parsed
from aiqa.text.reflow import reflow_if_extracted

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def decode(data: bytes) -> str:
    """Return the text of `data`, detecting its encoding; raise UnreadableDocument if it has none."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(codec, errors="strict")
            except UnicodeDecodeError:
                raise UnreadableDocument(f"starts like {codec} text but holds invalid bytes (corrupt file?)") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        raise UnreadableDocument("binary or undecodable content (not text in any known encoding)")
    text = str(best)
    if "\x00" in text:
        raise UnreadableDocument("binary content (contains NUL bytes)")
    return text


def normalize_newlines(text: str) -> str:
    """Use \\n line ends only, so offsets and line numbers mean the same on every platform."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read(data: bytes) -> Parsed:
    """Decode a text file; Markdown is kept as written (the chunker reads `#` headings and tables)."""
    if b"\x00" in data and not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        # UTF-16 without a BOM is rare in practice; NULs otherwise mean binary.
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            raise UnreadableDocument("binary content (contains NUL bytes)") from None
        if not text.isprintable() and sum(not (c.isprintable() or c.isspace()) for c in text) > len(text) // 20:
            raise UnreadableDocument("binary content (contains NUL bytes)")
    else:
        text = decode(data)
    # A .txt that came out of a PDF is re-flowed (aiqa.text.reflow); clean text and Markdown stay as written.
    flowed = reflow_if_extracted(normalize_newlines(text))
    return Parsed(text=flowed.text, pages=flowed.pages)
