"""Hancom HWPX (OWPML, KS X 6101): a zip of XML parts; the sections' paragraphs, headings and tables.

Contents/sectionN.xml holds the body: <hp:p> paragraphs of <hp:run>s whose <hp:t> hold the text,
and <hp:tbl> tables of <hp:tr>/<hp:tc> cells, each with its <hp:cellAddr> and paragraphs in a
<hp:subList>. Contents/header.xml holds the paragraph properties (an outline heading is
<hh:heading type="OUTLINE" level="N">) and the styles ("개요 N"). Controls (<hp:ctrl>: headers,
footers, footnotes, fields' instructions) are page furniture and left out. Elements are matched
by their local name, so the 2011 and later namespace versions read alike.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib

from lxml import etree

from aiqa.errors import UnreadableDocument
from aiqa.ingest.base import Parsed
from aiqa.ingest.blocks import Blocks, grid, one_line, place

CAPPED = True  # read() takes max_unpacked: read_document passes the unzipped-size cap
_SECTION = re.compile(r"Contents/section(\d{1,5})\.xml")
_OUTLINE_STYLE = re.compile(r"(?:개요|Outline)\s*(\d)")
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, remove_comments=True)
_SKIP = frozenset({"ctrl", "secPr", "linesegarray", "fieldBegin", "fieldEnd", "footNote", "endNote"})
_INLINE = {"tab": "\t", "lineBreak": "\n", "nbSpace": " ", "fwSpace": " ", "hyphen": "-"}
_MAX_DEPTH = 40


def _local(el: etree._Element) -> str:
    tag = el.tag
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""  # comments and PIs have no name


def _xml(archive: zipfile.ZipFile, name: str, budget: list[int]) -> etree._Element:
    info = archive.getinfo(name)
    if info.file_size > budget[0]:
        raise UnreadableDocument(
            "HWPX file unpacks to more than the cap (raise AIQA_MAX_UNZIPPED_MB if the file is genuine)"
        )
    budget[0] -= info.file_size
    return etree.fromstring(archive.read(name), _PARSER)


def _t(el: etree._Element) -> str:
    """The text of an <hp:t>: its text, inline marks (tabs, breaks) and the tails after them."""
    parts = [el.text or ""]
    for child in el:
        parts.append(_INLINE.get(_local(child), ""))
        parts.append(child.tail or "")
    return "".join(parts)


def _heading_levels(header: etree._Element | None) -> tuple[dict[str, tuple[str, int]], dict[str, int]]:
    """paraPr id -> (heading type, level) and style id -> outline level from Contents/header.xml."""
    shapes: dict[str, tuple[str, int]] = {}
    styles: dict[str, int] = {}
    if header is None:
        return shapes, styles
    for el in header.iter():
        name = _local(el)
        if name == "paraPr":
            for h in el.iter():
                if _local(h) == "heading":
                    level = h.get("level", "0")
                    shapes[el.get("id", "")] = (h.get("type", "NONE"), int(level) if level.isdigit() else 0)
                    break
        elif name == "style" and (match := _OUTLINE_STYLE.match(el.get("name", ""))):
            styles[el.get("id", "")] = int(match.group(1))
    return shapes, styles


class _Reader:
    def __init__(self, header: etree._Element | None):
        self.shapes, self.styles = _heading_levels(header)
        self.out = Blocks()

    def paragraph(self, p: etree._Element) -> None:
        texts: list[str] = []
        tables: list[etree._Element] = []
        boxes: list[str] = []
        for el in p.iter():
            name = _local(el)
            if name == "t" and not self._skipped(el, p):
                texts.append(_t(el))
            elif name == "tbl" and self._owner(el) is p:
                tables.append(el)
            elif name == "subList" and self._owner(el) is p and not _inside(el, "tbl", p):
                boxes.append(flat_text(el))  # a text box, drawn shape or another object holding text
        self.out.add(*self.kind(p), "".join(texts))
        for table in tables:
            self.table(table)
        for box in boxes:
            self.out.paragraph(box)

    def _skipped(self, el: etree._Element, p: etree._Element) -> bool:
        """A text that belongs to a nested object (table cell, text box) or to a control."""
        node = el.getparent()
        while node is not None and node is not p:
            if _local(node) in _SKIP or _local(node) in ("subList", "tbl"):
                return True
            node = node.getparent()
        return False

    @staticmethod
    def _owner(el: etree._Element) -> etree._Element | None:
        """The paragraph an object sits in."""
        node = el.getparent()
        while node is not None and _local(node) != "p":
            if _local(node) in _SKIP:
                return None
            node = node.getparent()
        return node

    def kind(self, p: etree._Element) -> tuple[str, int]:
        head, level = self.shapes.get(p.get("paraPrIDRef", ""), ("NONE", 0))
        if head == "OUTLINE":
            return "h", level + 1
        if (style := p.get("styleIDRef", "")) in self.styles:
            return "h", self.styles[style]
        return ("li", 0) if head in ("NUMBER", "BULLET") else ("p", 0)

    def table(self, tbl: etree._Element, depth: int = 0) -> None:
        """Emit a table's caption, its rows, then the tables nested in its cells, each on its own."""
        if depth > _MAX_DEPTH:
            return
        for caption in (c for c in tbl if _local(c) == "caption"):
            self.out.paragraph(flat_text(caption))
        rows, cols = int(tbl.get("rowCnt", "0") or 0), int(tbl.get("colCnt", "0") or 0)
        table = grid(rows, cols)
        nested: list[etree._Element] = []
        for r, tr in enumerate(c for c in tbl if _local(c) == "tr"):
            for c, tc in enumerate(x for x in tr if _local(x) == "tc"):
                addr = next((x for x in tc if _local(x) == "cellAddr"), None)
                col = int(addr.get("colAddr", c)) if addr is not None else c
                row = int(addr.get("rowAddr", r)) if addr is not None else r
                body = next((x for x in tc if _local(x) == "subList"), tc)
                place(table, row, col, flat_text(body, nested=nested))
        self.out.table(table)
        for inner in nested:
            self.table(inner, depth + 1)

    def body(self, section: etree._Element) -> None:
        for p in section:
            if _local(p) == "p":
                self.paragraph(p)


def _inside(el: etree._Element, name: str, stop: etree._Element) -> bool:
    node = el.getparent()
    while node is not None and node is not stop:
        if _local(node) == name:
            return True
        node = node.getparent()
    return False


def flat_text(el: etree._Element, depth: int = 0, nested: list[etree._Element] | None = None) -> str:
    """All the text under an element on one line, controls left out; tables in it go to `nested`
    when given (to be emitted after), else their text is part of it."""
    if depth > _MAX_DEPTH:
        return ""
    parts = []
    for child in el:
        name = _local(child)
        if name in _SKIP:
            continue
        if name == "tbl" and nested is not None:
            nested.append(child)
            continue
        parts.append(_t(child) if name == "t" else flat_text(child, depth + 1, nested))
    return one_line(" ".join(parts))


def read(data: bytes, max_unpacked: int = 200_000_000) -> Parsed:
    """Read the body of every section in order."""
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise UnreadableDocument("not a valid HWPX (zip archive is corrupt): open it in Hancom Office and save again")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = archive.namelist()
        if "META-INF/manifest.xml" in names and b"encryption-data" in archive.read("META-INF/manifest.xml"):
            raise UnreadableDocument("password-protected HWPX: remove the password in Hancom Office and save again")
        sections = sorted((int(m.group(1)), name) for name in names if (m := _SECTION.fullmatch(name)))
        if not sections:
            raise UnreadableDocument("not an HWPX document (no Contents/section0.xml; another format renamed?)")
        budget = [max_unpacked]
        header = _xml(archive, "Contents/header.xml", budget) if "Contents/header.xml" in names else None
        reader = _Reader(header)
        for _, name in sections:
            reader.body(_xml(archive, name, budget))
    except etree.XMLSyntaxError:
        raise UnreadableDocument("HWPX section XML is corrupt: open it in Hancom Office and save it again") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, ValueError, KeyError) as exc:
        raise UnreadableDocument(
            f"HWPX file is damaged ({type(exc).__name__}): open it in Hancom Office and save it again"
        ) from None
    return Parsed(text=reader.out.text())
