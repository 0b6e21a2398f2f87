"""English facts the keyword side needs: function words that carry no topic, and plural folding."""

from __future__ import annotations

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


def singular(word: str) -> str:
    """A light English plural folding ("gpus" -> "gpu", "policies" -> "policy")."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")) and word.isalpha():
        return word[:-1]
    return word
