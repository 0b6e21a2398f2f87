"""Document -> Chunk: read the structure (title, sections, bullets, callouts, tables) into units.

Each unit (a table row, a bullet, a callout, a heading, a paragraph or part of one) becomes a
chunk that keeps the exact source span it came from, plus a `context` text that says what it is
about when read alone (section title, table headers). The context is what gets embedded and
keyword-indexed; the span is what citations quote.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

import regex

from aiqa.records import OCR_MARK, Chunk, Document, page_at
from aiqa.text.columns import AlignedRow, aligned_tables
from aiqa.text.layout import (
    BULLET,
    CONTINUES,
    FAQ_ANSWER,
    FAQ_QUESTION,
    FENCE,
    FIELD,
    GLUED_ITEM,
    LEADS_IN,
    MD_HEADING,
    REPLY,
    SENTENCE_END,
    TABLE_SEPARATOR,
    Line,
    code_kinds,
    heading_level,
    indent,
    is_numbered_heading,
    line_kind,
    line_starts,
    locate,
    paragraph_end,
    plain,
    sentence_spans,
    short_section,
    split_cells,
    split_lines,
)
from aiqa.text.outline import Depths, Sides, article_title, family, heading_text, trailing_field

TokenCounter = Callable[[str], int]
# Bump when chunking changes, so `aiqa index` re-chunks documents whose bytes did not change.
# 9: a fenced code block is one unit of kind "code", never a heading.
# 10: the outline of office documents (articles, clauses, 가. items, ■ and named sections, fields).
# 12: tables laid out with spaces are read as tables (aiqa.text.columns).
# 13: the items of a list are read under the sentence that leads into them (see Lead).
# 14: the re-flow joins a list item's hanging lines and a word cut at a line break (aiqa.text.reflow).
# 15: a reply indented under an item ("→ …") is one unit with the item; its arrow is a list mark.
# 16: a block wrapped narrower than its page (a column, a side of a comparison table) is re-flowed at its width;
#     the articles of a comparison table (현행 | 개정안) are labelled with their side.
CHUNKER_VERSION = 16
# The header field that names what an official document is about, and how far down its header goes.
SUBJECT_LABELS = frozenset({"제목", "건명", "subject", "title"})
SUBJECT_LINES = 40
_OPEN_QUESTION = regex.compile(r"[?？]\s*[\"'”’)\]]*\s*$")
# Above this many characters a document takes minutes to chunk and embed: say so in the log.
LARGE_DOCUMENT_CHARS = 5_000_000
log = logging.getLogger("aiqa.chunk")
# Where a unit's last sentence starts: the one that may lead into the list below (layout.LEADS_IN).
_LAST_SENTENCE = regex.compile(r"(?:[.!?。]|다\.)\s+(?=\S)")


@dataclass(frozen=True)
class Lead:
    """A sentence that leads into a list, the section it sits in, and the mark of the list's first item."""

    section: str
    text: str
    mark: str | None = None


def list_mark(text: str) -> str | None:
    """The style of a list item's mark, numbers and letters reduced to the first ("3." and "1." are both
    "1.", "나)" is "가)", "②" is "①"); None for a line that is no item."""
    found = BULLET.match(text)
    if not found:
        return None
    mark = found.group(0).strip()
    if mark and "\u2460" <= mark[0] <= "\u2473":
        return "①"
    return regex.sub(r"\d+", "1", regex.sub(r"[가나다라마바사아자차카타파하]", "가", mark))


def lead_sentence(text: str) -> str | None:
    """The last sentence of a unit when it leads into a list, read as one line; None otherwise."""
    last = _LAST_SENTENCE.split(plain(text).strip())[-1]
    return last if last and LEADS_IN.search(last) else None


def chunk_views(chunk: Chunk) -> tuple[str, ...]:
    """The texts the embedding model reads of a chunk, one vector each: the labelled context, then each
    statement in its own words (or the whole unit's words when it has none). Retrieval takes the
    best of them: labels help a question in the document's language, while they blur one in
    another language towards every chunk of the section; and a statement's own vector tells
    which sentence of a passage is closest to the question."""
    own = [plain(chunk.text[a - chunk.start : b - chunk.start]) for a, b in chunk.statements]
    return (chunk.context, *(own or [plain(chunk.text)]))


def unit_spans(text: str, chunk: Chunk) -> list[tuple[int, int]]:
    """The statements of a chunk: its row, or its heading line and sentences; spans into `text`."""
    if chunk.kind.startswith("table") or chunk.kind in ("code", "field"):
        return [(chunk.start, chunk.end)]
    groups: list[list[int]] = []
    pos, after_blank = chunk.start, False
    for line in text[chunk.start : chunk.end].split("\n"):
        previous = text[groups[-1][0] : groups[-1][1]] if groups else ""
        # A heading line stands alone; a blank line ends a paragraph; a line that stops
        # mid-sentence (or on a comma) continues into the next.
        joins = (
            groups
            and not after_blank
            and not (len(groups) == 1 and chunk.kind in ("heading", "title"))
            and (CONTINUES.search(previous) or not (SENTENCE_END.search(previous) or BULLET.match(line)))
        )
        if joins:
            groups[-1][1] = pos + len(line)
        elif line.strip():
            groups.append([pos, pos + len(line)])
        after_blank = not line.strip()
        pos += len(line) + 1
    # A heading line stays whole ("## 2. 출장 신청" is no sentence "2." and another), so that it is known
    # for a heading below. A FAQ's question and its answer are one statement: the question alone asks
    # rather than states, and its words tell what the answer is about. So are an item and the reply indented
    # under it ("▶ 고객이 정보를 지워 달라고 해요." / "→ 본인 확인 후 …"): the situation, then what to do.
    out: list[tuple[int, int]] = []
    begins: list[int] = []  # where each line's statements start in `out`
    for i, (a, b) in enumerate(groups):
        piece = text[a:b]
        previous = text[groups[i - 1][0] : groups[i - 1][1]] if i else ""
        begins.append(len(out))
        if i and FAQ_ANSWER.match(piece) and FAQ_QUESTION.match(previous):
            out[-1] = (out[-1][0], b)
        elif i and REPLY.match(piece) and not REPLY.match(previous):
            del out[begins[i - 1] :]  # the item's sentences and its reply: one statement
            out.append((groups[i - 1][0], b))
        elif (i == 0 and chunk.kind in ("heading", "title")) or is_numbered_heading(piece) or FAQ_QUESTION.match(piece):
            out.append((a, b))
        else:
            out.extend(sentence_spans(piece, a))
    return out


def quote_span(text: str, start: int, end: int) -> tuple[int, int]:
    """Trim whitespace and a leading bullet mark off a span, keeping it a contiguous source span."""
    piece = text[start:end]
    start += len(piece) - len(piece.lstrip())
    bullet = BULLET.match(text[start:end])
    if bullet:
        start += bullet.end()
    end = start + len(text[start:end].rstrip())
    return start, end


def statement_spans(text: str, chunk: Chunk) -> tuple[tuple[int, int], ...]:
    """The spans of a chunk that can be cited as statements.

    Table headers and headings label what follows, and a short open question ("그럼 대한민국은?")
    asks rather than answers: none of them is a statement. (A callout used as a heading,
    "✅ 기술은 미국, 체력은 중국", does state something.)
    """
    if chunk.kind == "table_header":
        return ()
    spans = unit_spans(text, chunk)
    if chunk.kind == "title":
        spans = spans[1:]  # the title line names the document; the prose after it states things
    elif chunk.kind == "heading" and spans and line_kind(text[spans[0][0] : spans[0][1]]) != "callout":
        # A heading line ("계정과 비밀번호", "1. 목적", "■ 검진 개요") labels its section; a field set beside
        # it ("【3단계】 승인      담당 : 결재권자") states who does the step.
        first = text[spans[0][0] : spans[0][1]]
        field = trailing_field(first)
        spans = ([(spans[0][0] + field[0], spans[0][0] + field[1])] if field else []) + spans[1:]
    out = []
    for a, b in spans:
        a, b = quote_span(text, a, b)
        piece = text[a:b]
        if a < b and not is_numbered_heading(piece) and not (_OPEN_QUESTION.search(piece) and len(piece.split()) <= 3):
            out.append((a, b))
    return tuple(out)


# A line this short, alone after a blank line and followed by text, that ends no sentence, is a heading
# in a plain-text document ("메일", "Working hours").
PLAIN_HEADING_CHARS = 40


def plain_heading(lines: list[Line], kinds: list[str], i: int) -> bool:
    """Whether line i is a plain-text heading: short, after a blank line, before text, ending no sentence."""
    text = lines[i].text.strip()
    return (
        kinds[i] == "paragraph"
        and 0 < i < len(lines) - 1
        and kinds[i - 1] == "blank"
        and kinds[i + 1] != "blank"
        and len(text) <= PLAIN_HEADING_CHARS
        and not SENTENCE_END.search(text)
        and not CONTINUES.search(text)
    )


class _Builder:
    """Walks the lines once, tracking the section, and emits chunks."""

    def __init__(self, doc: Document, count_tokens: TokenCounter, max_tokens: int):
        self.doc = doc
        self.count = count_tokens
        self.max_tokens = max_tokens
        self.path: list[tuple[int, str]] = []  # (level, heading) from the outermost in
        self.chunks: list[Chunk] = []
        self.tables = 0
        self.starts = line_starts(doc.text)
        self.depths = Depths(1)
        self.sides = Sides()  # the side of a comparison table an article is on (현행, 개정안)
        self.lead: Lead | None = None  # the sentence that leads into the list being read, if any
        self._led = False

    def locator(self, start: int, end: int, extra: str = "") -> str:
        where = locate(self.doc.text, self.doc.pages, start, end, extra, self.starts)
        ocr_pages = getattr(self.doc, "ocr_pages", ())
        if ocr_pages and any(page_at(self.doc.pages, o) in ocr_pages for o in (start, max(start, end - 1))):
            where = OCR_MARK + where
        return where

    def led(self, start: int, end: int) -> str:
        """An item's context with the sentence that leads into its list, when the item follows that sentence
        in its section with the same kind of mark as the first item after it ("① 숙박비는 1박당 다음 각 호의
        금액을 한도로 지급한다." before "1. 서울특별시: 100,000원", "2. …", and not before "②"); within the
        token budget."""
        text, lead = self.doc.text[start:end], self.lead
        alone = self.labelled(plain(text))
        mark = list_mark(text)
        if lead is None or mark is None or lead.section != self.section or lead.mark not in (None, mark):
            return alone
        context = self.labelled(f"{lead.text} {plain(text)}")
        if self.count(context) > self.max_tokens:
            return alone
        self.lead, self._led = replace(lead, mark=mark), True
        return context

    def emit(self, kind: str, start: int, end: int, context: str, extra: str = "", cells=()) -> None:
        """Add a chunk; a unit over the token budget is cut at sentence ends instead."""
        if self.count(context) > self.max_tokens:
            self._split(kind, start, end)
            return
        self._append(kind, start, end, context, extra, cells)

    def _append(self, kind: str, start: int, end: int, context: str, extra: str = "", cells=()) -> None:
        text = self.doc.text[start:end]
        chunk = Chunk(
            source=self.doc.source,
            section=self.section,
            kind=kind,
            start=start,
            end=end,
            text=text,
            context=context,
            locator=self.locator(start, end, extra),
            tokens=self.count(context),
            cells=tuple(cells),
            table=self.tables if kind.startswith("table") else 0,
        )
        self.chunks.append(replace(chunk, statements=statement_spans(self.doc.text, chunk)))
        # an item read under the lead keeps it for the next items; any other unit may lead into a list itself
        if self._led:
            self._led = False
        else:
            found = None if kind == "code" or kind.startswith("table") else lead_sentence(text)
            self.lead = Lead(self.section, found) if found else None

    @property
    def _headings(self) -> list[str]:
        nested = [text for level, text in self.path if level > 0]
        return nested or [text for _, text in self.path]

    @property
    def section(self) -> str:
        """The heading path of the current position, e.g. "# Project > ## Schedule"."""
        return " > ".join(self._headings)

    def enter(self, level: int, heading: str) -> None:
        while self.path and self.path[-1][0] >= level:
            self.path.pop()
        self.path.append((level, heading))

    def labelled(self, body: str) -> str:
        """A unit's words under its labels: the document's title and the headings it sits under, so that a
        unit read alone says which document and which part it is from ("[취업규칙 > 제2장 근무 > 제10조]")."""
        label = " > ".join(short_section(h) for _, h in self.path)
        return f"[{label}] {body}" if label else body

    def emit_text(self, kind: str, start: int, end: int) -> None:
        """Emit a prose unit under its section label."""
        self.emit(kind, start, end, self.labelled(plain(self.doc.text[start:end])))

    def _split(self, kind: str, start: int, end: int) -> None:
        """Emit an over-budget span as windows of whole sentences (or equal cuts of one long sentence)."""
        window: list[tuple[int, int]] = []
        for a, b in self._pieces(start, end):
            candidate = [*window, (a, b)]
            text = " ".join(self.doc.text[candidate[0][0] : b].split())
            if window and self.count(self.labelled(text)) > self.max_tokens:
                self._emit_window(kind, window)
                window = [(a, b)]
            else:
                window = candidate
        if window:
            self._emit_window(kind, window)

    def _emit_window(self, kind: str, window: list[tuple[int, int]]) -> None:
        a, b = window[0][0], window[-1][1]
        self._append(kind, a, b, self.labelled(plain(self.doc.text[a:b])))

    def _pieces(self, start: int, end: int) -> list[tuple[int, int]]:
        """Sentences of a span, with any sentence still over budget cut into equal parts."""
        pieces: list[tuple[int, int]] = []
        for a, b in sentence_spans(self.doc.text[start:end], start):
            tokens = self.count(self.doc.text[a:b])
            parts = max(1, -(-tokens // max(1, self.max_tokens - 32)))
            step = -(-(b - a) // parts)
            pieces.extend((p, min(b, p + step)) for p in range(a, b, step))
        return pieces

    def table(self, rows: list[Line]) -> None:
        """Emit a pipe table: a header chunk and one chunk per row, repairing rows broken across lines."""
        header = split_cells(rows[0].text)
        has_separator = len(rows) > 1 and bool(TABLE_SEPARATOR.match(rows[1].text))
        header_end = rows[1].end if has_separator else rows[0].end
        body = rows[2:] if has_separator else rows[1:]
        merged: list[tuple[int, int, list[str]]] = []
        for row in body:
            cells = split_cells(row.text)
            # A row broken across lines has too few cells, and the next line holds the rest; a short
            # but complete row ("사과 | 1000원 |") followed by a whole row is not joined to it.
            if merged and len(merged[-1][2]) + len(cells) <= len(header):
                start, _, previous = merged[-1]
                merged[-1] = (start, row.end, previous + cells)
            else:
                merged.append((row.start, row.end, cells))
        self.grid(header, rows[0].start, header_end, merged)

    def aligned(self, rows: list[AlignedRow]) -> None:
        """Emit a table laid out with spaces (aiqa.text.columns) as a pipe table is."""
        self.grid(list(rows[0].cells), rows[0].start, rows[0].end, [(r.start, r.end, list(r.cells)) for r in rows[1:]])

    def grid(self, header: list[str], start: int, end: int, rows: list[tuple[int, int, list[str]]]) -> None:
        """A header chunk (its span `start`-`end`), then one chunk per row, each cell named by its column's header."""
        self.tables += 1
        self.emit("table_header", start, end, self.labelled(" | ".join(header)), extra=f"table {self.tables}, header")
        for n, (a, b, cells) in enumerate(rows, start=1):
            names = header + [f"열{i}" for i in range(len(header) + 1, len(cells) + 1)]
            pairs = [(h, c) for h, c in zip(names, cells, strict=False) if c]
            context = self.labelled(" | ".join(f"{h}: {c}" for h, c in pairs))
            self.emit("table_row", a, b, context, extra=f"table {self.tables}, row {n}", cells=pairs)

    def run(self) -> list[Chunk]:
        lines = split_lines(self.doc.text)
        kinds = code_kinds(lines, [line_kind(line.text) for line in lines])
        aligned = aligned_tables(lines, kinds)  # their lines' kind becomes "aligned"
        first = next((i for i, k in enumerate(kinds) if k != "blank"), None)
        # Outline marks (제2장, ■, 1. 목적, 제안이유) nest below the document's Markdown headings.
        self.depths = Depths(
            1
            + max(
                (heading_level(x.text, False) for x, k in zip(lines, kinds, strict=True) if k == "heading"), default=0
            )
        )
        subject = subject_of(lines[:SUBJECT_LINES], kinds)
        i = 0
        while i < len(lines):
            kind, line = kinds[i], lines[i]
            if kind in ("blank", "rule"):
                i += 1
                continue
            if kind == "aligned":
                i, rows = aligned[i]
                self.aligned(rows)
                continue
            nxt = next((j for j in range(i + 1, len(lines)) if kinds[j] not in ("blank", "rule")), None)
            is_title = i == first and kind in ("paragraph", "heading") and len(line.text) <= 120
            outline = None if is_title or kind in ("heading", "code", "table") else family(lines, kinds, i)
            if outline is None and plain_heading(lines, kinds, i):
                outline = "name"
            # A callout followed by prose heads that prose (e.g. a conclusion section).
            if kind != "article" and not self.sides.opens(lines, kinds, i):
                if is_title or kind == "heading" or outline is not None:
                    self.sides.close()  # a part of its own ends a comparison table
                self.sides.line(line.text)
            if is_title or kind == "heading" or (kind == "callout" and nxt is not None and kinds[nxt] == "paragraph"):
                # An official letter's first line is its sender's header: its subject field names it.
                name = subject if is_title and subject else MD_HEADING.sub("", line.text).strip()
                self.enter(heading_level(line.text, is_title), name)
                i = self.heading("title" if is_title else "heading", lines, kinds, i)
            elif outline is not None:
                self.enter(self.depths.of(outline), heading_text(line.text))
                i = self.heading("heading", lines, kinds, i)
            elif kind == "article":
                # An article heads its clauses and items; its own line states its first clause.
                title = self.sides.label(article_title(line.text) or heading_text(line.text))
                self.enter(self.depths.of("조"), title)
                if heading_text(line.text) == title:  # a title alone heads the clauses below it
                    i = self.heading("heading", lines, kinds, i)
                else:
                    self.emit_text("article", line.start, line.end)
                    i += 1
            elif kind == "field":
                self.emit_text("field", line.start, line.end)
                i += 1
            elif kind == "code":
                # A code block is one unit under its section, cited whole: a command is read with its flags.
                j = i + 1
                while j < len(lines) and kinds[j] == "code":
                    j += 1
                    if FENCE.match(lines[j - 1].text):
                        break  # the closing fence
                self.emit(
                    "code", line.start, lines[j - 1].end, self.labelled(self.doc.text[line.start : lines[j - 1].end])
                )
                i = j
            elif kind == "table":
                j = i
                while j < len(lines) and kinds[j] == "table":
                    j += 1
                self.table(lines[i:j])
                i = j
            elif kind == "paragraph":
                j = paragraph_end(lines, kinds, i)
                self.emit_text("paragraph", line.start, lines[j - 1].end)
                i = j
            elif FAQ_QUESTION.match(line.text):
                # A FAQ's question with its answer is one unit: the lines up to the next question or blank.
                j = i + 1
                while j < len(lines) and kinds[j] in ("bullet", "paragraph") and not FAQ_QUESTION.match(lines[j].text):
                    j += 1
                self.emit_text("bullet", line.start, lines[j - 1].end)
                i = j
            else:  # bullet or callout
                j = i + 1
                while (
                    kind == "bullet" and j < len(lines) and kinds[j] == "bullet" and CONTINUES.search(lines[j - 1].text)
                ):
                    j += 1
                # a reply indented under the item ("→ 본인 확인 후 …") is one unit with it, as a FAQ's answer is
                while (
                    kind == "bullet"
                    and j < len(lines)
                    and REPLY.match(lines[j].text)
                    and not REPLY.match(line.text)
                    and indent(lines[j].text) > indent(line.text)
                ):
                    j += 1
                self.items(kind, lines[i:j])
                i = j
        return self.chunks

    def heading(self, kind: str, lines: list[Line], kinds: list[str], i: int) -> int:
        """Emit a heading together with the prose that opens its section, within the token budget.

        A heading alone says little; with its first paragraphs it is a summary of the section.
        Returns the index of the first line not taken.
        """
        start, end, j = lines[i].start, lines[i].end, i + 1
        while True:
            k = j
            while k < len(lines) and kinds[k] == "blank":
                k += 1
            if k >= len(lines) or kinds[k] != "paragraph" or plain_heading(lines, kinds, k) or family(lines, kinds, k):
                break
            if self.doc.page_at(lines[k].start) != self.doc.page_at(start):
                break  # a citation of the heading should name one page
            stop = paragraph_end(lines, kinds, k)
            if self.count(self.section + " " + plain(self.doc.text[start : lines[stop - 1].end])) > self.max_tokens:
                break
            end, j = lines[stop - 1].end, stop
        self.emit(kind, start, end, f"{self.section} {plain(self.doc.text[lines[i].end : end])}".strip())
        return j

    def items(self, kind: str, group: list[Line]) -> None:
        """Emit a bullet or callout, split where two items were glued onto one line.

        A bullet that stops on a comma ("- 미국의 ... 이후에도,") starts a sentence the next
        bullet finishes, so such a run of bullets is one unit.
        """
        if len(group) > 1:
            self.emit_item(kind, group[0].start, group[-1].end)
            return
        line = group[0]
        cuts = [line.start] + [line.start + m.start() + m.group(0).index("-") for m in GLUED_ITEM.finditer(line.text)]
        ends = [*cuts[1:], line.end]
        for a, b in zip(cuts, ends, strict=True):
            self.emit_item(kind, a, a + len(self.doc.text[a:b].rstrip()))

    def emit_item(self, kind: str, start: int, end: int) -> None:
        """Emit a bullet under its section label and the sentence that leads into its list (see led)."""
        if kind != "bullet":
            self.emit_text(kind, start, end)
            return
        self.emit(kind, start, end, self.led(start, end))


def subject_of(lines: list[Line], kinds: list[str]) -> str | None:
    """The subject an official letter or proposal states in its header ("제  목 : 본사 주차장 운영 개선(안)"):
    what the document is about, as its title names it; None when its header has no such field."""
    for line, kind in zip(lines, kinds, strict=False):
        found = FIELD.match(line.text) if kind == "field" else None
        if found and "".join(found.group(1).split()).lower() in SUBJECT_LABELS:
            return " ".join(found.group(2).split())
    return None


def chunk_document(doc: Document, count_tokens: TokenCounter, max_tokens: int = 256) -> list[Chunk]:
    """Split a document into structure-aware chunks whose spans cover all of its non-blank text."""
    if len(doc.text) > LARGE_DOCUMENT_CHARS:
        log.warning("%s has %d characters: chunking and embedding it takes a while", doc.source, len(doc.text))
    return _Builder(doc, count_tokens, max_tokens).run()
