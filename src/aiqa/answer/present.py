"""Answer presentation: statements with their [n] markers, table rows as a table, and citations."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import lru_cache

import regex

from aiqa.answer.candidates import Candidate, Question, version_heading
from aiqa.chunk import quote_span
from aiqa.records import OCR_MARK, Chunk, Citation, Document
from aiqa.text.cues import ASKS_PART, VERSION_LABEL, named_parts
from aiqa.text.korean import content_terms as _content_terms
from aiqa.text.layout import locate, plain

# A comparison across columns (e.g. US vs China) is best shown as table rows ...
_COMPARES = regex.compile(r"비교|차이|대비|\bvs\.?\b|\bversus\b|\bcompar|\bdiffer", regex.I)
# ... and a request for a whole table as that table. ("모두" alone is not one: "A와 B 모두" is
# about two names, not about every row.)
_WHOLE_TABLE = regex.compile(r"표로|표를|항목별|전체\s*(?:표|항목)|정리|\btable\b|\boverview\b", regex.I)
# Table headers recur in every answer from their table: analysed once each.
content_terms = lru_cache(maxsize=4096)(lambda text: frozenset(_content_terms(text)))
ABSTAIN = {"ko": "문서에서 답을 찾을 수 없습니다.", "en": "The documents do not answer this."}


def cite(n: int, chunk: Chunk, doc: Document, start: int, end: int) -> Citation:
    """A citation whose locator points at the quote itself (its lines and page), not the whole chunk."""
    locator = chunk.locator if chunk.kind == "table_row" else locate(doc.text, doc.pages, start, end)
    if chunk.ocr and not locator.startswith(OCR_MARK):
        locator = OCR_MARK + locator  # "OCR, p. 3, line 2": the quote was recognised from a scan
    return Citation(n, chunk.source, chunk.section, locator, doc.text[start:end], start, end, chunk.text)


def table_rows(chosen: list[Candidate], question: Question, tables: dict[tuple[str, int], list[Chunk]]) -> list[Chunk]:
    """Rows to show as a table: all of the best row's table when the question asks for it,
    the chosen rows when it compares columns (names two headers, or says so); else none."""
    first = chosen[0].hit.chunk
    if first.kind != "table_row":
        return []
    text = question.analysis.text
    if _WHOLE_TABLE.search(text):
        return tables[(first.source, first.table)]
    headers = [h for h, _ in first.cells]
    named = sum(1 for h in headers if content_terms(h) and content_terms(h) <= question.terms)
    if named < 2 and not _COMPARES.search(text):
        return []
    return [c.hit.chunk for c in chosen if (c.hit.chunk.source, c.hit.chunk.table) == (first.source, first.table)]


def frame(candidate: Candidate, question: Question) -> str:
    """One statement for a candidate; a table row reads as its header: cell pairs, the asked-about
    column first (after "미국의 AI 반도체는?" → "중국은?", China's cell leads)."""
    c = candidate.hit.chunk
    if c.kind != "table_row" or not c.cells:
        return plain(candidate.quote)
    (first_h, first_v), rest = c.cells[0], list(c.cells[1:])
    rest.sort(key=lambda hv: not (content_terms(hv[0]) and content_terms(hv[0]) <= question.terms))
    return f"**{first_v}** ({first_h}) — " + "; ".join(f"{h}: {v}" for h, v in rest)


def where(candidate: Candidate, question: Question) -> str:
    """For a question that asks which part says something ("몇 조에 나와?"), the part the statement sits in
    ("제7조(교통비): "), and for one that asks in which version something came, the version heading it sits
    under ("v1.4.0 (2031-04-22): "), unless the statement names it itself; else nothing."""
    if question.version and not VERSION_LABEL.search(candidate.quote):
        part = version_heading(candidate.hit.chunk)
        return f"{part}: " if part else ""
    if not ASKS_PART.search(question.analysis.text):
        return ""
    part = next((p for p in reversed(candidate.hit.chunk.section.split(" > ")) if named_parts(p)), "")
    return f"{part}: " if part and part not in candidate.quote else ""


def table_text(rows: list[Chunk], korean: bool) -> str:
    """A compact Markdown table of rows from one table, each row with its citation marker."""
    headers = [h for h, _ in rows[0].cells]
    lines = [
        "| " + " | ".join([*headers, "출처" if korean else "Source"]) + " |",
        "|" + "---|" * (len(headers) + 1),
    ]
    for n, row in enumerate(rows, start=1):
        cells = dict(row.cells)
        lines.append("| " + " | ".join([*(cells.get(h, "").replace("|", "/") for h in headers), f"[{n}]"]) + " |")
    return "\n".join(lines)


def present(
    chosen: list[Candidate],
    question: Question,
    documents: dict[str, Document],
    tables: dict[tuple[str, int], list[Chunk]],
    korean_document: Callable[[str], bool],
) -> tuple[str, tuple[Citation, ...]]:
    """The answer text with [n] markers and its citations, framed in the question's language.

    `korean_document(source)` tells a document's language (candidates.Statements.korean).
    """
    korean = question.analysis.language == "ko"
    rows = table_rows(chosen, question, tables)
    if rows:
        citations = tuple(
            cite(n, c, documents[c.source], *quote_span(documents[c.source].text, c.start, c.end))
            for n, c in enumerate(rows, start=1)
        )
        text = table_text(rows, korean)
    else:
        citations = tuple(
            cite(n, c.hit.chunk, documents[c.hit.chunk.source], c.start, c.end) for n, c in enumerate(chosen, start=1)
        )
        text = "\n".join(f"{where(c, question)}{frame(c, question)} [{n}]" for n, c in enumerate(chosen, start=1))
    # Quotes stay in their documents' language; say so when it is not the question's. The document's
    # language, not the quote's: a code block or a row of English names in a Korean manual is no
    # English text to warn about.
    quoted_korean = [korean_document(c.hit.chunk.source) for c in chosen]
    if not korean and any(quoted_korean):
        text = "From the documents (quoted in their own language):\n\n" + text
    elif korean and not any(quoted_korean):
        text = "문서의 원문 그대로 인용합니다:\n\n" + text
    return text, citations


def present_span(
    span: list[Candidate], question: Question, documents: dict[str, Document], korean_document: Callable[[str], bool]
) -> tuple[str, tuple[Citation, ...]]:
    """A span of one section (a reason, a list, an article) as its statements, one a line, each marked
    with the one citation of the whole range: the quote is the document's text from the first statement
    to the last."""
    first, last = span[0], span[-1]
    doc = documents[first.hit.chunk.source]
    citation = cite(1, first.hit.chunk, doc, first.start, last.end)
    if last.hit.chunk is not first.hit.chunk:  # a span over several units: its context is all of them
        citation = replace(citation, passage=doc.text[first.hit.chunk.start : last.hit.chunk.end])
    text = "\n".join(f"- {frame(c, question)} [1]" for c in span)
    # The part a question names heads its statements with its own title ("【4단계】 발주 및 계약").
    part = next((p for p in reversed(first.hit.chunk.section.split(" > ")) if question.parts & named_parts(p)), "")
    if part and part not in first.quote:
        text = f"{part}\n{text}"
    korean = question.analysis.language == "ko"
    if korean != korean_document(first.hit.chunk.source):
        text = (
            ("문서의 원문 그대로 인용합니다:" if korean else "From the documents (quoted in their own language):")
            + "\n\n"
            + text
        )
    return text, (citation,)
