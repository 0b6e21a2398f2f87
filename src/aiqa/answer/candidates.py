"""Candidate statements inside the retrieved passages, with the features that pick the answer.

A statement is one sentence, bullet or table row of a chunk. Each candidate is described by
general features (how well the passage ranked, how much of the question the statement and its
surroundings cover, weighted by how rare each word is, whether it holds the kind of thing asked
for); a small fitted model (decision.py) turns them into the chance that it holds the answer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import regex

from aiqa.records import Chunk, Hit
from aiqa.retrieve import CorpusStats
from aiqa.text.columns import unspaced
from aiqa.text.cues import (
    ASKS_AUTHOR,
    ASKS_CODE,
    ASKS_HOW,
    ASKS_LIST,
    ASKS_NUMBER,
    ASKS_OPEN,
    ASKS_REASON,
    ASKS_TIME,
    ASKS_VERSION,
    ASKS_WHERE,
    ASKS_WHO,
    AUTHOR_FIELD,
    DATE,
    QUANTITY,
    REASON_SECTION,
    VERSION_LABEL,
    asked_unit,
    header_unit,
    named_parts,
    periods,
    roles,
)
from aiqa.text.korean import Analysis, analyse, document_is_korean

_ENGLISH_NAME = regex.compile(r"(?<=\w[^.?!]*\s)[A-Z][\w\-.]*|\b[A-Z]{2,}\w*|\b\w*\d\w*\b")
# A table cell that is a figure: a signed number with its unit ("-18.7%", "3,120", "12건", "1.5억원", "△3"),
# or a dash for none.
FIGURE_CELL = regex.compile(r"[-+−△▲▼]?\s*\d[\d,.]*\s*(?:%p?|\p{L}{1,3})?|[-−–—]")
# How many of the best passages are searched for the answering statement.
DEPTH = 5
# A question in another language than its passages (see crosses): the best passages are reordered by how
# well their statements align with it (aiqa.answer.align), this many of them, mixing alignment and
# retrieval score (each min-max scaled over those passages) with this weight on alignment. Fitted on the
# English KorQuAD questions of the fit half by scripts/fit_rerank.py.
RERANK_DEPTH = 6
RERANK_WEIGHT = 0.65


@dataclass(frozen=True)
class Question:
    """A question as the answer layer reads it: its analysis, in the corpus's spellings, and its cues."""

    analysis: Analysis
    terms: frozenset[str]  # content terms, Hangul spellings of the corpus's Latin words replaced
    phrases: frozenset[str]  # neighbouring-morpheme pairs ("자원_확보")
    names: frozenset[str]  # proper nouns and Latin names, in the corpus's spelling
    number: bool  # asks for an amount
    unit: Any  # the pattern of a number in the asked unit ("몇 달러"), or None
    time: bool  # asks for a date
    who: bool  # asks for a person or organisation
    where: bool = False  # asks for a place too (cues.ASKS_WHERE)
    header_unit: Any = None  # the asked unit in a table's column header ("금액(원)"), or None (cues.header_unit)
    author: bool = False  # asks who wrote a document (cues.ASKS_AUTHOR)
    reason: bool = False  # asks why, or what for
    many: bool = False  # asks for several things (a list)
    open: bool = False  # asks what or how, and for no number, time or person (cues.ASKS_OPEN)
    how: bool = False  # asks how to do something (cues.ASKS_HOW)
    code: bool = False  # asks for code or a command (cues.ASKS_CODE): a code block is the kind asked
    version: bool = False  # asks in which version something came (cues.ASKS_VERSION)
    parts: frozenset[str] = frozenset()  # the articles or steps it names by number ("12조", "3단계")
    roles: frozenset[str] = frozenset()  # the teams and roles it names ("팀장", "인사팀")
    also: tuple[str, ...] = ()  # what it asks about with 도, "also" ("윈도우 PC에서도"): korean.also_words
    periods: frozenset[tuple[str, str]] = frozenset()  # the years, halves, quarters, rounds it names (cues.periods)

    @classmethod
    def read(cls, analysis: Analysis, stats: CorpusStats) -> Question:
        text = analysis.text
        # In a Korean question a Latin word is a name or a code (Huawei, GPT-4); in an English one only
        # capitalised words past the first, acronyms and codes are.
        latin = analysis.latin if analysis.korean else {w.lower() for w in _ENGLISH_NAME.findall(text)}
        return cls(
            analysis=analysis,
            terms=frozenset(stats.normalize(sorted(analysis.terms), analysis.stems)),
            phrases=frozenset(t for t in analysis.tokens if "_" in t),
            names=frozenset(stats.normalize(sorted(analysis.names | (latin & analysis.latin)))),
            number=bool(ASKS_NUMBER.search(text)),
            unit=asked_unit(text),
            header_unit=header_unit(text),
            time=bool(ASKS_TIME.search(text)),
            who=bool(ASKS_WHO.search(text)),
            where=bool(ASKS_WHERE.search(text)),
            author=bool(ASKS_WHO.search(text) and ASKS_AUTHOR.search(text)),
            reason=bool(ASKS_REASON.search(text)),
            many=bool(ASKS_LIST.search(text)),
            how=bool(ASKS_HOW.search(text)),
            code=bool(ASKS_CODE.search(text)),
            version=bool(ASKS_VERSION.search(text)),
            open=bool(ASKS_OPEN.search(text))
            and not (ASKS_NUMBER.search(text) or ASKS_TIME.search(text) or ASKS_WHO.search(text)),
            parts=named_parts(text),
            roles=roles(text),
            also=analysis.also,
            periods=periods(text),
        )


@dataclass(frozen=True)
class Statement:
    start: int  # span in the document text
    end: int
    terms: frozenset[str]
    tokens: frozenset[str]  # terms and phrase pairs
    names: frozenset[str]
    quantity: bool
    date: bool
    text: str = ""
    roles: frozenset[str] = frozenset()  # the teams, bodies and roles it names (aiqa.text.cues.roles)
    bare: bool = False  # a topic line: nouns and no predicate (aiqa.text.korean.is_bare)


@dataclass(frozen=True)
class Candidate:
    """One statement of a retrieved chunk, with its features and (once scored) its chance to answer."""

    hit: Hit
    statement: Statement
    quote: str
    features: dict[str, float]
    score: float = 0.0

    @property
    def start(self) -> int:
        return self.statement.start

    @property
    def end(self) -> int:
        return self.statement.end


def label_of(context: str) -> str:
    """The "title > section" label in front of a unit's context ("[[공지] 행사 안내 > ■ 개요] 일시 : …"), whose
    own parts may hold brackets; "" when it has none."""
    depth = 0
    for i, ch in enumerate(context):
        depth += (ch == "[") - (ch == "]")
        if depth == 0:
            return context[1:i] if i else ""
    return ""


# Chunks whose analysed statements are kept between questions (the oldest go first).
MEMO_CHUNKS = 20_000


class Statements:
    """The citable statements of each chunk, analysed once and memoised."""

    def __init__(
        self, chunks: list[Chunk], texts: dict[str, str], stats: CorpusStats, korean: dict[str, bool] | None = None
    ):
        self.chunks = chunks
        self.texts = texts
        self.stats = stats
        self._memo: dict[int, tuple[list[Statement], frozenset[str]]] = {}
        self._titles: dict[str, frozenset[str]] = {}
        self._headings: dict[str, frozenset[str]] = {}
        # A document's title: its title line, or the first part of its labelled units' "[title > section]"
        # (headings carry no label).
        self._title_of: dict[str, str] = {}
        for c in chunks:
            if c.source in self._title_of:
                continue
            if c.kind == "title":  # a document's own title line
                self._title_of[c.source] = c.context.split("\n", 1)[0].strip()
            elif c.context.startswith("[") and c.kind != "heading":
                self._title_of[c.source] = label_of(c.context).split(" > ")[0]
        self._korean: dict[str, bool] = dict(korean or {})  # document -> mainly Korean (as retrieval read it)

    def title(self, source: str) -> str:
        """A document's title as its labels name it ("" when its units carry no label)."""
        return self._title_of.get(source, "")

    def title_terms(self, chunk: Chunk) -> frozenset[str]:
        """The words of the title of a chunk's document, as its labels name it (read once per document)."""
        found = self._titles.get(chunk.source)
        if found is None:
            found = self._titles[chunk.source] = analyse(self._title_of.get(chunk.source, "")).terms
        return found

    def heading_terms(self, chunk: Chunk) -> frozenset[str]:
        """The words of the heading a chunk sits under, the last part of its section (read once per heading)."""
        heading = chunk.section.split(" > ")[-1]
        found = self._headings.get(heading)
        if found is None:
            if len(self._headings) >= MEMO_CHUNKS:
                self._headings.pop(next(iter(self._headings)))
            found = self._headings[heading] = (
                frozenset(self.stats.normalize(analyse(heading).terms)) if heading else frozenset()
            )
        return found

    def korean(self, source: str) -> bool:
        """Whether a document is mainly Korean (read from its opening, once)."""
        found = self._korean.get(source)
        if found is None:
            found = self._korean[source] = document_is_korean(self.texts[source])
        return found

    def of(self, chunk_id: int) -> tuple[list[Statement], frozenset[str]]:
        """The statements of a chunk (see Chunk.statements) and the terms of its labels (section, headers)."""
        cached = self._memo.get(chunk_id)
        if cached is not None:
            return cached
        chunk = self.chunks[chunk_id]
        text = self.texts[chunk.source]
        out = []
        for a, b in chunk.statements:
            piece = text[a:b]
            analysis = analyse(unspaced(piece))  # a letter-spaced cell ("숙    직") is read as its word
            out.append(
                Statement(
                    a,
                    b,
                    analysis.terms,
                    frozenset(analysis.tokens),
                    frozenset(self.stats.normalize(sorted(analysis.names | analysis.latin))),
                    bool(QUANTITY.search(piece)),
                    bool(DATE.search(piece)),
                    piece,
                    roles(piece),
                    analysis.bare,
                )
            )
        # A label is any word of the unit that no statement of it says: its section path and headers, and a
        # heading inside its own text ("### E210: 헬스체크 실패" above the sentences that explain the error).
        label_terms = self.stats.terms_of(chunk_id) - frozenset().union(*(s.terms for s in out))
        if len(self._memo) >= MEMO_CHUNKS:  # a long-running server over a large index: keep memory bounded
            self._memo.pop(next(iter(self._memo)))
        self._memo[chunk_id] = (out, label_terms)
        return out, label_terms


SELECTION_FEATURES = (
    "relative_score",  # the passage's fused score over the best passage's
    "dense",  # cosine of question and passage
    "statement_dense",  # cosine of question and the statement itself
    "statement_dense_gap",  # how far below the best statement's cosine among the candidates
    "inverse_rank",
    "coverage",  # IDF-weighted share of the question's terms in the statement
    "coverage_context",  # ... in the statement, its neighbours and its labels
    "coverage_before",  # ... in the statement before it (a question often words the lead-in)
    "coverage_after",  # ... in the statement after it
    "coverage_chunk",  # ... anywhere in the passage
    "phrases",  # share of the question's morpheme pairs in the statement
    "novelty",  # IDF-weighted share of the statement's terms the question does not have
    "names",  # share of the question's names in the statement or its labels
    "type_match",  # asks for an amount/date/person and the statement has one
    "type_miss",  # asks for one and the statement has none
    "length",  # log of the statement's number of terms
    "align",  # a question in another language than its passages (see crosses): its token alignment with the
    # statement (aiqa.answer.align); 0 for a question in the passages' language
    "align_gap",  # how far below the best alignment among the candidates
    "part_named",  # the question names an article or step by number and the statement sits in it
    "reason_section",  # the question asks why and the statement sits in a section that gives reasons
    "list_item",  # the question asks for several things and the statement is an item of a list
)


def candidates(question: Question, hits: list[Hit], statements: Statements, aligner=None) -> list[Candidate]:
    """Every statement of the best passages, with its selection features.

    `aligner` (an aiqa.answer.align.Aligner) scores the statements for a question in another language;
    without one, or when its embedder has no token states, the statements' own cosines stand in.
    """
    stats = statements.stats
    out: list[Candidate] = []
    if not hits:
        return out
    best = hits[0].score if hits[0].score > 0 else 1.0
    q = question.terms
    units = [u for h in hits[:DEPTH] for u in h.passage_units]
    best_statement = max((d for h in units for d in h.statement_dense), default=0.0)
    for hit in units:
        found, label_terms = statements.of(hit.id)
        chunk_cover = stats.coverage(q, stats.terms_of(hit.id))
        text = statements.texts[hit.chunk.source]
        versioned = question.version and bool(version_heading(hit.chunk))
        for i, s in enumerate(found):
            before = found[i - 1].terms if i > 0 else frozenset()
            after = found[i + 1].terms if i + 1 < len(found) else frozenset()
            around = s.terms | label_terms | before | after
            own_weight = sum(stats.weight(t) for t in s.terms)
            new_weight = sum(stats.weight(t) for t in s.terms - q)
            asks = question.number or question.time or question.who or question.code or question.version
            # "who" is answered by a name, team or role the question lacks
            new_names = bool(s.names - question.names) or bool(s.roles - question.roles)
            amount = s.quantity if question.unit is None else bool(question.unit.search(s.text))
            # a table row's bare number under a header that names the unit ("| 숙직 | 60,000 |" under "금액(원)")
            amount = amount or (
                question.header_unit is not None
                and any(question.header_unit.search(h) and QUANTITY.search(v) for h, v in hit.chunk.cells)
            )
            has = (question.number and amount) or (question.time and s.date) or (question.who and new_names)
            # a question that also asks where may be answered by the place: an address, a floor or a room
            # number ("본사 4층", "별관 지하 1층")
            has = has or (question.where and s.quantity) or (question.code and hit.chunk.kind == "code")
            # a version is asked, not a number: a changelog's item under the version it came in ("### v1.4.0" >
            # "- npm 저장소 지원"), or a sentence that names one ("Python 3.10 이상"); not a package's version
            # in a command ("requests==2.31.0")
            if question.version:
                has = versioned or (hit.chunk.kind != "code" and bool(VERSION_LABEL.search(s.text)))
            own_dense = hit.statement_dense[i] if i < len(hit.statement_dense) else hit.dense
            features = {
                "relative_score": hit.score / best,
                "dense": hit.dense,
                "statement_dense": own_dense,
                "statement_dense_gap": best_statement - own_dense,
                "inverse_rank": 1.0 / hit.rank,
                "coverage": stats.coverage(q, s.terms),
                "coverage_context": stats.coverage(q, around),
                "coverage_before": stats.coverage(q, before),
                "coverage_after": stats.coverage(q, after),
                "coverage_chunk": chunk_cover,
                "phrases": len(question.phrases & s.tokens) / len(question.phrases) if question.phrases else 0.0,
                "novelty": new_weight / own_weight if own_weight else 0.0,
                "names": stats.coverage(question.names, s.terms | label_terms | s.names) if question.names else 1.0,
                "type_match": float(bool(asks and has)),
                "type_miss": float(bool(asks and not has)),
                "length": math.log1p(len(s.terms)),
                "part_named": float(bool(question.parts & named_parts(hit.chunk.section))),
                "reason_section": float(question.reason and bool(REASON_SECTION.search(hit.chunk.section))),
                "list_item": float(question.many and hit.chunk.kind in ("bullet", "table_row")),
            }
            out.append(Candidate(hit, s, text[s.start : s.end], features))
    foreign = crosses(question, hits, statements)
    for c in out:
        c.features["foreign"] = float(foreign)  # read by the answer decision, not a selection feature
        # A why-question about what the whole document proposes is answered by its reason section
        # (read by `ordered`, not a fitted feature: the fit halves hold too few such questions).
        c.features["document_reason"] = float(document_reason(question, c.hit.chunk, statements))
        c.features["author_field"] = float(author_field(question, c, hits, statements))
        c.features["reason_tier"] = float(reason_tier(question, c, foreign))
    return _aligned(question, out, aligner, foreign)


# A question is about its document as a whole when the document's title holds this IDF-weighted
# share of its words ("재택근무 제도를 도입하려는 이유" of "재택근무 제도 도입안").
ABOUT_DOCUMENT = 0.5
# A statement that says only that something follows or is attached, or that signs: never an answer alone.
# It stops at a colon, or says it does something "as follows" ("…을 아래와 같이 실시합니다.", "…는 다음과
# 같다."); it lists an attachment by its copies ("상담센터 배치도 1부.  끝."); it is a signature block with
# its seal marks ("대표이사 ○ ○ ○ (인)").
OPENS_ONLY = regex.compile(
    r"[:：]\s*$|(?:아래|다음)[와과]\s*같[이다]|\bas follows\b|\bthe following\W*$|"
    r"\d+\s*부\s*\.?\s*(?:끝\s*\.?)?\s*$|\((?:인|서명|signature|seal)\)",
    regex.I,
)


# A label and its value on one line ("점검 기간 : 4월 3일", "| 금액 | 5만원 |"): a statement, however bare its words.
FIELD_VALUE = regex.compile(r"\S\s*[:：|]\s*\S")


def names_only(candidate: Candidate) -> bool:
    """Whether a candidate lacks the kind of thing its question asks for and only names a topic: an item of
    a list of topics (an agenda), nouns with no predicate ("상반기 승강기 고장 신고 현황" asked "상반기에 고장
    신고 몇 건 들어왔어?"). It shares the question's words and states nothing; the statements it names do. A
    heading is left where it scores, and so is an item that gives a label its value ("○ 점검 기간 : 4월 3일 ~
    4월 14일" asked "점검은 몇 시에 시작해?"): it says what it says, and giving way there would let a figure
    of another section answer."""
    return (
        candidate.statement.bare
        and bool(candidate.features.get("type_miss"))
        and candidate.hit.chunk.kind == "bullet"
        and not FIELD_VALUE.search(candidate.quote)
    )


def ordered(found: list[Candidate], selection) -> list[Candidate]:
    """Candidates scored by the selection model (an aiqa.answer.decision.Model), most likely first.

    Structure overrules the model where it is certain: statements of the part a question names come
    first, then, for a why-question about what the document itself proposes, those of its reason
    section ("제안이유"), and for a question who wrote the document, its writer's field ("작성: 인사팀");
    a statement that only opens what follows ("…은 다음과 같다:"), and a bare topic line without what the
    question asks for (`names_only`), come after the others, and for a why-question, so do the rows of
    figures and the sentences about another subject (`reason_tier`)."""
    scored = [replace(c, score=selection.probability(c.features)) for c in found]
    scored.sort(
        key=lambda c: (
            -c.features["part_named"],
            -c.features.get("document_reason", 0.0),
            -c.features.get("author_field", 0.0),
            bool(OPENS_ONLY.search(c.quote)) or names_only(c),
            c.features.get("reason_tier", 0.0),
            -c.score,
        )
    )
    return scored


def reason_tier(question: Question, candidate: Candidate, foreign: bool = False) -> int:
    """For a why-question, 1 for a table row with no column for reasons and for a sentence that leaves out a
    name or team the question names, 0 for the others (which come first); 0 for any other question.

    Cells of figures state how much, not why ("| SI사업팀 | 4,870 | -18.7% |" is no reason its revenue
    fell; a "사유" or "목적" column is), so a sentence about the same subject comes before the row. A
    sentence about another team does not: it would give that team's reason. A question in another language
    than the passages (`foreign`, see crosses) spells its names in its own language: only the rows count.
    """
    if not question.reason:
        return 0
    chunk = candidate.hit.chunk
    if chunk.kind == "table_row":
        return int(states_figures(chunk.cells) and not any(REASON_SECTION.search(h) for h, _ in chunk.cells))
    if foreign:
        return 0
    where = "".join(f"{candidate.quote} {chunk.section}".lower().split())
    return int(not all("".join(n.split()) in where for n in question.names | question.roles))


def version_heading(chunk: Chunk) -> str:
    """The innermost heading of a chunk's section that names a version ("v1.4.0 (2031-04-22)"), or ""."""
    return next((p for p in reversed(chunk.section.split(" > ")) if VERSION_LABEL.search(p)), "")


def states_figures(cells: tuple[tuple[str, str], ...]) -> bool:
    """Whether a table row's cells after its label are all figures ("4,870", "-18.7%", "12건"): a row of
    words ("| 전략 일관성 | 정부교체 영향 큼 | 장기 계획 지속 가능 |") can state a reason, a row of figures cannot."""
    values = [value for _, value in cells[1:] if value.strip()]
    return bool(values) and all(FIGURE_CELL.fullmatch(value.strip()) for value in values)


def answered_by_structure(candidate: Candidate) -> bool:
    """Whether structure alone makes the candidate the answer, whatever the answer decision says: the
    writer's field of the document a who-wrote question names."""
    return bool(candidate.features.get("author_field"))


def author_field(question: Question, candidate: Candidate, hits: list[Hit], statements: Statements) -> bool:
    """Whether a question asks who wrote a document and the candidate is that document's writer's field
    ("작성: 응급의학과"): the document of the best passage, whose title shares a word with the question
    besides the asking ones ("응급실 상반기 보고서 누가 작성했어?" over "2028년 상반기 … 보고")."""
    if not (question.author and candidate.hit.chunk.source == hits[0].chunk.source):
        return False
    if not AUTHOR_FIELD.search(candidate.quote):
        return False
    # a word, not a one-syllable suffix: "편성안" and "개선안" share only "안"
    named = {t for t in question.terms if len(t) > 1 and not (ASKS_AUTHOR.search(t) or ASKS_WHO.search(t))}
    return bool(named & statements.title_terms(candidate.hit.chunk))


def document_reason(question: Question, chunk: Chunk, statements: Statements) -> bool:
    """Whether a why-question is about what the chunk's document proposes as a whole (its title holds
    most of the question's words) and the chunk sits in the document's reason section ("제안이유")."""
    return (
        question.reason
        and bool(REASON_SECTION.search(chunk.section.split(" > ")[-1]))
        and statements.stats.coverage(question.terms, statements.title_terms(chunk)) >= ABOUT_DOCUMENT
    )


def aligned_text(chunk: Chunk, quote: str) -> str:
    """What alignment reads of a statement: a table row with each cell under its header ("미국: 민간 중심"),
    since the header often holds what the question asks about; any other statement as it is."""
    if chunk.kind == "table_row" and chunk.cells:
        return " | ".join(f"{header}: {cell}" for header, cell in chunk.cells)
    return quote


def _aligned(question: Question, found: list[Candidate], aligner, foreign: bool) -> list[Candidate]:
    """Set the alignment features of the candidates (see SELECTION_FEATURES)."""
    scores = None
    if found and foreign:
        texts = [aligned_text(c.hit.chunk, c.quote) for c in found]
        scores = aligner.scores(question.analysis.text, texts) if aligner else None
        if scores is None:
            scores = [c.features["statement_dense"] for c in found]
    top = max(scores) if scores else 0.0
    for i, c in enumerate(found):
        c.features["align"] = scores[i] if scores else 0.0
        c.features["align_gap"] = top - scores[i] if scores else 0.0
    return found


def crosses(question: Question, hits: list[Hit], statements: Statements) -> bool:
    """Whether the question is in another language than the document of its best passage (English over a
    Korean report, or Korean over an English handbook): then it shares few words with it and the answer
    layer reads meaning instead. The document's language, not the passage's: a table row of English
    names in a Korean report is still Korean text."""
    return bool(hits) and question.analysis.korean != statements.korean(hits[0].chunk.source)


def reranked(question: Question, hits: list[Hit], statements: Statements, aligner) -> list[Hit]:
    """The hits with the best RERANK_DEPTH reordered by token alignment, for a question in another
    language than its passages.

    Keyword search is blind to a question that shares no word with the documents, and sentence
    vectors across languages are noisy; alignment finds the passage that holds the question's words
    in translation. Questions in the passages' language, and embedders without token states, keep
    retrieval's order. The reordered passages get scores in the range of their retrieval scores, so
    later ones stay below.
    """
    if aligner is None or not aligner.available or len(hits) < 2 or not crosses(question, hits, statements):
        return hits
    top = hits[:RERANK_DEPTH]
    fused = np.array([h.score for h in top])
    mixed = rerank_scores(fused, passage_alignment(question, top, statements, aligner), RERANK_WEIGHT)
    low, high = float(fused.min()), float(fused.max())
    order = sorted(range(len(top)), key=lambda j: -mixed[j])
    out = [replace(top[j], score=low + float(mixed[j]) * (high - low), rank=r) for r, j in enumerate(order, start=1)]
    return out + hits[len(top) :]


def passage_alignment(question: Question, hits: list[Hit], statements: Statements, aligner) -> np.ndarray:
    """Each hit's best token alignment of one of its statements (its text when it has none)."""
    texts: list[str] = []
    owners: list[int] = []
    for j, hit in enumerate(hits):
        for unit in hit.passage_units:
            found, _ = statements.of(unit.id)
            doc = statements.texts[unit.chunk.source]
            pieces = [aligned_text(unit.chunk, doc[s.start : s.end]) for s in found] or [unit.chunk.text]
            texts.extend(pieces)
            owners.extend([j] * len(pieces))
    best = np.full(len(hits), -np.inf)
    np.maximum.at(best, owners, aligner.scores(question.analysis.text, texts))
    return best


def rerank_scores(fused: np.ndarray, alignment: np.ndarray, weight: float) -> np.ndarray:
    """Retrieval scores and alignments, each scaled to 0..1 over the passages, mixed with `weight` on alignment."""
    return (1 - weight) * _scaled(fused) + weight * _scaled(alignment)


def _scaled(values: np.ndarray) -> np.ndarray:
    low, high = float(values.min()), float(values.max())
    return (values - low) / (high - low) if high > low else np.ones_like(values)
