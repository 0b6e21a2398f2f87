"""The shape every format reader returns."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Parsed:
    """Readable text of one file, in the plain layout the chunker understands.

    Layout every reader follows: headings as Markdown `#` lines, tables as pipe rows
    (`a | b | c |`, header row first, one row per line), one bullet per line starting `- `,
    paragraphs separated by blank lines.
    """

    text: str
    # Offsets into `text` where each page starts (page 1 at 0); empty when the format has no pages.
    pages: tuple[int, ...] = ()
    # What of the file was left out and why, with what to do about it ("hidden sheet 'x' skipped ...").
    notes: tuple[str, ...] = ()
    # 1-based pages whose text came from OCR (PDF scans): their citations say so.
    ocr_pages: tuple[int, ...] = ()
