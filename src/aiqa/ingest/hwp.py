"""Hancom HWP 5.x: the body's paragraphs, outline headings, lists and tables, read from the records.

An HWP 5 file is an OLE compound file (opened with olefile); each BodyText/SectionN stream is a
run of records, raw-deflate compressed when the file header says so. A record is a 32-bit header
(tag, nesting level, size) and its data. A paragraph (PARA_HEADER) holds its text (PARA_TEXT,
UTF-16 with inline control codes) and its controls (CTRL_HEADER): a table ("tbl ") holds a
TABLE record and one LIST_HEADER per cell (with its column, row and spans) followed by the cell's
paragraphs. Headings are paragraphs whose paragraph shape (in DocInfo) is an outline level;
headers, footers, footnotes and hidden comments are page furniture and left out. Decompression is
capped, so a small file cannot unpack into gigabytes.
"""

from __future__ import annotations

import io
import re
import struct
import zlib
from array import array
from dataclasses import dataclass, field

import olefile

from aiqa.errors import UnreadableDocument
from aiqa.ingest.base import Parsed
from aiqa.ingest.blocks import Blocks, grid, one_line, place

CAPPED = True  # read() takes max_unpacked: read_document passes the unzipped-size cap
_PARA_SHAPE, _STYLE = 25, 26  # DocInfo tags
_PARA_HEADER, _PARA_TEXT, _CTRL_HEADER, _LIST_HEADER, _TABLE = 66, 67, 71, 72, 77
_EXTENDED = frozenset({1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23})  # 8 units each
_SKIPPED_CONTROLS = frozenset({b"head", b"foot", b"fn  ", b"en  ", b"tcmt", b"pghd"})
_OUTLINE_STYLE = re.compile(r"(?:개요|Outline)\s*(\d)")
MAX_RECORDS = 3_000_000
_MAX_DEPTH = 30


@dataclass
class _Node:
    tag: int
    level: int
    data: bytes
    children: list[_Node] = field(default_factory=list)


def _records(raw: bytes) -> _Node:
    """The records of a stream as a tree: a record is the child of the last one a level above it."""
    root = _Node(-1, -1, b"")
    stack = [root]
    pos, count = 0, 0
    while pos + 4 <= len(raw):
        (header,) = struct.unpack_from("<I", raw, pos)
        pos += 4
        tag, level, size = header & 0x3FF, (header >> 10) & 0x3FF, header >> 20
        if size == 0xFFF:
            if pos + 4 > len(raw):
                break
            (size,) = struct.unpack_from("<I", raw, pos)
            pos += 4
        count += 1
        if count > MAX_RECORDS:
            raise UnreadableDocument(f"HWP section holds over {MAX_RECORDS} records (damaged or crafted file?)")
        node = _Node(tag, level, raw[pos : pos + size])
        pos += size
        while len(stack) > 1 and stack[-1].level >= level:
            stack.pop()
        if level > stack[-1].level + 1 + _MAX_DEPTH:
            continue  # a level jump no real file has
        stack[-1].children.append(node)
        stack.append(node)
    return root


def _inflate(data: bytes, budget: list[int]) -> bytes:
    """Raw-deflate `data`, taking what it unpacks to from budget[0]; refuse past the budget."""
    out = zlib.decompressobj(-15).decompress(data, budget[0] + 1)
    if len(out) > budget[0]:
        raise UnreadableDocument(
            "HWP file unpacks to more than the cap (raise AIQA_MAX_UNZIPPED_MB if the file is genuine)"
        )
    budget[0] -= len(out)
    return out


def _text(data: bytes) -> str:
    """A PARA_TEXT record as text: inline and extended controls dropped, tabs and line breaks kept."""
    units = array("H")
    units.frombytes(data[: len(data) // 2 * 2])
    keep = array("H")
    i = 0
    while i < len(units):
        c = units[i]
        if c >= 32:
            keep.append(c)
        elif c == 9:
            keep.append(9)
            i += 7
        elif c in _EXTENDED:
            i += 7
        elif c == 10:
            keep.append(10)
        elif c in (24, 30, 31):  # hyphen, non-breaking and fixed-width spaces
            keep.append(45 if c == 24 else 32)
        i += 1
    return keep.tobytes().decode("utf-16-le", "replace")


def _walk(node: _Node) -> list[_Node]:
    """Every record under `node`, in file order (DocInfo nests its lists under ID_MAPPINGS)."""
    out, stack = [], list(reversed(node.children))
    while stack:
        current = stack.pop()
        out.append(current)
        stack.extend(reversed(current.children))
    return out


@dataclass
class _Styles:
    shapes: list[tuple[int, int]]  # per paragraph shape: (heading type, level)
    outline: dict[int, int]  # style id -> heading level, for styles named "개요 N"


def _styles(docinfo: _Node) -> _Styles:
    shapes, outline, style_id = [], {}, 0
    for node in _walk(docinfo):
        if node.tag == _PARA_SHAPE and len(node.data) >= 4:
            (props,) = struct.unpack_from("<I", node.data)
            shapes.append(((props >> 23) & 3, (props >> 25) & 7))
        elif node.tag == _STYLE and len(node.data) >= 2:
            (n,) = struct.unpack_from("<H", node.data)
            name = node.data[2 : 2 + 2 * n].decode("utf-16-le", "replace")
            if match := _OUTLINE_STYLE.match(name):
                outline[style_id] = int(match.group(1))
            style_id += 1
    return _Styles(shapes, outline)


class _Reader:
    def __init__(self, styles: _Styles):
        self.styles = styles
        self.out = Blocks()

    def kind(self, para: _Node) -> tuple[str, int]:
        if len(para.data) < 11:
            return "p", 0
        shape_id, style_id = struct.unpack_from("<HB", para.data, 8)
        head, level = self.styles.shapes[shape_id] if shape_id < len(self.styles.shapes) else (0, 0)
        if head == 1:
            return "h", level + 1
        if style_id in self.styles.outline:
            return "h", self.styles.outline[style_id]
        return ("li", 0) if head in (2, 3) else ("p", 0)

    def body(self, paragraphs: list[_Node]) -> None:
        for para in paragraphs:
            if para.tag != _PARA_HEADER:
                continue
            text = "".join(_text(n.data) for n in para.children if n.tag == _PARA_TEXT)
            self.out.add(*self.kind(para), text)
            for ctrl in para.children:
                if ctrl.tag != _CTRL_HEADER:
                    continue
                ident = ctrl.data[:4][::-1]
                if ident == b"tbl ":
                    self.table(ctrl)
                elif ident not in _SKIPPED_CONTROLS and (inner := flat_text(ctrl)):
                    self.out.paragraph(inner)  # a text box or another object with paragraphs

    def table(self, ctrl: _Node, depth: int = 0) -> None:
        """Emit a table's caption, its rows, then the tables nested in its cells (a layout table's
        content), each as a table of its own."""
        spec = next((n for n in ctrl.children if n.tag == _TABLE and len(n.data) >= 8), None)
        if spec is None or depth > _MAX_DEPTH:
            return
        caption, cells = _cells(ctrl)
        self.out.paragraph(" ".join(t for p in caption if (t := flat_text(p))))
        rows, cols = struct.unpack_from("<HH", spec.data, 4)
        table = grid(rows, cols)
        nested: list[_Node] = []
        for cell, paragraphs in cells:
            col, row = struct.unpack_from("<HH", cell.data, 8)
            place(table, row, col, " ".join(t for p in paragraphs if (t := flat_text(p, nested=nested))))
        self.out.table(table)
        for inner in nested:
            self.table(inner, depth + 1)


def _cells(ctrl: _Node) -> tuple[list[_Node], list[tuple[_Node, list[_Node]]]]:
    """A table's caption paragraphs (a list before its TABLE record), and each cell's LIST_HEADER
    (after it) with the paragraphs that follow."""
    caption: list[_Node] = []
    cells: list[tuple[_Node, list[_Node]]] = []
    seen_table = False
    for node in ctrl.children:
        seen_table = seen_table or node.tag == _TABLE
        if node.tag == _LIST_HEADER and len(node.data) >= 12 and seen_table:
            cells.append((node, []))
        elif node.tag == _PARA_HEADER and cells:
            cells[-1][1].append(node)
        elif node.tag == _PARA_HEADER and not seen_table:
            caption.append(node)
    return caption, cells


def flat_text(node: _Node, depth: int = 0, nested: list[_Node] | None = None) -> str:
    """All the text under a record (a cell's paragraphs, a text box) on one line; tables in it go to
    `nested` when given (to be emitted after), else their text is part of it."""
    if depth > _MAX_DEPTH:
        return ""
    parts = []
    for child in node.children:
        if child.tag == _PARA_TEXT:
            parts.append(_text(child.data))
        elif child.tag == _CTRL_HEADER and child.data[:4][::-1] in _SKIPPED_CONTROLS:
            continue
        elif nested is not None and child.tag == _CTRL_HEADER and child.data[:4][::-1] == b"tbl ":
            nested.append(child)
        else:
            parts.append(flat_text(child, depth + 1, nested))
    return one_line(" ".join(parts))


def _open(data: bytes) -> olefile.OleFileIO:
    if data.startswith(b"HWP Document File V3"):
        raise UnreadableDocument("HWP 3.x file: open it in Hancom Office and save it as HWP or HWPX")
    if not olefile.isOleFile(io.BytesIO(data)):
        raise UnreadableDocument("not a valid HWP file (not an HWP 5 document; wrong extension or corrupt?)")
    try:
        return olefile.OleFileIO(io.BytesIO(data))
    except (OSError, ValueError, struct.error, IndexError):
        raise UnreadableDocument(
            "HWP file is corrupt (broken OLE structure): open it in Hancom Office and save it again"
        ) from None


def read(data: bytes, max_unpacked: int = 200_000_000) -> Parsed:
    """Read the body text of every section, in order."""
    if data.startswith(b"PK"):
        from aiqa.ingest import hwpx  # an HWPX file named .hwp

        return hwpx.read(data, max_unpacked)
    ole = _open(data)
    try:
        if not ole.exists("FileHeader"):
            raise UnreadableDocument("not an HWP document (an OLE file without an HWP header; wrong extension?)")
        header = ole.openstream("FileHeader").read(256)
        if not header.startswith(b"HWP Document File") or len(header) < 40:
            raise UnreadableDocument("not an HWP document (an OLE file without an HWP header; wrong extension?)")
        (props,) = struct.unpack_from("<I", header, 36)
        if props & 2:
            raise UnreadableDocument("password-protected HWP: remove the password in Hancom Office and save again")
        if props & 4:
            raise UnreadableDocument(
                "distribution-only HWP (배포용 문서): its text is encrypted; ask the author for the editable file"
            )
        sections = sorted(
            (int(path[1][7:]), "/".join(path))
            for path in ole.listdir()
            if len(path) == 2 and path[0] == "BodyText" and re.fullmatch(r"Section\d{1,5}", path[1])
        )
        if not sections:
            raise UnreadableDocument("HWP file has no body text (damaged?): open it in Hancom Office and save again")
        budget = [max_unpacked]

        def stream(name: str) -> bytes:
            raw = ole.openstream(name).read()
            return _inflate(raw, budget) if props & 1 else raw

        docinfo = _records(stream("DocInfo")) if ole.exists("DocInfo") else _Node(-1, -1, b"")
        reader = _Reader(_styles(docinfo))
        for _, name in sections:
            reader.body(_records(stream(name)).children)
    except (zlib.error, OSError, struct.error, ValueError, IndexError) as exc:
        raise UnreadableDocument(
            f"HWP file is damaged ({type(exc).__name__}): open it in Hancom Office and save it again"
        ) from None
    finally:
        ole.close()
    return Parsed(text=reader.out.text())
