"""The outline of office documents: which lines head a part, at what depth, and which lines are fields.

Korean rules, contracts, proposals, notices and procedures mark their structure in the text itself
rather than with Markdown: chapters and articles (제2장 근무, 제10조(근무시간)), clauses (①) and
items (1., 가.), named sections of a proposal (제안이유, 주요내용), section marks (■ 검진 개요,
【1단계】 구매 요청), numbered headings (1. 목적) and header fields (작성자 : 인사팀). This module
recognises them line by line; the chunker nests what they head under them.
"""

from __future__ import annotations

from collections.abc import Sequence

import regex

from aiqa.text.layout import ARTICLE, CONTINUES, LETTERS, Line, indent

# 제1편 / 제2장 / 제3절 / 제1관, then their title: a division of a statute or company rule.
_DIVISION = regex.compile(r"^\s*제\s*\d+\s*(편|장|절|관)(?:\s|$)")
# 부칙, [별표 1], 별지 제1호 서식: the closing parts of a rule, each a part of its own.
_ANNEX = regex.compile(r"^\s*(?:부\s*칙|\[?\s*별\s*(?:표|지)\s*[\d제]?[^\]\n]{0,20}\]?)(?:\s|$)")
# A section mark: ■ 검진 개요, □ 추진 배경, ◆, ◇, ▣, or a bracketed step 【1단계】.
_SECTION_MARK = regex.compile(r"^\s*(?:([■□◆◇▣◈])|(【)[^】\n]{1,30}】|(\[)[^\]\n]{1,30}\]\s*$)")
# A numbered or lettered heading: "1. 목적", "가. 주차 예약제 도입", "(1) 범위", "Ⅱ. 현황".
_NUMBERED = regex.compile(
    rf"^\s*(?:(\d{{1,2}})[.)]|({LETTERS})[.)]|\((\d{{1,2}})\)|\(({LETTERS})\)|([ⅠⅡⅢⅣⅤⅥⅦⅧⅨⅩ])[.)]?)\s+\S"
)
# The style of each of _NUMBERED's groups, in order.
_STYLES = ("1.", "가.", "(1)", "(가)", "Ⅰ.")
# A name standing alone as a section title: "제안이유", "주요내용", "기대효과", "Background".
_NAME = regex.compile(r"^[\p{L}][\p{L}\s·()]*$")
# A field set far to the right of a heading line: "【1단계】 구매 요청      담당 : 요청부서 담당자".
_TRAILING_FIELD = regex.compile(r"\s{3,}((?!\p{N})[\p{L}][\p{L}\s]{0,11}?\s*[:：]\s*\S.*?)\s*$")
# A heading ends no sentence: no closing mark, no verb ending. Nouns end in 임, 음, 요 and 다 too
# ("역할과 책임", "검진 개요"), so only endings that are a predicate's count here.
_SENTENCE_END = regex.compile(r"(?:[.!?。！？…]|니다|[한된인있없했였]다|세요|[아어여해]요)[\"'”’)\]]*\s*$")
# Headings are short: a longer line is a sentence that happens to start with a mark.
HEADING_CHARS = 40
NAME_CHARS = 20
# How deep each division of a rule sits, counted from the document's first level.
_DIVISIONS = ("편", "장", "절", "관")


def squashed(text: str) -> str:
    """A heading as one would write it: runs of spaces made one."""
    return " ".join(text.split())


def trailing_field(line: str) -> tuple[int, int] | None:
    """The span of a field set far right on a heading line, or None."""
    match = _TRAILING_FIELD.search(line)
    return match.span(1) if match else None


def heading_text(line: str) -> str:
    """A heading line's title: its words without a field set beside it."""
    field = trailing_field(line)
    return squashed(line[: field[0]] if field else line)


def _next_text(lines: Sequence[Line], kinds: Sequence[str], i: int) -> int | None:
    return next((j for j in range(i + 1, len(lines)) if kinds[j] != "blank"), None)


def family(lines: Sequence[Line], kinds: Sequence[str], i: int) -> str | None:
    """The kind of outline heading line i is ("장", "■", "1.", "가.", "name" ...), or None if it heads nothing.

    Chapters, annexes and section marks head what follows when the line is short and ends no
    sentence. A numbered line heads the lines below it when they sit deeper ("1. 목적" over an
    indented paragraph) or are section marks; a numbered line followed by its sibling is an item.
    A name alone between blank lines, followed by text, titles a section ("제안이유").
    """
    text = lines[i].text
    body = heading_text(text)
    if not body or len(body) > HEADING_CHARS or _SENTENCE_END.search(body) or CONTINUES.search(body):
        return None
    division = _DIVISION.match(text)
    if division:
        return division.group(1)
    if _ANNEX.match(text):
        return "장"
    mark = _SECTION_MARK.match(text)
    if mark:
        return mark.group(1) or mark.group(2) or mark.group(3)
    nxt = _next_text(lines, kinds, i)
    if nxt is None:
        return None
    numbered = _NUMBERED.match(text)
    if numbered:
        style = _style(numbered)
        following = lines[nxt].text
        heads = _SECTION_MARK.match(following) or (
            indent(following) > indent(text) and not (_DIVISION.match(following) or _ANNEX.match(following))
        )
        previous = next((lines[j].text for j in range(i - 1, -1, -1) if kinds[j] != "blank"), "")
        sibling = _NUMBERED.match(previous)
        after_item = bool(sibling) and indent(previous) == indent(text) and _style(sibling) == style
        return style if heads and not after_item else None
    previous_blank = i == 0 or kinds[i - 1] in ("blank", "rule")
    if (
        kinds[i] == "paragraph"
        and previous_blank
        and len(body) <= NAME_CHARS
        and _NAME.match(body)
        and sum(ch.isalpha() for ch in body) >= 2
        and kinds[nxt] in ("paragraph", "bullet", "field")
    ):
        return "name"
    return None


def _style(match: regex.Match) -> str:
    return next(s for s, g in zip(_STYLES, match.groups(), strict=True) if g)


class Depths:
    """Heading depths of one document's outline marks, in the order the document first uses them.

    The divisions of a rule keep their order (편 above 장 above 절 above 관, articles below them);
    any other mark goes one level below the marks seen before it, the way a reader nests them:
    in a procedure "1. 목적" comes first and "【1단계】" later, under "4. 업무 절차".
    """

    def __init__(self, base: int):
        self.base = base
        self.order: list[str] = []

    def of(self, kind: str) -> int:
        if kind in _DIVISIONS:
            return self.base + _DIVISIONS.index(kind)
        if kind == "조":
            return self.base + len(_DIVISIONS)
        if kind not in self.order:
            self.order.append(kind)
        return self.base + len(_DIVISIONS) + 1 + self.order.index(kind)


def article_title(line: str) -> str | None:
    """ "제10조(근무시간)" for a line that opens an article, else None."""
    match = ARTICLE.match(line)
    if not match:
        return None
    return squashed(match.group(1)) + (match.group(2) or "")


# A comparison table of an amendment (신·구조문대비표) flattened into text: its header names its two sides, on
# one line or two ("현      행" over "개   정   안"); each article then comes twice, as it reads and as amended,
# and a new one comes after "<신  설>" on the side that had none.
_SIDE_NAMES = (r"현\s*행|개\s*정\s*전|종\s*전", r"개\s*정\s*\(?\s*안\s*\)?|개\s*정\s*후")
_CURRENT = regex.compile(rf"^\s*(?:{_SIDE_NAMES[0]})\s*$")
_AMENDED = regex.compile(rf"^\s*(?:{_SIDE_NAMES[1]})\s*$")
_BOTH = regex.compile(rf"^\s*({_SIDE_NAMES[0]})\s*[|│｜]?\s*({_SIDE_NAMES[1]})\s*$")
_NEW = regex.compile(r"^\s*[<〈(]\s*신\s*설\s*[>〉)]\s*$")


class Sides:
    """Which side of a flattened comparison table an article is on, from the table's header to the next
    part of the document: the first time an article comes it reads as it is ("현행 제3조(지원 대상)"), the
    second time as amended ("개정안 제3조(지원 대상)"), and so does one that comes after "<신설>"."""

    def __init__(self) -> None:
        self.names: tuple[str, str] | None = None
        self.seen: set[str] = set()
        self.new = False

    def opens(self, lines: Sequence[Line], kinds: Sequence[str], i: int) -> bool:
        """Whether line i is the table's header (or its first line); then the articles below are labelled."""
        text = lines[i].text
        both = _BOTH.match(text)
        if both:
            self.names = ("".join(both.group(1).split()), "".join(both.group(2).split()))
        elif _CURRENT.match(text):
            nxt = _next_text(lines, kinds, i)
            if nxt is None or not _AMENDED.match(lines[nxt].text):
                return False
            self.names = ("".join(text.split()), "".join(lines[nxt].text.split()))
        else:
            return False
        self.seen, self.new = set(), False
        return True

    def line(self, text: str) -> None:
        """Note a line of the table: "<신설>" says the next article is a new one."""
        if self.names is not None:
            self.new = bool(_NEW.match(text))

    def label(self, title: str) -> str:
        """An article's title with its side ("개정안 제7조(보육수당)"); as it is outside a table."""
        article = ARTICLE.match(title)
        if self.names is None or article is None:
            return title
        number = "".join(article.group(1).split())
        amended = self.new or number in self.seen
        self.seen.add(number)
        self.new = False
        return f"{self.names[1] if amended else self.names[0]} {title}"

    def close(self) -> None:
        self.names = None
