"""Re-flow text as a PDF extraction leaves it back into text as it was written.

Extracted text breaks lines at the page's width (inside sentences, often inside words), repeats
running headers and page numbers on every page and letter-spaces short header fields. The
chunker reads lines as units, so `reflow` joins a line that stops mid-sentence at the wrap width
with the next one (with or without a space, as Kiwi's spacing model decides), drops page
furniture (recording it), undoes letter-spacing ("작  성  자 :  인  사  팀" -> "작성자: 인사팀"),
and keeps real line structure: list and clause marks, 제N조 headings, table and aligned rows,
Markdown and code. Only whitespace changes and only furniture lines go, so every span of the
re-flowed text maps back to a source span with the same characters (`Reflowed.source_span`).
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass

import regex

from aiqa.text.columns import width
from aiqa.text.korean import cuts_word, space
from aiqa.text.layout import FENCE, FIELD, HANGUL, indent

_PAGE_NUMBER = regex.compile(
    r"^\s*(?:[-–—－~]\s*\d{1,4}\s*[-–—－~]|\d{1,4}\s*/\s*\d{1,4}|(?:page|p\.)\s*\d{1,4}(?:\s*(?:of|/)\s*\d{1,4})?"
    r"|\d{1,4}\s*(?:쪽|페이지))\s*$",
    regex.I,
)
_BARE_NUMBER = regex.compile(r"^\s*\(?\d{1,4}\)?\s*$")  # a page number only at a known page's edge
# A drawn line, or the dashes of a flattened table (a lone "-" is an empty cell).
_RULE = regex.compile(r"^\s*(?:(?:[-=_─━═~·*]\s?){3,}|[-–—－])\s*$")
_LETTERS = "가나다라마바사아자차카타파하"
# A list letter ("가." "나)" "(다)") is a mark only in its turn: "다. 등대지기는" may be a word cut by a wrap.
_LETTER_MARK = regex.compile(rf"^\s*\(?([{_LETTERS}])[.)]\s")
# Marks of items and clauses (1. (1) ① ○ ■ - Q.): each starts a unit, a page break leaves it in its list.
_ITEM = regex.compile(
    r"^\s*(?:\(\s*\d{1,3}\s*\)|\d{1,3}[.)](?:\s|$)|[\p{No}\u3260-\u327f]|[○●◎■□▪▶▷►▸◆◇◈※★☆✓✔•·]|[-*–]\s"
    r"|(?:Q|A|질문|답변?)\s*[.:)])"
)
# Other lines that start a unit: articles and chapters, bracketed titles ([별표 1], 【1단계】),
# attachments, Markdown headings, table rows and fences.
_HEADING = regex.compile(r"^\s*(?:[【\[<〈「|]|제\s*\d+\s*[조장절관편항]|부\s*칙|붙\s*임|#{1,6}\s|```|~~~)")
_SENTENCE_END = regex.compile(r"[.!?。！？…:]['\"”’)\]」』]*\s*$")
_DECIMAL = regex.compile(r"\d\.$")  # "1." + "2미터": a number broken at its point ends no sentence
_STOPS = regex.compile(r"\p{Hangul}[.!?。！？]['\"”’)\]」』]*\s*$")  # a sentence's end, not a date's
_ALIGNED = regex.compile(r"\S[ \t]{3,}\S")  # columns laid out with spaces: a row, kept as it is
_MARKDOWN = regex.compile(r"^(?:#{1,6}\s+\S|\s*(?:```|~~~)|\s*\|?\s*:?-{3,}:?\s*\|)", regex.M)
# Syllables standing alone between spaces: three make a line letter-spaced, two a word in one.
_SPACED_RUN = regex.compile(r"(?<!\S)\p{Hangul}(?:[ \t]+\p{Hangul}(?!\S)){2,}")
_SPACED_WORD = regex.compile(r"(?<!\S)\p{Hangul}(?:[ \t]+\p{Hangul}(?!\S))+")
_NO_SPACE_BEFORE = regex.compile(r"[.,;:!?)\]}」』”’%]")
_NO_SPACE_AFTER = regex.compile(r"[(\[{「『“‘]")
_LATIN = regex.compile(r"[A-Za-z]")
_FULL = 0.9  # a line is full when it and the next line's first word pass this share of the wrap width
_BLOCK_LINES = 8  # lines a block needs to be read at a narrower wrap width of its own (`_block_wraps`)
_WIDEST_WRAP = 200  # columns; wider lines are paragraphs written on one line, not a page's width
# A field label of single syllables with the gap before its colon: "제      목 :", "성    명:".
_SPACED_LABEL = regex.compile(r"^[ \t]*\p{Hangul}(?:[ \t]+\p{Hangul})+[ \t]*(?=[:：])")
_SHORT_HEADER = 60  # columns; letter-spacing is undone only in lines this narrow
_WINDOW = 12  # characters either side of a break that Kiwi reads to place the space
_FURNITURE = ("page-number", "running-header", "rule")


@dataclass(frozen=True)
class Furniture:
    """A line dropped from the text: a page number, a repeated running header or footer, a rule."""

    kind: str  # page-number | running-header | rule
    start: int  # its span in the source text
    end: int
    text: str


@dataclass(frozen=True)
class Reflowed:
    """The re-flowed text with its map back into the source.

    `segments` holds (offset in text, offset in source) where a run of characters copied one to one
    starts; a space or line break put in place of a line break maps to that line break.
    """

    text: str
    source: str
    furniture: tuple[Furniture, ...] = ()
    pages: tuple[int, ...] = ()  # where each page starts in `text`
    segments: tuple[tuple[int, int], ...] = ((0, 0),)

    def source_offset(self, offset: int) -> int:
        """The source offset of the character at `offset` of the re-flowed text."""
        out, src = self.segments[max(0, bisect_right(self.segments, (offset, len(self.source) + 1)) - 1)]
        return src + offset - out

    def source_span(self, start: int, end: int) -> tuple[int, int]:
        """The source span of the re-flowed span [start, end): the same characters, plus whitespace."""
        if end <= start:
            return (self.source_offset(start),) * 2
        return self.source_offset(start), self.source_offset(end - 1) + 1


@dataclass
class _Line:
    start: int
    text: str
    page: int
    kind: str = "text"  # text | blank | code | page-number | running-header | rule
    mark: str = ""  # item | heading: the line starts a unit of its own


def _lines(text: str, pages: tuple[int, ...]) -> list[_Line]:
    """Split into lines, marking code blocks and blanks; without page offsets, a page-number line or
    a form feed ends a page."""
    lines, pos, page, in_code, letter = [], 0, 0, False, ""
    for raw in text.split("\n"):
        line = _Line(pos, raw, bisect_right(pages, pos) - 1 if pages else page)
        if FENCE.match(raw):
            line.kind, in_code = "code", not in_code
        elif in_code:
            line.kind = "code"
        elif not raw.strip():
            line.kind = "blank"
        elif _PAGE_NUMBER.match(raw) or "\f" in raw:
            page += 1
        turn = _LETTER_MARK.match(raw)
        if turn and (turn[1] == "가" or _LETTERS.find(letter) == _LETTERS.find(turn[1]) - 1):
            line.mark, letter = "item", turn[1]
        elif not turn:
            line.mark = "item" if _ITEM.match(raw) else "heading" if _HEADING.match(raw) else ""
        lines.append(line)
        pos += len(raw) + 1
    return lines


def _edges(lines: list[_Line], depth: int = 2) -> list[list[int]]:
    """Per page, the indexes of its first and last `depth` lines of text: where furniture sits."""
    by_page: dict[int, list[int]] = {}
    for i, line in enumerate(lines):
        if line.kind == "text":
            by_page.setdefault(line.page, []).append(i)
    return [ids[:depth] + ids[-depth:] for ids in by_page.values()]


def _mark_furniture(lines: list[_Line], paged: bool) -> None:
    """Mark page numbers, rules and running headers and footers (the same line at the edge of at
    least half the pages, numbers aside); a bare number counts only at a known page's edge."""
    for i in {i for ids in _edges(lines) for i in ids} if paged else ():
        if _BARE_NUMBER.match(lines[i].text):
            lines[i].kind = "page-number"
    for line in lines:
        if line.kind == "text" and (_PAGE_NUMBER.match(line.text) or _RULE.match(line.text)):
            line.kind = "page-number" if _PAGE_NUMBER.match(line.text) else "rule"
    edges = _edges(lines)
    if len(edges) < 2:
        return
    key = [regex.sub(r"\d+", "#", "".join(line.text.split())) for line in lines]
    counts = Counter(k for ids in edges for k in {key[i] for i in ids if len(lines[i].text) <= 120})
    repeated = {k for k, n in counts.items() if n >= 2 and n * 2 >= len(edges)}
    seen: set[str] = set()
    for i in sorted({i for ids in edges for i in ids}):
        if key[i] in repeated:
            # The first copy stays: a header often names the document ("계약번호 HB-…").
            lines[i].kind = "running-header" if key[i] in seen else lines[i].kind
            seen.add(key[i])


def _continues(lines: list[_Line], i: int, wrap: int, sentences: bool = True, fitting: bool = False) -> int | None:
    """The index of the line that line i runs on into, or None when a unit ends at line i.

    A line runs on when the next line's first word would not have fitted on it (so the break is
    the page's, not the writer's) and the next line starts no unit of its own; with `sentences`
    false, also only when it ends no sentence. Blank lines and furniture between them are passed
    over only at a page break and mid-sentence: on one page a blank line ends a paragraph. With
    `fitting`, the next line's first word may have fitted (see `_runs_on_anyway`).
    """
    line = lines[i]
    ends = bool(_SENTENCE_END.search(line.text)) and not _DECIMAL.search(line.text)
    if line.kind != "text" or _ALIGNED.search(line.text.strip()) or (ends and not sentences):
        return None
    j = i + 1
    while j < len(lines) and lines[j].kind not in ("text", "code"):
        j += 1
    if j >= len(lines) or lines[j].kind != "text" or lines[j].mark or _ALIGNED.search(lines[j].text):
        return None
    if j > i + 1 and (ends or lines[j].page == line.page or any(g.kind == "rule" for g in lines[i + 1 : j])):
        return None
    first_word = lines[j].text.split()[0]
    if width(line.text.rstrip()) + 1 + width(first_word) <= _FULL * wrap and not fitting:
        return None
    # A next line indented deeper than this one starts a paragraph of its own.
    if indent(lines[j].text) > max(1, indent(line.text)) and not line.mark:
        return None
    return j


def _hangs(item: _Line, nxt: _Line) -> bool:
    """Whether a line goes on under the text of the list item above it, past its mark ("  1) 에이전트: 각
    서버에서" over "     읽어 수집기로"): a hanging indent, the item's own text wrapped."""
    mark = _ITEM.match(item.text) or _LETTER_MARK.match(item.text)
    if item.mark != "item" or mark is None:
        return False
    column = mark.end() + len(item.text[mark.end() :]) - len(item.text[mark.end() :].lstrip())
    return indent(nxt.text) == column


def _runs_on_anyway(lines: list[_Line], wrap: int, joins: dict[int, int]) -> dict[int, tuple[int, bool | None]]:
    """Line breaks that look like the writer's by width, yet fall where a writer does not break: inside a
    list item's text that hangs under it, or inside a word ("…아래 명령으" + "로 한다.", "30" + "일": a text
    wrapped by characters rather than by width; only where the line is at least half the wrap, as a cut
    word's line is full, and a short line's end is the writer's, "문 서" over "번 호"). Never at a header
    field ("작성 : 인사팀"). Line index -> (next line, a space between them, or None for Kiwi to decide)."""
    out: dict[int, tuple[int, bool | None]] = {}
    for i in range(len(lines)):
        if i in joins or _SENTENCE_END.search(lines[i].text) or not lines[i].text[-1:].strip():
            continue
        j = _continues(lines, i, wrap, fitting=True)
        if j is None or FIELD.match(lines[i].text) or FIELD.match(lines[j].text):
            continue
        left, right = lines[i].text.rstrip(), lines[j].text.lstrip()
        rule = join_rule(left, right)
        cut = 2 * width(left) >= wrap and (rule is False or cuts_word(left[-_WINDOW:], right[:_WINDOW]))
        hangs = _hangs(lines[i], lines[j])
        if cut and (hangs or (lines[i].mark != "item" and rule is not True)):
            out[i] = (j, False)
        elif hangs:
            out[i] = (j, rule)
    return out


def _wrap_width(lines: list[_Line]) -> int | None:
    """The width the text was wrapped at, when enough lines run on at it; None when it is not wrapped."""
    widths = sorted(width(line.text.rstrip()) for line in lines if line.kind == "text")
    if len(widths) < 4 or widths[int(0.9 * (len(widths) - 1))] > _WIDEST_WRAP:
        return None
    wrap = widths[int(0.9 * (len(widths) - 1))]
    wrapped = sum(_continues(lines, i, wrap, sentences=False) is not None for i in range(len(lines)))
    return wrap if wrapped >= 3 and wrapped * 5 >= len(widths) else None


def _block_wraps(lines: list[_Line], wrap: int | None) -> dict[int, int]:
    """A wrap width of its own for a block wrapped narrower than the page (or wrapped on a page that is
    not): a column of a two-column layout, a side of a comparison table ("현행 | 개정안" flattened one side
    after the other), a boxed note. Blocks are runs of text lines between blank lines and page breaks. One
    counts when it is long enough to show its width (`_BLOCK_LINES`), a fifth of it runs on at that width
    (as `_wrap_width` asks of a page), and breaks fall inside words at least twice ("…월 8만원을 넘" + "지
    아니한다."): a writer never breaks there, so short lines that merely line up (a list of contacts) stay
    apart. Line index -> its block's width."""
    out: dict[int, int] = {}
    block: list[int] = []
    for i in range(len(lines) + 1):
        if i < len(lines) and lines[i].kind == "text" and (not block or lines[i].page == lines[block[-1]].page):
            block.append(i)
            continue
        if len(block) >= _BLOCK_LINES:
            own = _wrap_width([lines[k] for k in block])
            if own is not None and (wrap is None or own < _FULL * wrap) and _cut_words(lines, block, own) >= 2:
                out.update(dict.fromkeys(block, own))
        block = [i] if i < len(lines) and lines[i].kind == "text" else []
    return out


def _cut_words(lines: list[_Line], block: list[int], wrap: int) -> int:
    """How many of a block's line breaks that run on at `wrap` fall inside a word."""
    cuts = 0
    for k in block:
        j = _continues(lines, k, wrap, sentences=False)
        if j is not None:
            left, right = lines[k].text.rstrip(), lines[j].text.lstrip()
            cuts += join_rule(left, right) is False or cuts_word(left[-_WINDOW:], right[:_WINDOW])
    return cuts


def kiwi_spaces(pairs: list[tuple[str, str]]) -> list[bool]:
    """For each (line end, next line start), whether Kiwi's spacing model puts a space between them.

    `Kiwi.space` over a window either side of the break measured better than `Kiwi.glue` on KorQuAD
    paragraphs wrapped at 37 characters (bench/reflow.py glue).
    """
    if not pairs:
        return []
    windows = [(left[-_WINDOW:], right[:_WINDOW]) for left, right in pairs]
    spaced = space([a + b for a, b in windows])
    out = []
    for (left, _), text in zip(windows, spaced, strict=True):
        target, seen, i = len(left.replace(" ", "")), 0, 0
        while seen < target and i < len(text):
            seen += text[i] != " "
            i += 1
        out.append(i < len(text) and text[i] == " ")
    return out


def join_rule(left: str, right: str) -> bool | None:
    """Space or not between two wrapped lines when the characters at the break settle it; else None."""
    if not (left and right):
        return False
    a, b = left[-1], right[0]
    if _NO_SPACE_BEFORE.match(b) or _NO_SPACE_AFTER.match(a):
        return False
    if a.isdigit() and (b.isdigit() or HANGUL.match(b)):
        return False  # "20" + "일", "1" + "970년": a number wraps inside itself or before its unit
    if a == "." and left[-2:-1].isdigit() and b.isdigit():
        return False  # "1." + "2미터": a decimal point
    if a in ",.;!?" or left.endswith("---") or right.startswith("---"):
        return True  # (a run of dashes stands for words: the words of a comparison table's other side)
    if _LATIN.match(a) and _LATIN.match(b) and not HANGUL.search(left[-_WINDOW:] + right[:_WINDOW]):
        return True  # English wraps at spaces (a Korean typesetter cuts Latin words too: Kiwi knows those)
    return None


def _despace(text: str) -> list[tuple[int, int]]:
    """Spans of a letter-spaced header line to keep (the rest is whitespace to drop); [] if none.

    In "작  성  자 :  인  사  팀" the gaps between single syllables go, and so does the space before
    the colon; a gap much wider than the letters' own separates fields and stays.
    """
    body = text.rstrip()
    label = _SPACED_LABEL.match(body)
    if label and not _SPACED_RUN.search(body) and width(body) <= _SHORT_HEADER:
        # "제      목 :  본사 주차장 운영 개선(안)": a two-syllable label spread over its field's column
        gaps = [(m.start(), m.end()) for m in regex.finditer(r"[ \t]+", body[: label.end()]) if m.start() > 0]
        return _kept(body, [g for g in gaps if body[: g[0]].strip()])
    if width(body) > _SHORT_HEADER or _STOPS.search(body) or not _SPACED_RUN.search(body):
        return []
    words = list(_SPACED_WORD.finditer(body))
    if sum(len(HANGUL.findall(m.group())) for m in words) * 10 < len(HANGUL.findall(body)) * 6:
        return []  # a few one-syllable words in a phrase ("그 중 한 명이") are no letter-spacing
    cut: list[tuple[int, int]] = []
    for word in words:
        gaps = [(word.start() + m.start(), word.start() + m.end()) for m in regex.finditer(r"[ \t]+", word.group())]
        narrow = min(b - a for a, b in gaps)
        cut += [(a, b) for a, b in gaps if b - a <= max(2, 2 * narrow)]
    cut += [(m.start(), m.end()) for m in regex.finditer(r"[ \t]{1,3}(?=:)", body)]
    cut += [(m.start() + 1, m.end()) for m in regex.finditer(r"(?<=:)[ \t]{2,3}(?=\S)", body)]
    return _kept(body, cut)


def _kept(body: str, cut: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The spans of `body` left when the `cut` spans go."""
    keep, pos = [], 0
    for a, b in sorted(cut):
        if a > pos:
            keep.append((pos, a))
        pos = max(pos, b)
    return [*keep, (pos, len(body))]


class _Writer:
    """Builds the re-flowed text from source spans, keeping the offset map and where pages start."""

    def __init__(self, source: str):
        self.source, self.size = source, 0
        self.parts: list[str] = []
        self.segments: list[tuple[int, int]] = []
        self.pages: list[int] = []

    def copy(self, start: int, end: int) -> None:
        if end > start:
            self.segments.append((self.size, start))
            self.parts.append(self.source[start:end])
            self.size += end - start

    def put(self, char: str, at: int) -> None:
        self.segments.append((self.size, at))
        self.parts.append(char)
        self.size += 1

    def page(self, page: int) -> None:
        """Note that the next text is on `page`: pages up to it start here if none started yet."""
        while len(self.pages) <= page:
            self.pages.append(self.size)


def _profile(text: str, pages: tuple[int, ...] = ()) -> tuple[list[_Line], int | None]:
    lines = _lines(text, pages)
    _mark_furniture(lines, bool(pages))
    return lines, _wrap_width(lines)


def looks_extracted(text: str) -> bool:
    """Whether a plain-text file reads like text extracted from a PDF: hard-wrapped, or with page
    numbers, or with letter-spaced header fields. Markdown never does (its layout is the writer's)."""
    if _MARKDOWN.search(text):
        return False
    lines, wrap = _profile(text)
    numbers = sum(line.kind == "page-number" for line in lines)
    spaced = sum(bool(_despace(line.text)) for line in lines if line.kind == "text")
    return wrap is not None or numbers >= 2 or spaced >= 2


def reflow(text: str, pages: tuple[int, ...] = ()) -> Reflowed:
    """Re-flow extracted text; `pages` are the offsets where pages start (a PDF's), if known."""
    lines, wrap = _profile(text, pages)
    furniture = tuple(Furniture(x.kind, x.start, x.start + len(x.text), x.text) for x in lines if x.kind in _FURNITURE)
    narrow = _block_wraps(lines, wrap)
    joins = {
        i: j
        for i in range(len(lines))
        if (width_at := narrow.get(i, wrap)) and (j := _continues(lines, i, width_at)) is not None
    }
    # A space the extraction left at a line's end says a word ended there; else the characters at
    # the break may settle it, and Kiwi decides the rest.
    pairs = {i: (lines[i].text.rstrip(), lines[j].text.lstrip()) for i, j in joins.items()}
    spaces = {i: True if lines[i].text[-1:].isspace() else join_rule(*pair) for i, pair in pairs.items()}
    for i, (j, spaced) in (_runs_on_anyway(lines, wrap, joins) if wrap else {}).items():
        joins[i], pairs[i], spaces[i] = j, (lines[i].text.rstrip(), lines[j].text.lstrip()), spaced
    ask = [i for i, decided in spaces.items() if decided is None]
    spaces.update(zip(ask, kiwi_spaces([pairs[i] for i in ask]), strict=True))
    out = _Writer(text)
    i, blank, last_page = 0, False, -1
    while i < len(lines):
        line = lines[i]
        if line.kind not in ("text", "code"):
            blank, i = blank or line.kind == "blank", i + 1
            continue
        if last_page >= 0:
            out.put("\n", line.start - 1)
            # Blank lines around a page break are the page's when the next line goes on with a list.
            if blank and (line.page == last_page or line.mark != "item"):
                out.put("\n", line.start - 1)
        blank, last_page = False, line.page
        out.page(line.page)
        spans = [(0, len(line.text))] if line.kind == "code" else _despace(line.text) or [(0, len(line.text.rstrip()))]
        for a, b in spans:
            out.copy(line.start + a, line.start + b)
        while i in joins:
            nxt = lines[joins[i]]
            if spaces[i]:
                out.put(" ", lines[i].start + len(lines[i].text.rstrip()))
            out.copy(nxt.start + indent(nxt.text), nxt.start + len(nxt.text.rstrip()))
            i, last_page = joins[i], nxt.page
        i += 1
    result = "".join(out.parts)
    if result == text:
        return Reflowed(text, text, furniture, pages)
    out.page(max(len(pages), len(out.pages)) - 1)
    starts = tuple(out.pages[: len(pages)] if pages else out.pages)
    return Reflowed(result, text, furniture, starts if len(starts) > 1 else (), tuple(out.segments) or ((0, 0),))


def reflow_if_extracted(text: str) -> Reflowed:
    """Re-flow a plain-text file that reads like a PDF extraction; any other text comes back as is."""
    return reflow(text) if looks_extracted(text) else Reflowed(text, text)
