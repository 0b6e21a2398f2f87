"""Question cues: what kind of thing a question asks for (an amount, a date, a person) and how answers state it.

General facts of Korean and English question words and of how numbers, dates and units are written,
read as soft features of the answer decision (never as vetoes on their own).
"""

from __future__ import annotations

import regex

ASKS_NUMBER = regex.compile(
    # "얼마나" asks an amount only before a word of size or count ("얼마나 많은", "얼마나 되나"); before
    # a verb it asks how badly or how well ("얼마나 타격을 받나").
    # "몇몇" is "some", no question of how many ("몇몇 주에서 시행되는 법은?").
    r"얼마(?!나)|얼마나\s*(?:많|적|되|늘|줄|크|큰|높|낮|비싸|걸리|차이)|(?<!몇)몇(?!몇)|규모|비율|비중|점유율|금액|액수|가격|"
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
# A question that also asks where ("어디 있고 몇 시까지 해?"): a place may answer it.
ASKS_WHERE = regex.compile(r"어디|어느\s*곳|장소|위치|\bwhere\b", regex.I)
# "who", and which body: a company, an agency, a department or a team is answered by its name
ASKS_WHO = regex.compile(
    r"누구|누가|어느\s*(?:회사|업체|기업|기관|부서|팀)|\bwho\b|\bwhom\b|"
    r"\bwhich\s+(?:company|firm|vendor|supplier|agency|department|team|organi[sz]ation)\b",
    regex.I,
)
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
    # "1일마다" and "1일당" are rates, not days
    r"(?<!\d)(?:1[0-9]|20)\d{2}(?!\d)|\d{1,2}\s*월|\d{1,2}\s*일(?!\s*(?:마다|당))|작년|올해|내년|지난해|분기|세기|년대|"
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
    r"몇\s*(명|개|년|개월|월|일|주|시간|시|분|초|배|건|곳|번|회|차례|대|살|세|권|편|장|층|인치|달러|원|엔|위안|유로|퍼센트|%|"
    r"km|킬로미터|미터|톤)"
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
# ... and a Korean one: "얼마" after a word of pay or cost (수당, 비용, 요금, 숙박비, 보험료), or before a verb of
# paying or being paid ("얼마를 줘?", "얼마까지 받을 수 있어?"), or "얼마에", for how much something sells or
# is bought ("얼마에 팔아?", "얼마에 살 수 있어?"; "얼마에 한 번" asks how often); "얼마나" asks how much of anything.
_ASKS_WON = regex.compile(
    r"(?:수당|비용|요금|가격|금액|돈|급여|임금|월급|연봉|보수|수수료|[가-힣]료|[가-힣]비)(?![율중용])[^?？]*얼마(?!나)|"
    r"얼마(?:를|씩|까지)?\s*(?:줘|주[나는어고면지]|줍|받[아나는을으고]|지급|드려|드리)|얼마에(?!\s*한\s*번)"
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
    "주": "주(?!년)|weeks?",
    "인치": '인치|inch(?:es)?|"',
}
# The nouns that say "the number of" a counter's things ("장수", "횟수", "인원"): a bare number after one answers
# "몇 장", "몇 번", "몇 명" ("| `--copies N` | 라벨마다 출력할 장수 (최대 3) |", "재시도 횟수: 5").
_COUNT_NOUN = {
    **dict.fromkeys(("번", "회", "차례"), "횟수|회수"),  # the counters of _SAME_COUNTER's "번"
    "명": "인원수?|명수",
    "장": "장수|매수",
    "일": "일수",
    "건": "건수",
    "대": "대수",
}
# "몇 시" asks a time of day: "15시", "오후 3시", "15:00" (a date or a deadline in days does not answer it).
_CLOCK = r"\d{1,2}\s?시(?!간)|(?<![\d:])\d{1,2}:\d{2}(?![\d:])"


def _asked(question: str) -> tuple[str, str] | None:
    """The unit a question counts or prices in and its spellings (a regex): ("명", "명|인"), ("money", …);
    None when it asks for none. "개" counts anything and "시" asks a time of day: their spellings are ""."""
    found = _COUNTER.search(question)
    if not found:
        return ("money", _MONEY) if _ASKS_MONEY.search(question) or _ASKS_WON.search(question) else None
    unit = {"퍼센트": "%"}.get(found.group(1), found.group(1))
    if unit in ("개", "시"):
        return unit, ""
    return unit, _CURRENCY.get(unit) or _SAME_COUNTER.get(unit) or regex.escape(unit)


def header_unit(question: str):
    """The pattern of the asked unit in a table's column header ("금액(원)", "Fee (KRW)", "인원(명)"), whose
    cells then hold bare numbers; None when the question asks no unit, or one no header holds (a time of day)."""
    asked = _asked(question)
    if not asked or not asked[1]:
        return None
    unit = rf"(?<![가-힣A-Za-z])(?:[만억조천백]\s*)?(?:{asked[1]})(?![가-힣A-Za-z])"
    noun = _COUNT_NOUN.get(asked[0])
    return regex.compile(rf"{unit}|{noun}" if noun else unit, regex.I)


def asked_unit(question: str):
    """The pattern a number in the answer must carry when a question counts in a unit ("몇 달러") or asks
    for a sum of money, else None."""
    asked = _asked(question)
    if asked is None or asked[0] == "개":  # "개" counts anything: "12석", "3대" and "5곳" answer "몇 개"
        return None
    unit, words = asked
    if unit == "시":
        return regex.compile(_CLOCK)
    if unit == "money":
        return regex.compile(rf"\d[\d,.]*\s*(?:[만억조천백]\s*)?(?:{_MONEY})|(?:{_MONEY})\s?\d", regex.I)
    # "1인당", "2명당" count per person: a rate, not how many
    after = rf"\d[\d,.]*\s*(?:[만억조천백]\s*)?(?:{words})(?!당)"
    # Only a currency may stand before its number ("$ 5", "USD 20"); "뒤인 2028년" holds no count of people.
    currency = _CURRENCY.get(unit)
    if currency:
        after = rf"{after}|(?<![가-힣A-Za-z])(?:{currency})\s?\d"
    if noun := _COUNT_NOUN.get(unit):  # "장수 (최대 3)", "재시도 횟수는 기본 3"
        after = rf"{after}|(?:{noun})[^\d.\n]{{0,20}}\d"
    return regex.compile(after, regex.I)


# A question that asks for a reason or a purpose, and a section that gives one ("제안이유", "1. 목적").
ASKS_REASON = regex.compile(
    r"왜|이유|까닭|목적|배경|취지|사유|어째서|무엇\s*때문|뭐\s*때문|\bwhy\b|\breason|\bpurpose\b|\bwhat\s+for\b",
    regex.I,
)
# A sentence that gives a reason: "…깨지기 때문입니다.", "…빠지지 않게 하기 위해서이다.", "그 이유는 …".
STATES_REASON = regex.compile(
    r"때문|위해서|위함|위한\s*것|(?:이유|까닭)(?:는|은)|므로|\bbecause\b|\bso that\b|\bin order to\b|\bto avoid\b",
    regex.I,
)
REASON_SECTION = regex.compile(
    r"이유|목적|배경|취지|사유|필요성|\breason|\bpurpose\b|\bbackground\b|\brationale\b", regex.I
)
# Who wrote a document ("이 보고서 누가 작성했어?", "Who prepared the minutes?"), not who must write one
# ("누가 작성해야 해?"): its header names the writer in a field of its own.
ASKS_AUTHOR = regex.compile(
    r"(?:작성|썼|쓴|써\s*온|만들었|만든|올렸|올린|기안|정리)(?!\S*\s*(?:해야|하여야|돼야|되어야))|"
    r"\b(?:wrote|written|prepared|drafted|authored)\b|\bauthor\b",
    regex.I,
)
# A header field that names a document's writer: "작성: 인사팀", "기안자: …", "| 작성 | 한지우 |", "Author: …".
AUTHOR_FIELD = regex.compile(
    r"^\W*(?:작성자?|기안자?|작성\s*(?:부서|팀)|보고자|정리|author|prepared\s+by|written\s+by)\s*[:：|]", regex.I
)
# A question that asks what or how without asking for a number, a time or a person: "뭐 받을 수 있어?",
# "어떻게 신청해?"; over a list its answer is the list (or the steps), not one item of it.
ASKS_OPEN = regex.compile(r"뭐|뭘|무엇|무슨|어떤|어떻게|what|how(?!\s+(?:many|much|long|often|soon))", regex.I)
# A question that asks how to do something: "어떻게 해?", "연결하려면 뭐 쳐야 돼?", "how do I …".
ASKS_HOW = regex.compile(r"어떻게|방법|[가-힣]려면|명령어?|\bhow\s+(?:do|can|to|should)\b|\bcommand\b", regex.I)
# A question that asks for code itself: "코드를 어떻게 짜?", "명령어 알려줘", "a script that …" (not "바코드").
ASKS_CODE = regex.compile(r"(?<![가-힣])(?:코드|명령어|스크립트|커맨드)|\b(?:code|command|snippet|script)s?\b", regex.I)
# A question that asks for several things: "어떤 것들", "뭐뭐", "누구누구", "종류", "모두", "what are the …s".
ASKS_LIST = regex.compile(
    # (전부 and 모두 as words: "버전부터" holds no 전부)
    r"것들|뭐뭐|무엇무엇|누구누구|어디어디|종류|항목|목록|(?<![가-힣])(?:모두|전부)|각각|[가-힣]들(?=[은는이가을를에의로])|"
    r"\blist\b|\bwhich\s+\w+s\b|\bwhat\s+(?:are|were)\s+the\b|\ball\s+the\b",
    regex.I,
)
# A part of a document named by its number: an article ("제12조", "12조") or a step ("3단계").
NAMED_PART = regex.compile(r"(?:제\s*)?(\d+)\s*(조(?:\s*의\s*\d+)?|단계|장|절)")


def named_parts(text: str) -> frozenset[str]:
    """The parts a text names by number, spelled alike: "제12조", "3단계"."""
    return frozenset(f"{int(m.group(1))}{''.join(m.group(2).split())}" for m in NAMED_PART.finditer(text))


# A part of a year or a round a text names: a half, a quarter, the Nth meeting or term ("하반기", "3분기",
# "제6차"), not a count ("2차례"). Years are left out: an article about one year's games tells of the next.
PERIOD = regex.compile(r"(?<![\d.,/])(\d+)\s*(분기|차(?![이례원선]))|([상하])\s*반기")


def periods(text: str) -> frozenset[tuple[str, str]]:
    """The parts of a year and rounds a text names, as (kind, value): ("반기", "하"), ("분기", "3"), ("차", "6")."""
    return frozenset(
        (m.group(2), str(int(m.group(1)))) if m.group(1) else ("반기", m.group(3)) for m in PERIOD.finditer(text)
    )


def other_period(asked: frozenset[tuple[str, str]], title: str) -> bool:
    """Whether a document's title names another period or round of a kind the question names ("6차 회의" asked
    of "제5차 회의록", "하반기" of "2028년 상반기 … 안내"): then the document is about another one."""
    named = periods(title)
    return any(any(k == kind for k, _ in named) and (kind, value) not in named for kind, value in asked)


# A question that asks which part of a document says something: "몇 조에 나와?", "어느 조항이야?".
ASKS_PART = regex.compile(
    r"몇\s*(?:조|항|장|절|단계|번째\s*단계)|어느\s*(?:조|조항|항목|단계|장|절|부분)|무슨\s*조|조항은|"
    r"\bwhich\s+(?:article|section|clause|step|part)\b",
    regex.I,
)
# A question that asks in which version or release something came ("몇 버전부터 돼?", "which version added …"),
# and a heading that names one ("### v1.4.0 (2031-04-22)", "2.3.0 릴리스"): a changelog's item sits under it.
ASKS_VERSION = regex.compile(
    r"(?:몇|어느|무슨|어떤)\s*(?:버전|릴리스|릴리즈)|버전(?:은|이|이요)?\s*(?:몇|뭐)|"
    r"\b(?:which|what)\s+(?:version|release)\b|\bsince\s+(?:which|what|when)\b",
    regex.I,
)
VERSION_LABEL = regex.compile(r"(?<![\w.])[vV]?\d+\.\d+(?:\.\d+)?(?![\w.])")
# Who answers a who-question in an organisation: a team or body ("인사팀", "영업2팀", "SI사업팀", "인사위원회"), a role
# ("본부장", "대표이사", "릴리스 관리자", "복리후생 담당"), besides a person's name.
WHO_ANSWER = regex.compile(
    r"(?<!\w)[A-Za-z0-9]*[가-힣][가-힣A-Za-z0-9]*(?:팀|부서|본부|센터|위원회|사무국)(?=[은는이가을를의께에와과도만]?(?![가-힣]))|"
    r"(?:팀장|부장|본부장|부서장|실장|원장|사장|회장|위원장|센터장|대표이사|이사|관리자|책임자|담당자|담당|직원|임직원|근로자|사원)"
    r"(?=[은는이가을를의께에와과도만]?(?![가-힣]))|"
    r"\b(?:manager|director|head|team|department|officer|committee|administrator|employee|staff)s?\b",
    regex.I,
)


def roles(text: str) -> frozenset[str]:
    """The teams, bodies and roles a text names (see WHO_ANSWER)."""
    return frozenset(m.group(0).lower() for m in WHO_ANSWER.finditer(text))
