"""PowerPoint .pptx: each slide a section with its title and number, its text in reading order.

A slide's page (the offset list of Parsed.pages) is the slide number, so a citation names the
slide. Text frames are read top to bottom, then left to right; a body placeholder's paragraphs
are bullets, a text box's are paragraphs; tables are pipe rows (first row as header); the
speaker notes come last, marked "발표자 노트". Hidden slides are left out and named in the notes.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from collections.abc import Iterator
from typing import Any

import pptx
from lxml import etree
from pptx.enum.shapes import MSO_SHAPE_TYPE, PP_PLACEHOLDER
from pptx.exc import PackageNotFoundError

from aiqa.errors import UnreadableDocument
from aiqa.ingest.base import Parsed
from aiqa.ingest.blocks import join_blocks

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # legacy .ppt and password-protected decks
_TITLES = (PP_PLACEHOLDER.TITLE, PP_PLACEHOLDER.CENTER_TITLE, PP_PLACEHOLDER.VERTICAL_TITLE)
_BODIES = (PP_PLACEHOLDER.BODY, PP_PLACEHOLDER.OBJECT, PP_PLACEHOLDER.VERTICAL_BODY, PP_PLACEHOLDER.VERTICAL_OBJECT)
NOTES_MARK = "발표자 노트:"
_MAX_DEPTH = 20  # groups nest; a crafted file may nest them without end


def _open(data: bytes) -> Any:
    if data.startswith(_OLE_MAGIC):
        raise UnreadableDocument("legacy .ppt or password-protected deck (save it as a .pptx without a password)")
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise UnreadableDocument("not a valid PPTX (zip archive is corrupt)")
    try:
        return pptx.Presentation(io.BytesIO(data))
    except (PackageNotFoundError, KeyError):
        raise UnreadableDocument("not a valid PPTX (no presentation inside the zip)") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError):
        raise UnreadableDocument("not a valid PPTX (zip archive is corrupt)") from None
    except ValueError:  # "file ... is not a PowerPoint file, content type is ..."
        raise UnreadableDocument("not a PowerPoint deck (another Office format renamed .pptx?)") from None
    except etree.XMLSyntaxError:
        raise UnreadableDocument("not a valid PPTX (slide XML is corrupt): open and re-save it") from None


def _one_line(text: str) -> str:
    return " ".join(text.replace("\x0b", " ").split())


def _placeholder(shape: Any) -> Any:
    return shape.placeholder_format.type if shape.is_placeholder else None


def _shapes(shapes: Any, depth: int = 0) -> Iterator[Any]:
    """The shapes in reading order: top to bottom, then left to right; a group's shapes in its place."""
    if depth > _MAX_DEPTH:
        return
    for shape in sorted(shapes, key=lambda s: ((s.top or 0) // 50_000, s.left or 0)):  # ~1.4 mm rows
        if shape.shape_type == MSO_SHAPE_TYPE.GROUP:
            yield from _shapes(shape.shapes, depth + 1)
        else:
            yield shape


def _table(table: Any) -> str:
    rows = []
    for row in table.rows:
        cells = [("" if cell.is_spanned else _one_line(cell.text).replace("|", "/")) for cell in row.cells]
        if any(cells):
            rows.append(" | ".join(cells) + " |")
    return "\n".join(rows)


def _frame(shape: Any) -> list[tuple[str, str]]:
    """A text frame's blocks: bullets for a body placeholder's paragraphs, else paragraphs."""
    bullets = _placeholder(shape) in _BODIES
    lines = [text for p in shape.text_frame.paragraphs if (text := _one_line("".join(r.text for r in p.runs)))]
    if bullets:
        return [("li", "- " + line) for line in lines]
    return [("p", "\n".join(lines))] if lines else []


def _slide(number: int, slide: Any) -> str:
    title_shape = slide.shapes.title
    title = _one_line(title_shape.text_frame.text) if title_shape is not None and title_shape.has_text_frame else ""
    blocks: list[tuple[str, str]] = [("h", f"# {title or '슬라이드'} (slide {number})")]
    for shape in _shapes(slide.shapes):
        if title_shape is not None and shape.shape_id == title_shape.shape_id:
            continue
        if getattr(shape, "has_table", False) and shape.has_table:
            blocks.append(("table", _table(shape.table)))
        elif shape.has_text_frame:
            blocks.extend(_frame(shape))
    if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
        notes = _one_line(slide.notes_slide.notes_text_frame.text)
        if notes:
            blocks.append(("p", f"{NOTES_MARK} {notes}"))
    return join_blocks(blocks)


def read(data: bytes) -> Parsed:
    """Read every shown slide of a deck; each slide starts a page, so citations name the slide."""
    deck = _open(data)
    texts: list[str] = []
    notes: list[str] = []
    for number, slide in enumerate(deck.slides, start=1):
        if slide.element.get("show") in ("0", "false"):
            notes.append(f"hidden slide {number} skipped (show it in PowerPoint to have it read)")
            texts.append("")
            continue
        texts.append(_slide(number, slide))
    starts, offset = [], 0
    for text in texts:
        starts.append(offset)
        offset += len(text) + 2
    return Parsed(text="\n\n".join(texts), pages=tuple(starts), notes=tuple(notes))
