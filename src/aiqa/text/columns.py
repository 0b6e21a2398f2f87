"""Tables laid out with spaces: columns found where every row leaves the same stretch blank.

Plain text (and text extracted from a PDF) draws a table as rows whose cells line up under each
other, often with letter-spaced headers and a dashed rule:

      구    분          평    일          토요일·공휴일          비    고
      ------------------------------------------------------------------
      숙    직          60,000원           80,000원           18:00~다음 날 09:00
      온콜 당직         30,000원           40,000원           호출 출근 시 시간외수당 별도

A column boundary is a stretch of display columns (a Hangul syllable takes two) that is blank in
every row and at least two wide; cells are what lies between. Letter-spacing inside a cell is
undone ("숙    직" -> "숙직"), a lone dash is an empty cell, and a line that only continues cells of
the row above (a cell wrapped onto a second line) is joined to that row.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import regex

from aiqa.text.layout import Line

MIN_ROWS = 3  # a header and two rows
MIN_COLUMNS = 3  # two columns of words are as often a label and its value as a table
MIN_GAP = 2  # display columns between two cells
MAX_ROWS = 200  # a longer run of aligned lines is read as several tables
ROW_KINDS = frozenset({"paragraph", "bullet", "field"})
_GAP = regex.compile(r"(?<=\S)[ \t]{2,}(?=\S)")
_SPACED = regex.compile(r"^\p{Hangul}(?:[ \t]+\p{Hangul})+$")
# A word letter-spaced inside a line: single syllables two or more spaces apart ("숙    직").
_SPACED_WORD = regex.compile(r"(?<!\S)\p{Hangul}(?:[ \t]{2,}\p{Hangul}(?!\S))+")
_EMPTY = regex.compile(r"^[-–—－]$")


def width(text: str) -> int:
    """Display columns of a line: Hangul and other wide characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


@dataclass(frozen=True)
class AlignedRow:
    start: int  # the row's span in the text, continuation lines included
    end: int
    cells: tuple[str, ...]


def unspaced(text: str) -> str:
    """`text` with its letter-spaced words joined ("숙    직  60,000원" -> "숙직  60,000원"), as they are read."""
    return _SPACED_WORD.sub(lambda m: "".join(m.group().split()), text)


def _columns(text: str) -> list[int]:
    """The display column where each character of `text` starts, and one past the end."""
    out, col = [], 0
    for char in text:
        out.append(col)
        col += 1 if char == "\t" else width(char)
    out.append(col)
    return out


def _occupied(text: str) -> set[int]:
    cols = _columns(text)
    return {c for i, char in enumerate(text) if not char.isspace() for c in range(cols[i], cols[i + 1])}


def _cell(text: str) -> str:
    text = " ".join(text.split())
    if _SPACED.match(text):
        return "".join(text.split())
    return "" if _EMPTY.match(text) else text


def _cut(text: str, bounds: Sequence[int]) -> list[str]:
    """The cells of one line: its characters sorted into the columns between `bounds`."""
    cols = _columns(text)
    cells = [""] * (len(bounds) + 1)
    for i, char in enumerate(text):
        k = sum(cols[i] >= b for b in bounds)
        cells[k] += char
    return [_cell(c) for c in cells]


def _block(lines: Sequence[Line], kinds: Sequence[str], i: int) -> list[int]:
    """Indexes of the lines of a run of aligned rows from i: rows with a gap between words, dashed
    rules, and indented lines that continue the row above; it ends at a blank line or another kind."""
    taken: list[int] = []
    j = i
    while j < len(lines) and len(taken) < MAX_ROWS:
        kind, text = kinds[j], lines[j].text
        if kind == "rule":
            j += 1
            continue
        if kind not in ROW_KINDS:
            break
        gapped = _GAP.search(text.strip()) is not None
        indented = bool(taken) and text[: len(text) - len(text.lstrip())].count(" ") >= 8
        if not (gapped or indented):
            break
        taken.append(j)
        j += 1
    return taken


def _table(lines: Sequence[Line], kinds: Sequence[str], i: int) -> tuple[int, list[AlignedRow]] | None:
    """The table laid out with spaces that starts at line i: (the index after its last line, its header
    row then its rows), or None when the lines there are no such table."""
    if kinds[i] not in ROW_KINDS or not _GAP.search(lines[i].text.strip()):
        return None
    taken = _block(lines, kinds, i)
    if len(taken) < MIN_ROWS:
        return None
    texts = [lines[j].text.rstrip() for j in taken]
    occupied = [_occupied(t) for t in texts]
    used = set().union(*occupied)
    left, right = min(used), max(used)
    # Boundaries: the middles of the stretches no row writes in, MIN_GAP columns or wider.
    bounds, run = [], None
    for c in range(left, right + 1):
        if c not in used:
            run = c if run is None else run
        elif run is not None:
            if c - run >= MIN_GAP:
                bounds.append((run + c) // 2)
            run = None
    if len(bounds) + 1 < MIN_COLUMNS:
        return None
    grid = [_cut(t, bounds) for t in texts]
    grid, keep = _merge_spaced_columns(grid)
    if len(keep) < MIN_COLUMNS or sum(bool(c) for c in grid[0]) < len(keep) - 1:
        return None  # a header names every column but perhaps the first
    rows: list[AlignedRow] = []
    for j, cells in zip(taken, grid, strict=True):
        filled = sum(bool(c) for c in cells)
        if rows and len(rows) > 1 and not cells[0] and filled * 2 <= len(cells):
            last = rows[-1]  # a wrapped cell's second line: joined to the row above
            joined = tuple(" ".join(filter(None, (a, b))) for a, b in zip(last.cells, cells, strict=True))
            rows[-1] = AlignedRow(last.start, lines[j].end, joined)
        else:
            rows.append(AlignedRow(lines[j].start, lines[j].end, tuple(cells)))
    if len(rows) < MIN_ROWS or any(sum(bool(c) for c in r.cells) < 2 for r in rows[1:]):
        return None
    return taken[-1] + 1, rows


def aligned_tables(lines: Sequence[Line], kinds: list[str]) -> dict[int, tuple[int, list[AlignedRow]]]:
    """Every table laid out with spaces, by the index of its first line; the kind of each of their
    lines becomes "aligned" in `kinds`, so that no paragraph or heading takes them in."""
    found: dict[int, tuple[int, list[AlignedRow]]] = {}
    i = 0
    while i < len(lines):
        table = _table(lines, kinds, i)
        if table is None:
            i += 1
            continue
        found[i] = table
        kinds[i : table[0]] = ["aligned"] * (table[0] - i)
        i = table[0]
    return found


def _merge_spaced_columns(grid: list[list[str]]) -> tuple[list[list[str]], list[int]]:
    """Join neighbouring columns that only ever hold one syllable each: one letter-spaced column
    ("일    직" in every row) that the blank stretches split in two."""
    keep = list(range(len(grid[0])))
    k = 0
    while k + 1 < len(keep):
        a, b = keep[k], keep[k + 1]
        if all(len(row[a]) <= 1 and len(row[b]) <= 1 for row in grid):
            for row in grid:
                row[a] += row[b]
                row[b] = ""
            keep.pop(k + 1)
        else:
            k += 1
    return [[row[c] for c in keep] for row in grid], keep
