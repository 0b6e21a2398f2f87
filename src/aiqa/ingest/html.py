"""HTML pages: the readable text of the page, with its headings, lists and tables in the plain layout."""

from __future__ import annotations

import codecs
import warnings

from bs4 import (
    BeautifulSoup,
    MarkupResemblesLocatorWarning,
    NavigableString,
    PageElement,
    Tag,
    XMLParsedAsHTMLWarning,
)
from bs4.dammit import EncodingDetector
from bs4.element import PreformattedString

from aiqa.errors import UnreadableDocument
from aiqa.ingest.base import Parsed
from aiqa.ingest.text import decode, normalize_newlines

# Page chrome and non-text content: none of it answers a question about the page.
# fmt: off
_DROP = frozenset({"script", "style", "noscript", "template", "svg", "nav", "header", "footer", "aside",
                   "form", "iframe", "object", "embed", "canvas", "head"})
_DROP_ROLES = frozenset({"navigation", "banner", "contentinfo"})
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_LISTS = frozenset({"ul", "ol", "dl", "menu"})
_BLOCKS = _LISTS | {"address", "article", "blockquote", "body", "caption", "center", "dd", "details",
                    "dialog", "div", "dt", "fieldset", "figcaption", "figure", "hgroup", "hr", "html",
                    "legend", "li", "main", "p", "section", "summary", "td", "th", "tr"}
# WHATWG maps these labels to supersets (Korean pages labelled EUC-KR are routinely CP949), and a
# UTF-16 label in a <meta> that was readable as ASCII cannot be true, so it means UTF-8.
_SUPERSETS = {"euc_kr": "cp949", "iso8859_1": "cp1252", "ascii": "cp1252",
              "utf_16": "utf-8", "utf_16_le": "utf-8", "utf_16_be": "utf-8"}
# fmt: on
_BR = "\n"  # marks <br>: the newlines of text nodes become spaces before they are kept
_MAX_SPAN = 20


def _decode(data: bytes) -> str:
    """Honour a BOM, then a <meta charset>, then detect (CP949 pages often declare nothing)."""
    if data.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return decode(data)
        except UnicodeDecodeError:
            raise UnreadableDocument("text does not match its byte-order mark (corrupt file?)") from None
    declared = EncodingDetector.find_declared_encoding(data[:4096], is_html=True)
    if declared:
        try:
            name = codecs.lookup(declared).name.replace("-", "_")
            return data.decode(_SUPERSETS.get(name, name))
        except (LookupError, UnicodeDecodeError):
            pass  # a wrong or unknown label is common; detection does better than replacement chars
    return decode(data)


def _hidden(tag: Tag) -> bool:
    style = str(tag.get("style") or "").replace(" ", "").lower()
    return (
        tag.name in _DROP
        or tag.has_attr("hidden")
        or str(tag.get("aria-hidden") or "").lower() == "true"
        or "display:none" in style
        or "visibility:hidden" in style
        or bool(_DROP_ROLES & set(str(tag.get("role") or "").lower().split()))
    )


def _inline(tag: Tag) -> str:
    """Return the text under `tag` on one line, with block boundaries kept as spaces."""
    parts = []
    for node in tag.descendants:
        if isinstance(node, NavigableString):
            if not isinstance(node, PreformattedString):  # comments, doctype, CDATA
                parts.append(str(node))
        elif isinstance(node, Tag) and (node.name in _BLOCKS or node.name == "br"):
            parts.append(" ")
    return " ".join("".join(parts).split())


def _span(cell: Tag) -> int:
    try:
        return min(max(int(str(cell.get("colspan") or 1)), 1), _MAX_SPAN)
    except ValueError:
        return 1


def _table(table: Tag) -> str:
    """Render a table as pipe rows: <thead> rows first (else the first row is the header), <tfoot> last."""
    rows: list[tuple[int, list[str]]] = []
    for tr in table.find_all("tr"):
        if tr.find_parent("table") is not table:
            continue  # a nested table's rows are already in its outer cell's text
        cells: list[str] = []
        for cell in tr.find_all(("th", "td"), recursive=False):
            # A spanned cell keeps the columns aligned with blanks rather than repeating its text.
            cells += [_inline(cell).replace("|", "/")] + [""] * (_span(cell) - 1)
        section = tr.find_parent(("thead", "tfoot", "table"))
        if any(cells):
            rows.append(({"thead": 0, "tfoot": 2}.get(section.name if section else "", 1), cells))
    rows.sort(key=lambda row: row[0])  # stable: source order within each group
    return "\n".join(" | ".join(cells) + " |" for _, cells in rows)


class _Blocks:
    """Collect words into blocks: headings, paragraphs, bullets and tables."""

    def __init__(self) -> None:
        self.blocks: list[tuple[str, str]] = []
        self.words: list[str] = []
        self.in_li = 0

    def add(self, kind: str, text: str) -> None:
        if text.strip():
            self.blocks.append((kind, text))

    def flush(self) -> None:
        lines = [kept for line in "".join(self.words).split(_BR) if (kept := " ".join(line.split()))]
        self.words = []
        if lines and self.in_li:
            self.add("li", "- " + " ".join(lines))
        elif lines:
            self.add("p", "\n".join(lines))

    def text(self) -> str:
        out = ""
        for i, (kind, text) in enumerate(self.blocks):
            if i:
                # Bullets of one list stay on consecutive lines; everything else is a paragraph.
                out += "\n" if kind == "li" and self.blocks[i - 1][0] == "li" else "\n\n"
            out += text
        return out


def _render(root: Tag, out: _Blocks) -> None:
    # An explicit stack rather than recursion: real pages nest thousands of <div>s deep.
    stack: list[tuple[PageElement, bool]] = [(root, True)]
    while stack:
        node, entering = stack.pop()
        if isinstance(node, NavigableString):
            if not isinstance(node, PreformattedString):
                out.words.append(node.replace("\n", " "))
            continue
        if not isinstance(node, Tag):
            continue
        name = node.name
        if not entering:
            out.flush()
            out.in_li -= name == "li"
        elif name == "br":
            out.words.append(_BR)
        elif name in _HEADINGS:
            out.flush()
            if heading := _inline(node):
                out.add("h", "#" * int(name[1]) + " " + heading)
        elif name == "table":
            out.flush()
            if caption := node.find("caption", recursive=False):
                out.add("p", _inline(caption))
            out.add("table", _table(node))
        elif name == "pre":
            out.flush()
            out.add("p", normalize_newlines(node.get_text()).strip("\n"))
        elif name in _BLOCKS and (not out.in_li or name in _LISTS or name == "li"):
            out.flush()
            out.in_li += name == "li"
            stack.append((node, False))
            stack.extend((child, True) for child in reversed(node.contents))
        else:
            if name in _BLOCKS:  # a <p> inside a bullet: same bullet, word boundary kept
                out.words.append(" ")
            stack.extend((child, True) for child in reversed(node.contents))


def read(data: bytes) -> Parsed:
    """Extract the readable text of an HTML page."""
    with warnings.catch_warnings():
        # Both are advice to the programmer about odd input ("looks like XML", "looks like a URL").
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
        warnings.simplefilter("ignore", MarkupResemblesLocatorWarning)
        soup = BeautifulSoup(_decode(data), "lxml")
    title = " ".join(soup.title.get_text().split()) if soup.title else ""
    for tag in soup.find_all(True):
        if not tag.decomposed and _hidden(tag):
            tag.decompose()
    main = soup.find("main") or soup.find(role="main")
    roots = [main] if main else [a for a in soup.find_all("article") if not a.find_parent("article")]
    out = _Blocks()
    for root in roots:
        _render(root, out)
    if not out.blocks:  # no <main>/<article>, or an empty one: the whole body
        _render(soup.body or soup, out)
    if title and not any(text.startswith("# ") for _, text in out.blocks):
        out.blocks.insert(0, ("h", "# " + title))
    return Parsed(text=out.text())
