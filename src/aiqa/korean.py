"""Keyword tokens for Korean and English text: Kiwi content morphemes plus Latin words and numbers."""

from __future__ import annotations

import threading
from functools import lru_cache

import regex

# Content-bearing parts of speech: nouns, foreign words, numbers, hanja, verb/adjective stems, roots.
_CONTENT_TAGS = {"NNG", "NNP", "NR", "SL", "SN", "SH", "VV", "VA", "XR", "MAG", "NP"}
# Latin/number tokens kept whole, so "GPT-3.5", "A100" and "910B" match as written.
_LATIN = regex.compile(r"[A-Za-z0-9]+(?:[.\-][A-Za-z0-9]+)*")
_HANGUL = regex.compile(r"\p{Hangul}")
_LOCK = threading.Lock()

# English function words: they carry no topic, so they count neither for BM25 nor coverage.
ENGLISH_STOPWORDS = frozenset(
    """a an the and or but if of to in on at by for with from as is are was were be been being do does did
    done have has had what which who whom whose when where why how that this these those it its they them
    their there here than then so such not no can could should would will shall may might must about into
    over under between against during before after above below up down out off again further once all any
    both each few more most other some own same too very just also i you he she we me my your our his her
    us tell show give list explain describe""".split()
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


def tokens(text: str) -> list[str]:
    """Return lowercase keyword tokens: Korean content morphemes and whole Latin/number words."""
    out: list[str] = []
    with _LOCK:  # Kiwi instances are not documented as thread-safe; the web app has several workers.
        analysed = _kiwi().tokenize(text)
    for tok in analysed:
        if tok.tag in _CONTENT_TAGS and tok.tag != "SL" and tok.tag != "SN":
            out.append(tok.form.lower())
    for word in _LATIN.findall(text):
        low = word.lower()
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
