"""Keyword tokens for Korean and English text: Kiwi content morphemes plus Latin words and numbers."""

from __future__ import annotations

import threading
from functools import lru_cache

import regex

# Content-bearing parts of speech: nouns, foreign words, numbers, hanja, verb/adjective stems, roots
# (pronouns such as 누구/무엇 and adverbs such as 왜/언제 ask; they carry no topic).
_CONTENT_TAGS = {"NNG", "NNP", "NR", "SL", "SN", "SH", "VV", "VA", "XR"}
# Latin/number tokens kept whole, so "GPT-3.5", "A100" and "910B" match as written.
_LATIN = regex.compile(r"[A-Za-z0-9]+(?:[.\-][A-Za-z0-9]+)*")
_HANGUL = regex.compile(r"\p{Hangul}")
_LOCK = threading.Lock()

# English function words: they carry no topic, so they count neither for BM25 nor coverage.
ENGLISH_STOPWORDS = frozenset(
    (
        "a an the and or but if of to in on at by for with from as is are was were be been being "
        "do does did done have has had what which who whom whose when where why how that this these "
        "those it its they them their there here than then so such not no can could should would "
        "will shall may might must about into over under between against during before after above "
        "below up down out off again further once all any both each few more most other some own "
        "same too very just also i you he she we me my your our his her us tell show give list explain "
        "describe "
    ).split()
)


@lru_cache(maxsize=1)
def _kiwi():
    from kiwipiepy import Kiwi

    return Kiwi()


def is_korean(text: str) -> bool:
    """Tell whether a text is mainly Korean (more Hangul than Latin letters)."""
    hangul = len(_HANGUL.findall(text))
    latin = sum(len(m) for m in regex.findall(r"[A-Za-z]+", text))
    return hangul > 0 and hangul >= latin / 3


def _singular(word: str) -> str:
    """A light English plural folding ("gpus" -> "gpu", "policies" -> "policy")."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")) and word.isalpha():
        return word[:-1]
    return word


def _analyse(text: str):
    with _LOCK:  # Kiwi instances are not documented as thread-safe; the web app has several workers.
        return _kiwi().tokenize(text)


def language(text: str) -> str:
    """The language to answer in: "en" for an English sentence, else "ko" (the default).

    A bare name or keyword ("CANN", "Huawei Ascend") is not English prose: it gets Korean framing.
    """
    if is_korean(text):
        return "ko"
    words = [w.lower() for w in regex.findall(r"[A-Za-z]+", text)]
    english = sum(1 for w in words if w in ENGLISH_STOPWORDS)
    return "en" if english >= 1 and len(words) >= 3 else "ko"


def tokens(text: str, *, phrases: bool = False) -> list[str]:
    """Return lowercase keyword tokens: Korean content morphemes and whole Latin/number words.

    With `phrases`, also pairs of neighbouring Korean content morphemes ("자원_확보"), so a
    keyword index rewards a question that uses the document's own phrase.
    """
    out: list[str] = []
    run: list[str] = []
    for tok in _analyse(text):
        if tok.tag in _CONTENT_TAGS and tok.tag not in ("SL", "SN"):
            form = tok.form.lower()
            out.append(form)
            if phrases and run:
                out.append(f"{run[-1]}_{form}")
            run.append(form)
        elif tok.tag.startswith("S") or tok.tag in ("SL", "SN"):
            run = []  # punctuation, symbols and foreign words break a phrase
    for word in _LATIN.findall(text):
        low = _singular(word.lower())
        if low not in ENGLISH_STOPWORDS:
            out.append(low)
            # Also the alphabetic and numeric parts, so "A100" matches "A-100" and "a100" alike.
            parts = regex.findall(r"[a-z]+|[0-9]+(?:\.[0-9]+)?", low)
            if len(parts) > 1:
                out.extend(p for p in parts if p not in ENGLISH_STOPWORDS and len(p) > 1)
    return out


def content_terms(text: str) -> set[str]:
    """The distinct keyword tokens of a text: what "covering the question" is measured on."""
    return set(tokens(text))


def names(text: str, *, latin: bool = True) -> set[str]:
    """Proper nouns (and, with `latin`, Latin words) of a text, lowercase: what a question is about."""
    found = {tok.form.lower() for tok in _analyse(text) if tok.tag == "NNP"}
    if latin:
        found |= {_singular(w.lower()) for w in _LATIN.findall(text) if regex.search(r"[A-Za-z]", w)}
    return found - ENGLISH_STOPWORDS


def _sound_key(latin: str) -> str:
    """A rough spelling-independent key of a Latin word, for matching Hangul transliterations."""
    key = latin.lower()
    for a, b in (
        ("ph", "p"),
        ("au", "o"),
        ("f", "p"),
        ("v", "b"),
        ("x", "ks"),
        ("q", "k"),
        ("z", "j"),
        ("w", "u"),
        ("y", "i"),
    ):
        key = key.replace(a, b)
    key = regex.sub(r"g(?=[ei])", "j", regex.sub(r"c(?=[eiy])", "s", key)).replace("c", "k").replace("r", "l")
    key = regex.sub(r"(.)\1+", r"\1", key)  # doubled letters
    return regex.sub(r"[^a-z]", "", key)


def hangul_sound_key(word: str) -> str:
    """The sound key of a Hangul word via Revised Romanization (화웨이 -> huauei ~ Huawei)."""
    from korean_romanizer.romanizer import Romanizer

    roman = Romanizer(word).romanize()
    # Undo the romanization's own conventions that loanwords do not share.
    roman = regex.sub(r"eu(?![aeiou])", "", roman).replace("eo", "o").replace("ae", "a")
    return _sound_key(roman)


class LatinNames:
    """The Latin words of a corpus by their sound, to recognise Hangul spellings of them.

    A question may write "화웨이" or "바이두" where the documents write "Huawei" or "Baidu".
    """

    def __init__(self, vocabulary: set[str], cutoff: float = 0.8):
        self.vocabulary = vocabulary
        self.cutoff = cutoff
        self.by_key: dict[str, str] = {}
        for word in sorted(vocabulary):
            if regex.fullmatch(r"[a-z][a-z0-9.\-]{2,}", word) and len(key := _sound_key(word)) >= 3:
                self.by_key.setdefault(key, word)
        self._cache: dict[str, str | None] = {}

    def match(self, word: str) -> str | None:
        """The corpus's Latin word that a Hangul word sounds like, if any."""
        if word in self._cache:
            return self._cache[word]
        found = None
        if _HANGUL.search(word) and self.by_key:
            import difflib

            close = difflib.get_close_matches(hangul_sound_key(word), self.by_key, n=1, cutoff=self.cutoff)
            found = self.by_key[close[0]] if close else None
        self._cache[word] = found
        return found

    def normalize(self, terms: list[str]) -> list[str]:
        """Terms with each unknown Hangul spelling of a corpus's Latin word replaced by that word."""
        return [t if t in self.vocabulary else (self.match(t) or t) for t in terms]
