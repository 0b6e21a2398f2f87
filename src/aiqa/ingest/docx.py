"""Word .docx: paragraphs and tables in document order, headings and lists in the plain layout."""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from collections.abc import Iterator

import docx
from docx.document import Document as WordDocument
from docx.enum.style import WD_STYLE_TYPE
from docx.opc.exceptions import PackageNotFoundError
from docx.styles.style import BaseStyle
from lxml import etree

from aiqa.errors import UnreadableDocument
from aiqa.ingest.base import Parsed

_NS = {
    "w": "http://schemas.openxmlformats.org/wordprocessingml/2006/main",
    "mc": "http://schemas.openxmlformats.org/markup-compatibility/2006",
}
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # password-protected .docx and legacy .doc files
# Body blocks in document order; content controls (w:sdt, e.g. a table of contents) hold blocks too.
_BLOCKS = etree.XPath("./w:p | ./w:tbl | ./w:sdt/w:sdtContent/w:p | ./w:sdt/w:sdtContent/w:tbl", namespaces=_NS)
# Visible text: runs in hyperlinks, fields and insertions count; deleted or moved-away text does
# not, and textboxes are stored twice (mc:Choice and mc:Fallback), so the fallback copy is skipped.
_PIECES = etree.XPath(
    ".//w:p | .//w:r[not(ancestor::mc:Fallback or ancestor::w:moveFrom)]"
    "/*[self::w:t or self::w:tab or self::w:br or self::w:cr]",
    namespaces=_NS,
)
_ROWS = etree.XPath("./w:tr | ./w:sdt/w:sdtContent/w:tr", namespaces=_NS)
_CELLS = etree.XPath("./w:tc | ./w:sdt/w:sdtContent/w:tc", namespaces=_NS)
_SPAN = etree.XPath("string(./w:tcPr/w:gridSpan/@w:val)", namespaces=_NS)
_VMERGE = etree.XPath("./w:tcPr/w:vMerge[not(@w:val='restart')]", namespaces=_NS)
_STYLE_ID = etree.XPath("string(./w:pPr/w:pStyle/@w:val)", namespaces=_NS)
_NUM_ID = etree.XPath("string(./w:pPr/w:numPr/w:numId/@w:val)", namespaces=_NS)
_OUTLINE = etree.XPath("string(./w:pPr/w:outlineLvl/@w:val)", namespaces=_NS)
_HEADING = re.compile(r"heading (\d)")


def _open(data: bytes) -> WordDocument:
    if data.startswith(_OLE_MAGIC):
        raise UnreadableDocument("encrypted or legacy Word file (save it as a .docx without a password)")
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise UnreadableDocument("not a valid DOCX (zip archive is corrupt)")
    try:
        return docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, KeyError):
        raise UnreadableDocument("not a valid DOCX (no Word document inside the zip)") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError):  # bad or unknown zip entries
        raise UnreadableDocument("not a valid DOCX (zip archive is corrupt)") from None
    except ValueError:  # python-docx: "content type is ..." for .xlsx, .pptx, .dotx renamed .docx
        raise UnreadableDocument("not a Word document (another Office format renamed .docx?)") from None
    except etree.XMLSyntaxError:
        raise UnreadableDocument("not a valid DOCX (document XML is corrupt)") from None


def _text(element: etree._Element) -> str:
    parts = []
    for node in _PIECES(element):
        tag = etree.QName(node).localname
        parts.append(node.text or "" if tag == "t" else "\n" if tag in ("br", "cr") else " ")
    return "".join(parts)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _chain(style: BaseStyle | None) -> Iterator[BaseStyle]:
    """Yield a style and the styles it is based on (bounded: a broken file may loop)."""
    for _ in range(10):
        if style is None:
            return
        yield style
        style = getattr(style, "base_style", None)  # numbering styles have no base


def _kind(p: etree._Element, styles: dict[str, BaseStyle], default: BaseStyle | None) -> tuple[str, int]:
    """Classify a paragraph as ("h", level), ("li", 0) or ("p", 0) from its style and properties."""
    chain = list(_chain(styles.get(_STYLE_ID(p), default)))
    for style in chain:
        name = (style.name or "").lower()
        if match := _HEADING.fullmatch(name):
            return "h", int(match.group(1))
        if name == "title":
            return "h", 1
    # Localised or custom heading styles carry an outline level instead (9 means body text).
    for element in [p, *(style.element for style in chain)]:
        level = _OUTLINE(element)
        if level.isdigit() and int(level) < 9:
            return "h", int(level) + 1
    numbered = any(_NUM_ID(element) not in ("", "0") for element in [p, *(s.element for s in chain)])
    if numbered or any("list" in (style.name or "").lower() for style in chain):
        return "li", 0
    return "p", 0


def _table(tbl: etree._Element) -> str:
    """Render a table as pipe rows, first row as header; a merged cell's text appears once."""
    rows = []
    for tr in _ROWS(tbl):
        cells: list[str] = []
        for tc in _CELLS(tr):
            text = "" if _VMERGE(tc) else _one_line(_text(tc)).replace("|", "/")
            span = int(_SPAN(tc)) if _SPAN(tc).isdigit() else 1
            cells += [text] + [""] * (min(span, 50) - 1)  # blanks keep the columns aligned
        if any(cells):
            rows.append(" | ".join(cells) + " |")
    return "\n".join(rows)


def read(data: bytes) -> Parsed:
    """Extract the body of a Word document (headers, footers and comments are page furniture)."""
    document = _open(data)
    styles = {style.style_id: style for style in document.styles}
    default = document.styles.default(WD_STYLE_TYPE.PARAGRAPH)
    blocks: list[tuple[str, str]] = []
    for element in _BLOCKS(document.element.body):
        if etree.QName(element).localname == "tbl":
            blocks.append(("table", _table(element)))
            continue
        kind, level = _kind(element, styles, default)
        text = "\n".join(line for raw in _text(element).split("\n") if (line := _one_line(raw)))
        if not text:
            continue
        if kind == "h":
            blocks.append((kind, "#" * min(level, 6) + " " + _one_line(text)))
        elif kind == "li":
            blocks.append((kind, "- " + _one_line(text)))
        else:
            blocks.append((kind, text))
    out = ""
    previous = ""
    for kind, text in blocks:
        if out:
            # Bullets of one list stay on consecutive lines; everything else is a paragraph.
            out += "\n" if kind == previous == "li" else "\n\n"
        out += text
        previous = kind
    return Parsed(text=out)
