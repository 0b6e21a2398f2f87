"""Line-level layout of plain text: what each line is, table cells, sentences and locators.

Every reader writes its text in one plain layout (see aiqa.ingest.base.Parsed); this module
recognises that layout line by line, for the chunker and the answer composer alike.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

import regex

from aiqa.records import page_at

_KEYCAP_HEADING = regex.compile(r"^\s*\d{1,2}\ufe0f?\u20e3\s*")
MD_HEADING = regex.compile(r"^\s*#{1,6}\s+")
# A Markdown code fence opens or closes a block of code: "```bash", "~~~".
FENCE = regex.compile(r"^\s*(`{3,}|~{3,})")
# The question and answer marks of a FAQ ("Q. ...", "A: ...", "질문) ...", "답. ...").
_ASKS, _ANSWERS = r"(?:Q|질문|문)\s*[.:)]", r"(?:A|답변|답)\s*[.:)]"
FAQ_QUESTION = regex.compile(rf"^\s*{_ASKS}\s+")
FAQ_ANSWER = regex.compile(rf"^\s*{_ANSWERS}\s+")
# Korean lists letter their items 가. 나. 다. … in this order.
LETTERS = "[가나다라마바사아자차카타파하]"
# A list item's mark; a FAQ's marks start items too. A clause of an article (①, ②) starts an item
# with or without a space after its mark.
BULLET = regex.compile(
    rf"^\s*(?:(?:[-*•·▪◦‣○●▶▷►※➢✓✔→⇒]|\d{{1,2}}[.)]|{LETTERS}[.)]|\(\d{{1,2}}\)|\({LETTERS}\)|{_ASKS}|{_ANSWERS})\s+"
    r"|[\u2460-\u2473]\s*)"
)
# A reply under an item, indented below it: "▶ 고객이 정보를 지워 달라고 해요." then "   → 본인 확인 후 …".
REPLY = regex.compile(r"^\s*[→⇒]\s")
# 제10조(근무시간) or 제3조의2: a line that opens an article of a rule, usually with its first clause.
ARTICLE = regex.compile(r"^\s*(제\s*\d+\s*조(?:\s*의\s*\d+)?)(?:\s*(\([^()\n]{1,40}\))|(?=\s|$))")
# A header field: a short label, a colon, a value ("작성자 : 인사팀", "Owner: Finance").
FIELD = regex.compile(r"^\s*(?!\p{N})([\p{L}][\p{L}\s]{0,11}?)\s*[:：]\s*(\S.*)$")
_CALLOUT = regex.compile(r"^\s*\p{Extended_Pictographic}")
TABLE_SEPARATOR = regex.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")
# Two list items glued on one line: "... 프로그램 - 💻 사이버 기술 유출: ..."
GLUED_ITEM = regex.compile(r"\s+-\s+(?=\p{Extended_Pictographic})")
SENTENCE_END = regex.compile(r"(?:[.!?。！？…]|다|요|음|함|임)[\"'”’)\]]*\s*$")
CONTINUES = regex.compile(r"[,，:;…]\s*$")
# A sentence ends at its mark and the space after it, but not the mark of a list item or FAQ line at
# the start of a line ("1. ", "Q. ", "가. ").
_SENTENCE_SPLIT = regex.compile(
    r"(?<!^[ \t]*(?:#{1,6}[ \t]+)?(?:\d{1,3}|[A-Za-z]|[가-힣]|질문|답변)[.)])(?<=[.!?。！？])[\"'”’)\]]*\s+", regex.M
)
_LEADING_MARK = regex.compile(r"^\s*(?:#{1,6}\s+|\d{1,2}\ufe0f?\u20e3\s*|\p{Extended_Pictographic}\ufe0f?\s*)")


@dataclass
class Line:
    start: int
    end: int
    text: str
    number: int  # 1-based line number


def split_lines(text: str) -> list[Line]:
    out, pos = [], 0
    for number, raw in enumerate(text.split("\n"), start=1):
        out.append(Line(pos, pos + len(raw), raw, number))
        pos += len(raw) + 1
    return out


def _is_table_line(line: str) -> bool:
    stripped = line.strip()
    return "|" in stripped and (stripped.endswith("|") or stripped.startswith("|") or stripped.count("|") >= 2)


def split_cells(row: str) -> list[str]:
    """Split a pipe row into stripped cells, ignoring the empty ends made by outer pipes."""
    cells = [c.strip() for c in row.strip().split("|")]
    if cells and not cells[0] and row.strip().startswith("|"):
        cells = cells[1:]
    if cells and not cells[-1]:
        cells = cells[:-1]
    return cells


# A rule drawn across the page ("-----", "=====", "━━━"): it separates parts and says nothing.
RULE = regex.compile(r"^\s*([-=_~─━═*])(?:\s*\1){3,}\s*$")


def line_kind(line: str) -> str:
    if not line.strip():
        return "blank"
    if RULE.match(line):
        return "rule"
    if MD_HEADING.match(line) or _KEYCAP_HEADING.match(line):
        return "heading"
    if _is_table_line(line):
        return "table"
    if BULLET.match(line):
        return "bullet"
    if _CALLOUT.match(line):
        return "callout"
    if ARTICLE.match(line):
        return "article"
    if FIELD.match(line):
        return "field"
    return "paragraph"


def line_starts(text: str) -> list[int]:
    """Offsets where each line of `text` starts: lets many locators skip counting from the start."""
    return [0, *(m.end() for m in regex.finditer("\n", text))]


def locate(
    text: str,
    pages: tuple[int, ...],
    start: int,
    end: int,
    extra: str = "",
    starts: Sequence[int] | None = None,
) -> str:
    """A locator a person can follow: "lines 7-8", "p. 2, line 14", plus e.g. "table 1, row 3".

    Pass `starts` (line_starts(text)) when locating many spans of one text: counting the line
    breaks before each span from the text's start made chunking quadratic in the text's size.
    """
    if starts is None:
        first = text.count("\n", 0, start) + 1
        last = text.count("\n", 0, max(start, end - 1)) + 1
    else:
        first, last = bisect_right(starts, start), bisect_right(starts, max(start, end - 1))
    where = f"line {first}" if first == last else f"lines {first}-{last}"
    if pages:
        p1, p2 = page_at(pages, start), page_at(pages, max(start, end - 1))
        where = f"p. {p1}, {where}" if p1 == p2 else f"pp. {p1}-{p2}, {where}"
    return f"{where}, {extra}" if extra else where


def is_numbered_heading(line: str) -> bool:
    """Tell whether a line is a Markdown or numbered ("1️⃣ ...") heading."""
    return bool(MD_HEADING.match(line) or _KEYCAP_HEADING.match(line))


def short_section(section: str) -> str:
    """Return a section title without its numbering mark and subtitle: the label for context."""
    title = _LEADING_MARK.sub("", section).strip()
    for sep in (" – ", " — ", " - ", ": "):
        if sep in title:
            title = title.split(sep, 1)[0]
    return title.strip() or section.strip()


def plain(text: str) -> str:
    """The words of a span on one line, without list marks: how a unit reads in running text."""
    return " ".join(" ".join(BULLET.sub("", line, count=1).split()) for line in text.split("\n")).strip()


def sentence_spans(text: str, offset: int = 0) -> list[tuple[int, int]]:
    """Split text into sentences; return their spans shifted by `offset`, whitespace trimmed."""
    spans, pos = [], 0
    for match in _SENTENCE_SPLIT.finditer(text):
        spans.append((pos, match.start() + len(match.group(0).rstrip())))
        pos = match.end()
    spans.append((pos, len(text)))
    out = []
    for a, b in spans:
        piece = text[a:b]
        if piece.strip():
            lead = len(piece) - len(piece.lstrip())
            out.append((offset + a + lead, offset + a + len(piece.rstrip())))
    return out


def heading_level(line: str, is_title: bool) -> int:
    """Nesting level of a heading: Markdown by its #s; numbered and callout headings at 2; a plain title line 0."""
    marks = regex.match(r"^\s*(#{1,6})\s", line)
    if marks:
        return len(marks.group(1))
    return 0 if is_title else 2


# A statement that opens a list below it: "직원은 다음 각 호의 의무를 진다.", "…는 다음과 같다:".
LEADS_IN = regex.compile(r"[:：]\s*$|다음\s*각\s*호|다음과\s*같|아래와\s*같|\bthe following\b|\bas follows\b", regex.I)
HANGUL = regex.compile(r"\p{Hangul}")


def indent(text: str) -> int:
    """How far a line is indented (its leading whitespace)."""
    return len(text) - len(text.lstrip())


# A shell prompt before a command ("$ logpipe-ctl status --all"), and what code has and prose rarely does.
_PROMPT = regex.compile(r"^\s*\$\s+[A-Za-z./~_-]")
_CODE_SIGNS = regex.compile(r"[=/\\{}<>|;$]|--|\w\.\w+\(")
_GAPS = regex.compile(r"\S[ \t]{3,}\S")  # columns laid out with spaces: a table, not code
# Columns deeper than the text before it that an unfenced code line is indented.
CODE_INDENT = 4


def _codelike(text: str) -> bool:
    """Whether a line reads as code: mostly not Hangul, with a sign code has, laid out as no table."""
    body = text.strip()
    letters = [c for c in body if not c.isspace()]
    hangul = sum(1 for c in letters if HANGUL.match(c))
    return bool(letters) and hangul * 5 <= len(letters) and bool(_CODE_SIGNS.search(body)) and not _GAPS.search(body)


def code_kinds(lines: list[Line], kinds: list[str]) -> list[str]:
    """The kinds with every line of a code block as "code": a fenced block, fences included (a "# comment"
    in it is no heading, "```bash" no plain heading; an unclosed fence runs to the end), and in plain text
    a block indented deeper than the text before it that reads as code: commands after a shell prompt
    ("      $ logpipe-ctl status --all" under "아래 명령으로 한다."), or code-like lines after a blank line.
    Such lines are no headings over the text that follows them."""
    out, fence = list(kinds), None
    for i, line in enumerate(lines):
        mark = FENCE.match(line.text)
        if fence is None and mark:
            fence, out[i] = mark.group(1)[0] * 3, "code"
        elif fence is not None:
            out[i] = "code"
            if mark and mark.group(1).startswith(fence):
                fence = None
    prose = 0  # indentation of the last line of text
    for i, line in enumerate(lines):
        kind = out[i]
        if kind in ("blank", "code") or not line.text.strip():
            continue
        deeper = indent(line.text) >= prose + CODE_INDENT
        after_blank = i > 0 and out[i - 1] == "blank"
        continues = i > 0 and out[i - 1] == "code" and indent(line.text) >= indent(lines[i - 1].text)
        # (a list item indented under another is a nested item, not code, unless it gives a prompt)
        code = _PROMPT.match(line.text) or (kind != "bullet" and (after_blank or continues) and _codelike(line.text))
        if deeper and kind != "table" and code:
            out[i] = "code"
        else:
            prose = indent(line.text)
    return out


def paragraph_end(lines: list[Line], kinds: list[str], i: int) -> int:
    """Index after the last line of the paragraph starting at i: lines join while one stops mid-sentence."""
    j = i + 1
    while j < len(lines) and kinds[j] == "paragraph" and not SENTENCE_END.search(lines[j - 1].text):
        j += 1
    return j
