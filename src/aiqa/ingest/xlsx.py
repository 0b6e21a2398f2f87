"""Excel .xlsx: each visible sheet a section named after it, its rows a table under the header row.

The workbook is opened read-only with the values Excel cached for formulas (a formula never
computed, e.g. in a file a script wrote, reads as empty). The header row is the row of labels
just above the first row of typed data (numbers, dates), else the first non-empty row; a
header cell merged over several columns labels each of them, and a merged group label in the
row above is put in front ("2025 상반기"). Rows above the header (a sheet title) are text.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile
import zlib
from collections.abc import Iterator
from typing import Any
from xml.etree.ElementTree import ParseError

from lxml import etree
from openpyxl import load_workbook
from openpyxl.utils.cell import range_boundaries
from openpyxl.utils.exceptions import InvalidFileException

from aiqa.errors import UnreadableDocument
from aiqa.ingest.base import Parsed

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # legacy .xls and password-protected workbooks
_HEAD_SCAN = 30  # rows looked at for the header
_MAX_COLUMNS = 200  # a sheet formatted to column XFD is mostly empty columns
_MERGE = re.compile(rb'<(?:\w+:)?mergeCell\s+ref="([A-Z]+[0-9]+:[A-Z]+[0-9]+)"')


def _open(data: bytes) -> Any:
    if data.startswith(_OLE_MAGIC):
        raise UnreadableDocument(
            "legacy .xls or password-protected workbook (save it in Excel as .xlsx without a password)"
        )
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise UnreadableDocument("not a valid XLSX (zip archive is corrupt)")
    try:
        return load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (KeyError, InvalidFileException):
        raise UnreadableDocument("not a valid XLSX (no workbook inside the zip; another format renamed?)") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, etree.XMLSyntaxError, ParseError, ValueError, TypeError):
        raise UnreadableDocument("not a valid XLSX (workbook XML is corrupt): open and re-save it in Excel") from None


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return " ".join(str(value).split()).replace("|", "/")


def _typed(value: Any) -> bool:
    return isinstance(value, int | float | dt.date | dt.time | dt.datetime) and not isinstance(value, bool)


def _merges(archive: zipfile.ZipFile, sheet_path: str) -> list[tuple[int, int, int, int]]:
    """Merged ranges of a sheet as (min_col, min_row, max_col, max_row): read-only mode drops them."""
    try:
        with archive.open(sheet_path) as f:
            tail = f.read()
    except KeyError:
        return []
    out = []
    for match in _MERGE.finditer(tail):
        bounds = range_boundaries(match.group(1).decode())
        if None not in bounds:
            out.append(bounds)
    return out


def _rows(sheet: Any, cut: list[bool]) -> Iterator[list[Any]]:
    """The rows of a sheet; past the header zone only those with a value. A sheet's stated size can
    reach row 1,048,576 for one far cell, and openpyxl yields every row up to it. cut[0] is set when
    a value lies past _MAX_COLUMNS."""
    for n, row in enumerate(sheet.iter_rows(values_only=True)):
        if len(row) > _MAX_COLUMNS and not cut[0]:
            cut[0] = any(v is not None and v != "" for v in row[_MAX_COLUMNS:])
        if n < _HEAD_SCAN or any(v is not None and v != "" for v in row):
            values = list(row[:_MAX_COLUMNS])
            while values and values[-1] is None:
                values.pop()
            yield values


def _fill(rows: list[list[Any]], merges: list[tuple[int, int, int, int]], first_row: int) -> None:
    """Copy a merged range's value into every cell it covers (rows are 1-based from `first_row`)."""
    for c1, r1, c2, r2 in merges:
        top = r1 - first_row
        if not 0 <= top < len(rows) or c1 - 1 >= len(rows[top]):
            continue
        value = rows[top][c1 - 1]
        for r in range(top, min(r2 - first_row + 1, len(rows))):
            row = rows[r]
            row.extend([None] * (min(c2, _MAX_COLUMNS) - len(row)))
            for c in range(c1 - 1, min(c2, _MAX_COLUMNS)):
                row[c] = value


def _labels(row: list[Any]) -> int:
    return len({v.strip() for v in row if isinstance(v, str)} - {""})


def _header_index(rows: list[list[Any]]) -> int:
    filled = [i for i, row in enumerate(rows) if any(v not in (None, "") for v in row)]
    for i in filled:
        if any(_typed(v) for v in rows[i]):
            labels = [j for j in filled if j < i and _labels(rows[j]) >= 2]
            return labels[-1] if labels else filled[0]
    return filled[0] if filled else -1


def _sheet(name: str, rows: list[list[Any]], merges: list[tuple[int, int, int, int]]) -> str:
    head = rows[:_HEAD_SCAN]
    _fill(head, merges, 1)
    h = _header_index(head)
    if h < 0:
        return ""
    width = max(len(r) for r in rows)
    used = [c for c in range(width) if any(c < len(r) and r[c] not in (None, "") for r in rows[h:])]
    # A group label merged over the columns above the header ("2025" over 상반기 | 하반기) is put in front.
    group = rows[h - 1] if h > 0 and any(c1 != c2 and r2 == h for c1, _, c2, r2 in merges) else None
    blocks = ["# " + " ".join(name.split())]
    for row in rows[: h - 1 if group is not None else h]:  # a title or notes above the table
        texts = list(dict.fromkeys(t for v in row if (t := _cell(v))))
        if texts:
            blocks.append(" ".join(texts))
    header: list[str] = []
    for c in used:
        label = _cell(rows[h][c]) if c < len(rows[h]) else ""
        above = _cell(group[c]) if group is not None and c < len(group) else ""
        label = f"{above} {label}".strip() if above and above != label else label
        header.append(label or f"열{len(header) + 1}")
    lines = [" | ".join(header) + " |"]
    for row in rows[h + 1 :]:
        cells = [_cell(row[c]) if c < len(row) else "" for c in used]
        if any(cells):
            lines.append(" | ".join(cells) + " |")
    blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def read(data: bytes) -> Parsed:
    """Read the visible sheets; hidden ones are left out and named in the notes."""
    book = _open(data)
    archive = zipfile.ZipFile(io.BytesIO(data))
    sections, notes = [], []
    try:
        for sheet in book.worksheets:
            if sheet.sheet_state != "visible":
                notes.append(f"hidden sheet '{sheet.title}' skipped (unhide it in Excel to have it read)")
                continue
            if not hasattr(sheet, "iter_rows"):
                continue  # a chart sheet
            path = getattr(sheet, "_worksheet_path", "") or ""
            try:
                cut = [False]
                rows = list(_rows(sheet, cut))
            except (etree.XMLSyntaxError, ParseError, zipfile.BadZipFile, zlib.error, EOFError, ValueError, KeyError):
                raise UnreadableDocument(
                    f"sheet '{sheet.title}' is corrupt: open and re-save the workbook in Excel"
                ) from None
            if text := _sheet(sheet.title, rows, _merges(archive, path.lstrip("/"))):
                sections.append(text)
            if cut[0]:
                notes.append(
                    f"sheet '{sheet.title}': columns past {_MAX_COLUMNS} left out (move that data to another sheet)"
                )
    finally:
        book.close()
    if not sections and notes:
        raise UnreadableDocument("every sheet is hidden (unhide the sheets to be read in Excel)")
    return Parsed(text="\n\n".join(sections), notes=tuple(notes))
