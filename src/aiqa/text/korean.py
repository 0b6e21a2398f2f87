"""Keyword tokens for Korean and English text: Kiwi content morphemes plus Latin words and numbers."""

from __future__ import annotations

import threading
from collections.abc import Collection
from dataclasses import dataclass
from functools import lru_cache

import regex

from aiqa.text.cues import named_parts
from aiqa.text.english import ENGLISH_STOPWORDS, singular

# Content-bearing parts of speech: nouns, foreign words, numbers, hanja, verb/adjective stems, roots
# (pronouns such as 누구/무엇 and adverbs such as 왜/언제 ask; they carry no topic).
_CONTENT_TAGS = {"NNG", "NNP", "NR", "SL", "SN", "SH", "VV", "VA", "XR"}
# Stems that Kiwi tags as content but that ask or point rather than name a topic: 어떤/어떻게 (어떻),
# 어떠한 (어떠), 어떡하다, 얼마, 며칠, and the pro-adjectives 그렇/이렇/저렇 ("그런", "이러한").
_PRO_FORMS = frozenset({"어떻", "어떠", "어떡하", "얼마", "며칠", "그렇", "이렇", "저렇"})
# Latin/number tokens kept whole, so "GPT-3.5", "A100" and "910B" match as written.
_LATIN = regex.compile(r"[A-Za-z0-9]+(?:[.\-][A-Za-z0-9]+)*")
_HANGUL = regex.compile(r"\p{Hangul}")
_SYLLABLES = regex.compile(r"[\uac00-\ud7a3]{2,}")
_LOCK = threading.Lock()
# The parts of a noun phrase that the additive particle 도 ("also", "even") marks: nouns, foreign words and
# their prefixes and suffixes ("재검사 비용도", "윈도우 PC에서도"); a case particle may sit between ("메일로도").
_FOCUS_TAGS = {"NNG", "NNP", "SL", "XPN", "XSN"}


@lru_cache(maxsize=1)
def _kiwi():
    from kiwipiepy import Kiwi

    # Without the typo and the multi-word dictionaries (proper nouns of several words, which then
    # come as their words): 323 MB resident instead of 519 (bench/results/kiwi_memory.json).
    return Kiwi(load_typo_dict=False, load_multi_dict=False)


def is_korean(text: str) -> bool:
    """Tell whether a text is mainly Korean (more Hangul than Latin letters)."""
    hangul = len(_HANGUL.findall(text))
    latin = sum(len(m) for m in regex.findall(r"[A-Za-z]+", text))
    return hangul > 0 and hangul >= latin / 3


# How much of a document's opening decides its language (a long English appendix does not make it English).
LANGUAGE_SAMPLE_CHARS = 20_000


def document_is_korean(text: str) -> bool:
    """Whether a document is mainly Korean, read from its opening."""
    return is_korean(text[:LANGUAGE_SAMPLE_CHARS])


def _analyse(text: str):
    with _LOCK:  # Kiwi instances are not documented as thread-safe; the web app has several workers.
        return _kiwi().tokenize(text)


def space(texts: list[str]) -> list[str]:
    """Kiwi's spacing model over each text, keeping the spaces already there (the re-flow's joins)."""
    with _LOCK:
        return list(_kiwi().space(texts, reset_whitespace=False))


# Morphemes that never start a word: particles, endings, suffixes and the copula.
_BOUND_TAGS = ("J", "E", "XS", "VCP", "VCN")


def cuts_word(left: str, right: str) -> bool:
    """Whether a line break between `left` and `right` falls inside a word, as Kiwi reads them joined: inside
    one morpheme ("서" + "버에서"), or before one that cannot start a word ("명령으" + "로 한다"). A proper noun
    across it is Kiwi's guess at an unknown string ("수집기설정은"), no evidence."""
    at = len(left)
    for tok in _analyse(left + right):
        if tok.start < at < tok.start + tok.len:
            return tok.tag != "NNP"
        if tok.start >= at:
            return tok.start == at and tok.tag.startswith(_BOUND_TAGS)
    return False


def language(text: str) -> str:
    """The language to answer in: "en" for an English sentence, else "ko" (the default).

    A bare name or keyword ("CANN", "Huawei Ascend") is not English prose: it gets Korean framing.
    """
    if is_korean(text):
        return "ko"
    words = [w.lower() for w in regex.findall(r"[A-Za-z]+", text)]
    english = sum(1 for w in words if w in ENGLISH_STOPWORDS)
    return "en" if english >= 1 and len(words) >= 3 else "ko"


@dataclass(frozen=True)
class Analysis:
    """Everything the pipeline needs of one text, from a single Kiwi pass."""

    text: str
    tokens: tuple[str, ...]  # keyword tokens, phrase pairs included (what BM25 scores)
    terms: frozenset[str]  # distinct keyword tokens without phrase pairs (what coverage counts)
    names: frozenset[str]  # Korean proper nouns (NNP), lowercase
    latin: frozenset[str]  # Latin words and codes (singular, lowercase), stop words left out
    korean: bool
    language: str  # "ko" or "en": the language to answer in
    stems: frozenset[str] = frozenset()  # verb and adjective stems ("다니" of 다니면): never a foreign name
    also: tuple[str, ...] = ()  # the words of a phrase the particle 도 marks, as written (see `also_words`)
    bare: bool = False  # Korean nouns with no particle, verb or ending: a topic line (see `is_bare`)


def analyse(text: str) -> Analysis:
    """Analyse a text once: its keyword tokens, content terms, names and language."""
    morphemes = _analyse(text)
    out: list[str] = []
    run: list[str] = []
    for tok in morphemes:
        tag = tok.tag.split("-")[0]  # "VV-R", "VA-I": regular and irregular stems are stems too
        if tag in _CONTENT_TAGS and tag not in ("SL", "SN") and tok.form not in _PRO_FORMS:
            form = tok.form.lower()
            out.append(form)
            if run:
                out.append(f"{run[-1]}_{form}")
            run.append(form)
        elif tag.startswith("S"):
            run = []  # punctuation, symbols and foreign words break a phrase
    latin = []
    for word in _LATIN.findall(text):
        low = singular(word.lower())
        if low not in ENGLISH_STOPWORDS:
            out.append(low)
            if regex.search(r"[a-z]", low):
                latin.append(low)
            # Also the alphabetic and numeric parts, so "A100" matches "A-100" and "a100" alike.
            parts = regex.findall(r"[a-z]+|[0-9]+(?:\.[0-9]+)?", low)
            if len(parts) > 1:
                out.extend(p for p in parts if p not in ENGLISH_STOPWORDS and len(p) > 1)
    # An article or step named by number ("제12조", "3단계") is one token, so that a question naming it
    # finds the part whose label names it rather than every "12" of the corpus.
    out.extend(sorted(named_parts(text)))
    korean = is_korean(text)
    return Analysis(
        text=text,
        tokens=tuple(out),
        terms=frozenset(t for t in out if "_" not in t),
        names=frozenset(tok.form.lower() for tok in morphemes if tok.tag == "NNP"),
        latin=frozenset(latin),
        stems=frozenset(tok.form.lower() for tok in morphemes if tok.tag.split("-")[0] in ("VV", "VA")),
        korean=korean,
        language=language(text),
        also=also_words(text, morphemes) if korean else (),
        bare=korean and is_bare(morphemes),
    )


def is_bare(morphemes) -> bool:
    """Whether Korean words are nouns only, joined at most by 의, 및 or 과: a line that names a topic and says
    nothing of it ("상반기 승강기 고장 신고 현황", "제13조(하도급의 제한)"). A sentence, and a bullet of the
    clipped style, has a particle or an ending ("중국은 국산 칩 개발에 집중", "…로 인정되는 직원")."""
    tags = [tok.tag.split("-")[0] for tok in morphemes]
    if not any(t.startswith("NN") for t in tags):
        return False
    return not any(t[0] in "EV" or t in ("XSV", "XSA") or (t[0] == "J" and t not in ("JKG", "JC")) for t in tags)


def also_words(text: str, morphemes) -> tuple[str, ...]:
    """The words of each noun phrase that the additive particle 도 marks in a Korean text, as written.

    "재검사 비용도 회사가 내줘?" asks whether the documents' rule covers 재검사 비용 too; "윈도우 PC에서도
    돼?" whether what they say holds on 윈도우 PC as well. The phrase is the run of nouns (with their
    prefixes and suffixes) right before 도, past a case particle ("메일로도"). Indefinite nouns
    ("아무것도"), counts ("한 번도", "not even once") and the noun a clause describes ("책 사는 비용도", "서는
    날 저녁 식비도": 날) are not part of it.
    """
    out: list[str] = []
    for n, tok in enumerate(morphemes):
        if tok.form != "도" or tok.tag != "JX":
            continue
        j = n - 1
        while j >= 0 and morphemes[j].tag.startswith("JK"):
            j -= 1
        end = j
        while j >= 0 and morphemes[j].tag.split("-")[0] in _FOCUS_TAGS:
            j -= 1
        if end <= j or (j >= 0 and morphemes[j].tag in ("MM", "NR", "SN")):
            continue  # "한 해도", "두 명도": a count, "not even one", names no phrase
        words = text[morphemes[j + 1].start : morphemes[end].start + morphemes[end].len].split()
        if j >= 0 and morphemes[j].tag == "ETM":
            # the word a clause describes is asked about by the clause, in any words ("책 사는 비용도"); the
            # words after it still name the thing ("당직 서는 날 저녁 식비도")
            words = words[1:]
        out.extend(w for w in words if not w.startswith("아무"))
    return tuple(dict.fromkeys(out))


def tokens(text: str, *, phrases: bool = False) -> list[str]:
    """Return lowercase keyword tokens: Korean content morphemes and whole Latin/number words.

    With `phrases`, also pairs of neighbouring Korean content morphemes ("자원_확보"), so a
    keyword index rewards a question that uses the document's own phrase.
    """
    found = analyse(text).tokens
    return list(found) if phrases else [t for t in found if "_" not in t]


def content_terms(text: str) -> set[str]:
    """The distinct keyword tokens of a text: what "covering the question" is measured on."""
    return set(analyse(text).terms)


def names(text: str, *, latin: bool = True) -> set[str]:
    """Proper nouns (and, with `latin`, Latin words) of a text, lowercase: what a question is about."""
    a = analyse(text)
    return set(a.names | a.latin) - ENGLISH_STOPWORDS if latin else set(a.names) - ENGLISH_STOPWORDS


def topic_particle(word: str) -> str:
    """The topic particle that follows a word: 은 after a final consonant, else 는."""
    last = word.rstrip()[-1:] if word.strip() else ""
    return "은" if "가" <= last <= "힣" and (ord(last) - 0xAC00) % 28 else "는"


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

    def __init__(self, vocabulary: Collection[str], cutoff: float = 0.8):
        self.vocabulary = vocabulary
        self.cutoff = cutoff
        self.by_key: dict[str, str] = {}
        for word in sorted(vocabulary):
            if regex.fullmatch(r"[a-z][a-z0-9.\-]{2,}", word) and len(key := _sound_key(word)) >= 3:
                self.by_key.setdefault(key, word)
        # Per instance and bounded: every distinct unknown word of every question lands here.
        self.match = lru_cache(maxsize=4096)(self._match)

    def _match(self, word: str) -> str | None:
        """The corpus's Latin word that a Hangul word sounds like, if any."""
        # Only whole words of Hangul syllables sound like a name: Kiwi may hand over a phrase pair
        # ("많_김정남") or a bare jamo ("ᆭ"), which the romaniser cannot read.
        if not (_SYLLABLES.fullmatch(word) and self.by_key):
            return None
        import difflib

        try:
            key = hangul_sound_key(word)
        except (KeyError, IndexError, ValueError):  # rare syllables (괋, 뷇) the romaniser has no table entry for
            return None
        close = difflib.get_close_matches(key, self.by_key, n=1, cutoff=self.cutoff)
        # A spelling of a name is about as long as the name: "정리" (jongli) is not "only" (onli), though four
        # of their letters line up.
        if not close or abs(len(close[0]) - len(key)) > max(1, len(key) // 4):
            return None
        return self.by_key[close[0]]

    def normalize(self, terms: list[str], stems: Collection[str] = ()) -> list[str]:
        """Terms with each unknown Hangul spelling of a corpus's Latin word replaced by that word; `stems`
        (verbs and adjectives: "다니" of 다니면 sounds like "day") are words of the sentence, never names."""
        return [t if t in self.vocabulary or t in stems else (self.match(t) or t) for t in terms]
