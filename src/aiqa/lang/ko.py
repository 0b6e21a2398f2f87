"""Keyword tokens for Korean and English text: Kiwi content morphemes plus Latin words and numbers."""

from __future__ import annotations

import threading
from collections.abc import Collection
from dataclasses import dataclass
from functools import lru_cache

import regex

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
        low = _singular(word.lower())
        if low not in ENGLISH_STOPWORDS:
            out.append(low)
            if regex.search(r"[a-z]", low):
                latin.append(low)
            # Also the alphabetic and numeric parts, so "A100" matches "A-100" and "a100" alike.
            parts = regex.findall(r"[a-z]+|[0-9]+(?:\.[0-9]+)?", low)
            if len(parts) > 1:
                out.extend(p for p in parts if p not in ENGLISH_STOPWORDS and len(p) > 1)
    korean = is_korean(text)
    return Analysis(
        text=text,
        tokens=tuple(out),
        terms=frozenset(t for t in out if "_" not in t),
        names=frozenset(tok.form.lower() for tok in morphemes if tok.tag == "NNP"),
        latin=frozenset(latin),
        korean=korean,
        language=language(text),
    )


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
        return self.by_key[close[0]] if close else None

    def normalize(self, terms: list[str]) -> list[str]:
        """Terms with each unknown Hangul spelling of a corpus's Latin word replaced by that word."""
        return [t if t in self.vocabulary else (self.match(t) or t) for t in terms]


# Question cues: general facts of Korean and English question words, read as soft features of
# the answer decision (never as vetoes on their own).
ASKS_NUMBER = regex.compile(
    # "얼마나" asks an amount only before a word of size or count ("얼마나 많은", "얼마나 되나"); before
    # a verb it asks how badly or how well ("얼마나 타격을 받나").
    r"얼마(?!나)|얼마나\s*(?:많|적|되|늘|줄|크|큰|높|낮|비싸|걸리|차이)|몇|규모|비율|비중|점유율|금액|액수|가격|"
    r"수치|건수|개수|인원|예산|매출|연봉|급여|임금|\S\s수(?:는|가|를|도)?\s*[?？]?\s*$|"
    # a noun of rate or sum ending the question: 자급률, 점유율, 매출액, 투자액
    r"[률율액](?=[은는이가을를의]?\s*[?？]?\s*$)|"
    r"how\s+(?:much|many)|what\s+(?:percent|share|price|number)|\bprice\b|\bshare\b|\bpercentage\b|\bamount\b",
    regex.I,
)
ASKS_TIME = regex.compile(
    r"언제|몇\s*년도?|몇\s*월|며칠|시기|시점|기한|마감|날짜|일정|"
    r"\bwhen\b|\b(?:what|which)\s+(?:year|month|day|date|time)\b|\bdeadline\b|\bby\s+when\b|\bhow\s+soon\b",
    regex.I,
)
ASKS_WHO = regex.compile(r"누구|누가|\bwho\b|\bwhom\b", regex.I)
# An amount: a number with a unit, currency or percent; a code such as "H100" or "7nm" is a name, and
# a year ("2025년", "1990년대") is a date, not an amount.
QUANTITY = regex.compile(
    r"(?<![A-Za-z\d.\-])(?!(?:1[0-9]|20)\d{2}\s*년)\d[\d,.]*(?![\dA-Za-z])|[$€£¥₩]\s?\d|"
    r"[일이삼사오육칠팔구십백천만억조]+\s?(?:명|개|원|달러|배)|"
    # native Korean numerals before a counter ("세 명", "두 가지"), and English number words
    r"(?<![가-힣])(?:한|두|세|네|다섯|여섯|일곱|여덟|아홉|열|스무)\s?(?:명|개|번|가지|곳|권|달|시간|차례)|"
    r"\b(?:two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|hundred|thousand|"
    r"million|billion|dozen|half)\b",
    regex.I,
)
_MONTHS = (  # "may" only beside a number or after a preposition: as a verb it is no date
    r"jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|"
    r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?"
)
_WEEKDAYS = r"(?:mon|tues|wednes|thurs|fri|satur|sun)day"
DATE = regex.compile(
    r"(?<!\d)(?:1[0-9]|20)\d{2}(?!\d)|\d{1,2}\s*월|\d{1,2}\s*일|작년|올해|내년|지난해|분기|세기|년대|"
    # weekdays and clock times ("월요일", "오후 3시", "10:00"), English months and weekdays ("in June")
    # a time limit counted from an event ("5영업일 전까지", "10일 이내", "within 30 days")
    r"\d+\s*(?:영업일|근무일|일|주일?|개월|달|년|시간)\s*(?:전|후|뒤|이내|안에|내에|만에|까지)|"
    r"\bwithin\s+(?:\d+|[a-z]+)\s+(?:working\s+|business\s+)?(?:days?|weeks?|months?|years?|hours?)\b|"
    r"[월화수목금토일]요일|(?:오전|오후|새벽|밤)\s?\d{1,2}\s?시|\d{1,2}\s?시\s?\d{1,2}\s?분|(?<![\d:])\d{1,2}:\d{2}(?![\d:])|"
    rf"\b(?:{_MONTHS})\b(?!-)|\bmay\s+\d|\d\s+may\b|\b(?:in|of|since|until)\s+may\b|\b{_WEEKDAYS}s?\b|\b(?:yesterday|today|tomorrow|quarterly|annually)\b",
    regex.I,
)
# Counter words: "몇 명", "몇 달러", "몇 %": the unit an answer's number must carry.
_COUNTER = regex.compile(
    r"몇\s*(명|개|년|개월|월|일|시간|분|초|배|건|곳|번|회|차례|대|살|세|권|편|장|달러|원|엔|위안|유로|퍼센트|%|km|킬로미터|미터|톤)"
)
_CURRENCY = {
    "달러": r"달러|\$|usd",
    "원": r"원|₩|krw",
    "엔": r"엔|¥|jpy",
    "위안": r"위안|cny|rmb",
    "유로": r"유로|€|eur",
}


# An English question asking for a sum of money ("How much does it cost?", "What is the fee?"): its
# answer's number carries a currency.
_ASKS_MONEY = regex.compile(
    r"\bhow\s+much\b[^?]*\b(?:costs?|pay|paid|charged?|spen[dt]|earn(?:ed)?|make|made|sell|sold|worth|money|revenue|"
    r"budget|price|fee)\b|\bwhat\s+(?:is|was|are|were)\s+the\s+(?:price|cost|fees?|salary|budget)\b|\bfor\s+how\s+much\b",
    regex.I,
)
_MONEY = "|".join(_CURRENCY.values()) + r"|파운드|dollars?|euros?|pounds?|yen|yuan|won|gbp"


# Counters that count the same thing ("몇 번" is answered by "2회"), and the spellings of a percent.
_SAME_COUNTER = {
    "번": "번|회|차례",
    "차례": "번|회|차례",
    "회": "번|회|차례",
    "명": "명|인",
    "개월": "개월|달",
    "살": "살|세",
    "세": "살|세",
    "%": "%|퍼센트|percent",
}


def asked_unit(question: str):
    """The pattern a number in the answer must carry when a question counts in a unit ("몇 달러") or asks
    for a sum of money, else None."""
    found = _COUNTER.search(question)
    if not found:
        if _ASKS_MONEY.search(question):
            return regex.compile(rf"\d[\d,.]*\s*(?:[만억조천백]\s*)?(?:{_MONEY})|(?:{_MONEY})\s?\d", regex.I)
        return None
    unit = found.group(1)
    unit = {"퍼센트": "%"}.get(unit, unit)
    words = _CURRENCY.get(unit) or _SAME_COUNTER.get(unit) or regex.escape(unit)
    return regex.compile(rf"\d[\d,.]*\s*(?:[만억조천백]\s*)?(?:{words})|(?:{words})\s?\d", regex.I)
