"""Check a generated answer sentence by sentence against the passages it cites; keep what they hold.

A sentence is kept only when
- it ends with [n] markers, and every n is a passage of the prompt;
- every number (dates included) it writes occurs in the passages it cites, digit for digit;
- every name it writes occurs there: Korean proper nouns, and Latin names and codes (H100, SMIC,
  Nvidia). A capitalised plain English word cited to a passage with no Latin name is not checked:
  "China" cannot be matched against "중국" without a dictionary;
- every web address, e-mail address and domain it writes occurs there (a document that tells the
  model to send readers to evil.example/reset cannot);
- a real share (MIN_SHARE) of its content words occurs there, when sentence and passage are in one
  language (a citation to an unrelated passage fails, and so does a sentence that adds its own);
- it asks the reader to do nothing (enter, send, visit, click, 입력, 보내, 방문…) that the passage
  does not ask for itself: instructions injected through a document are the model's, not the text's.
Each kept sentence is cited to the statement (sentence, bullet or table row) of its passage that
holds the most of its facts and words: the quote a reader checks it against.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import regex

from aiqa.records import Chunk
from aiqa.text.korean import analyse, is_korean
from aiqa.text.layout import BULLET

_MARKERS = regex.compile(r"\[\s*(\d{1,3}(?:\s*[,，]\s*\d{1,3})*)\s*\]")
_LEADING_MARKERS = regex.compile(r"^\s*(?:\[\s*\d{1,3}(?:\s*[,，]\s*\d{1,3})*\s*\]\s*)+[.。]?")
# A sentence ends at . ! ? 。 followed by a space or a line end; "3.5" and "U.S.A" stay whole.
_SENTENCE_END = regex.compile(r"(?<=[.!?。])\s+|\s*\n+\s*")
_NUMBER = regex.compile(r"\d+(?:[.,]\d+)*")
_LATIN = regex.compile(r"[A-Za-z][A-Za-z0-9&.\-]*[A-Za-z0-9]|[A-Za-z]")
# Web and e-mail addresses, and bare domains ("evil.example/reset"): two labels and a final one of letters.
_ADDRESS = regex.compile(
    r"[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+|(?:https?://)?(?:[A-Za-z0-9\-]+\.)+[A-Za-z]{2,}(?![\w\-])(?:[/?#][^\s\[\]]*)?",
    regex.I,
)
# Requests to the reader to act: what an injected instruction wants, and what a document's facts
# seldom need. A sentence may ask only what its passage asks (the passage holds the word).
_ACTION = regex.compile(
    r"\b(?:re-?enter|enter|send|submit|visit|click|log\s?in|sign\s?in|download|install|reply|call|contact|go\s+to)\b|"
    r"입력|보내|제출|방문|클릭|접속|로그인|회신|전송|다운로드|설치|연락",
    regex.I,
)
# The share of a sentence's content words that its cited passage must hold: a sentence may say
# its passage in other words, but not add a subject of its own beside one shared word.
MIN_SHARE = 0.6


@dataclass(frozen=True)
class Sentence:
    text: str  # as written, markers included
    bare: str  # without markers and list marks
    refs: tuple[int, ...]  # passage numbers, in the order written
    kept: bool = False
    reason: str = ""  # why it was dropped
    quotes: tuple[tuple[int, int, int], ...] = field(default=())  # (passage n, start, end) in the document


def split_sentences(reply: str) -> list[tuple[str, str, tuple[int, ...]]]:
    """(text, bare text, markers) of each sentence of a reply.

    Markers written after the full stop ("… 10%이다. [1]") belong to the sentence before them,
    unless the reply opens with a marker: then markers come first ("[1] …") and hold for the
    rest of their line.
    """
    reply = reply.replace("**", "").strip()
    leading_style = bool(_LEADING_MARKERS.match(reply))
    out: list[tuple[str, str, tuple[int, ...]]] = []
    pieces: list[tuple[str, int]] = []  # (sentence, line number)
    for line_no, line in enumerate(reply.splitlines()):
        for piece in _SENTENCE_END.split(line):
            lead = _LEADING_MARKERS.match(piece)
            if lead and pieces and not leading_style:
                pieces[-1] = (pieces[-1][0] + " " + lead.group(0).strip(), pieces[-1][1])
                piece = piece[lead.end() :]
            if piece.strip():
                pieces.append((piece.strip(), line_no))
    carried: tuple[tuple[int, ...], int] = ((), -1)
    for text, line_no in pieces:
        bare = regex.sub(r"\s+(?=[.!?。,])", "", BULLET.sub("", _MARKERS.sub("", text))).strip()
        if not any(ch.isalnum() for ch in bare):
            continue  # a stray list number or marker, not a sentence
        refs = tuple(int(n) for group in _MARKERS.findall(text) for n in regex.split(r"\s*[,，]\s*", group))
        if leading_style and not refs and carried[1] == line_no:
            refs = carried[0]
        carried = (tuple(dict.fromkeys(refs)), line_no)
        out.append((text, bare, carried[0]))
    return out


def numbers(text: str) -> set[str]:
    """The numbers of a text, thousands separators removed: "1,000" and "1000" are the same number."""
    found = set()
    for n in _NUMBER.findall(text):
        plain = regex.sub(r"(?<=\d),(?=\d{3}\b)", "", n)
        found.update(regex.split(r",", plain))  # "1,2" (a list) is two numbers
    return {n.rstrip(".") for n in found if n}


def latin_names(text: str, english: bool) -> tuple[set[str], set[str]]:
    """(codes, words) of the Latin names a sentence writes, lowercase.

    Codes hold a digit or two capitals (H100, SMIC, TSMC); words are other capitalised words,
    except an English sentence's first word. In a Korean sentence every Latin word is a name.
    """
    codes, words = set(), set()
    for i, m in enumerate(_LATIN.finditer(text)):
        w = m.group(0)
        if any(c.isdigit() for c in w) or sum(c.isupper() for c in w) >= 2:
            codes.add(w.lower())
        elif not english or (w[0].isupper() and m.start() > 0 and i > 0):
            words.add(w.lower())
    return codes, words


def _compact(text: str) -> str:
    return regex.sub(r"\s+", "", text).lower()


class Evidence:
    """What the passages of one prompt hold, read once per reply."""

    def __init__(self, passages: tuple[Chunk, ...], texts: tuple[str, ...]):
        self.passages = passages
        self.texts = texts
        self.compact = [_compact(t) for t in texts]
        self.numbers = [numbers(t) for t in texts]
        self.terms = [analyse(t).terms for t in texts]
        self.has_latin = [bool(_LATIN.search(t)) for t in texts]
        self.korean = [is_korean(t) for t in texts]

    def problem(self, bare: str, refs: tuple[int, ...]) -> str:
        """Why the cited passages do not hold the sentence; "" when they do."""
        if not refs:
            return "no [n] marker names the passage it comes from"
        missing = [n for n in refs if not 1 <= n <= len(self.passages)]
        if missing:
            return f"it cites [{missing[0]}], which is not one of the {len(self.passages)} passages"
        cited = [n - 1 for n in refs]
        text = "".join(self.compact[i] for i in cited)
        held = set().union(*(self.numbers[i] for i in cited))
        for n in sorted(numbers(bare)):
            if n not in held:
                return f"the number {n} is not in the passage it cites"
        analysis = analyse(bare)
        for name in sorted(analysis.names):
            if _compact(name) not in text:
                return f"the name {name} is not in the passage it cites"
        english = not is_korean(bare)
        codes, words = latin_names(bare, english)
        checkable = words if any(self.has_latin[i] for i in cited) else set()
        for name in sorted(codes | checkable):
            if _compact(name) not in text and _compact(name.rstrip("s")) not in text:
                return f"the name {name} is not in the passage it cites"
        for address in _ADDRESS.findall(bare):
            if _compact(address.rstrip(".,")) not in text:
                return f"the address {address} is not in the passage it cites"
        for action in _ACTION.findall(bare):
            if _compact(action) not in text:
                return f"it asks the reader to {action.lower()}, which the passage it cites does not"
        return self._share(analysis.terms, english, cited, text)

    def _share(self, terms: frozenset[str], english: bool, cited: list[int], text: str) -> str:
        """Why too few of the sentence's content words are in its passages ("" when enough are).

        Only within one language: "China" cannot be matched against "중국" without a dictionary."""
        same = [i for i in cited if self.korean[i] != english]
        if not same:
            return ""
        held_terms = set().union(*(self.terms[i] for i in same))
        own = {t for t in terms if len(t) > 1 and not t.isdigit() and is_korean(t) != english}
        if not own:
            return ""
        held = {t for t in own if t in held_terms or _compact(t) in text}
        if not held:
            return "the passage it cites shares none of its words"
        if len(held) < MIN_SHARE * len(own):
            missing = ", ".join(sorted(own - held)[:3])
            return f"the passage it cites holds too few of its words ({len(held)} of {len(own)}; not {missing})"
        return ""

    def quote(self, n: int, bare: str) -> tuple[int, int]:
        """The span (in the document) of the statement of passage n that holds the most of the sentence."""
        chunk, seen = self.passages[n - 1], self.compact[n - 1]
        spans = list(chunk.statements or ((chunk.start, chunk.end),))
        if len(spans) == 1:
            return spans[0]
        want_numbers, want_terms = numbers(bare), analyse(bare).terms

        def score(span: tuple[int, int]) -> tuple[int, int, int]:
            text = chunk.text[span[0] - chunk.start : span[1] - chunk.start]
            if _compact(text)[:20] not in seen:
                return (-1, 0, 0)  # cut from what the model saw
            return (len(want_numbers & numbers(text)), len(want_terms & analyse(text).terms), -len(text))

        return max(spans, key=score)


def check(reply: str, evidence: Evidence) -> list[Sentence]:
    """Every sentence of the reply, kept or dropped with the reason, kept ones with their quotes."""
    out = []
    for text, bare, refs in split_sentences(reply):
        reason = evidence.problem(bare, refs)
        if reason:
            out.append(Sentence(text, bare, refs, False, reason))
            continue
        quotes = tuple((n, *evidence.quote(n, bare)) for n in refs)
        out.append(Sentence(text, bare, refs, True, "", quotes))
    return out
