"""Hits -> Answer: pick the sentences, bullets and rows that answer, cite each, or abstain.

Nothing is generated: every statement is a unit of the corpus (a sentence, a bullet, a table
row) with its citation, so no fact can appear that its quote does not hold.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import regex

from aiqa.chunk import Chunk, unit_spans
from aiqa.lang.ko import content_terms, is_korean, language, names
from aiqa.layout import BULLET, is_numbered_heading, locate, plain
from aiqa.retrieve import Hit

_QUESTION_END = regex.compile(r"[?？]\s*[\"'”’)\]]*\s*$")
_ASKS_NUMBER = regex.compile(
    r"얼마|몇\s*(?:개|명|년|퍼센트|%)?|how\s+(?:much|many)|what\s+(?:percent|price)|\bprice\b", regex.I
)
# An amount: a number with a unit, currency or percent (a model name such as "H100" is not one).
# A standalone number ("주 2회", "30%", "$5") is an amount; a code such as "H100", "7nm" or "GPT-3.5"
# is a name.
_QUANTITY = regex.compile(r"(?<![A-Za-z\d.\-])\d[\d,.]*(?![\dA-Za-z])|[$€£¥₩]\s?\d")
# "When" questions need a date or year in the evidence.
_ASKS_TIME = regex.compile(r"언제|몇\s*년도?|몇\s*월|\bwhen\b|\bwhat\s+year\b|\bwhich\s+year\b", regex.I)
_DATE = regex.compile(r"(?<!\d)(?:1[89]|20)\d{2}(?!\d)|\d{1,2}\s*월|\d{1,2}\s*일|작년|올해|내년|지난해|분기")
# A comparison across columns (e.g. US vs China) is best shown as table rows ...
_COMPARES = regex.compile(r"비교|차이|대비|\bvs\.?\b|\bversus\b|\bcompar|\bdiffer", regex.I)
# ... and a request for a whole table (or all of its rows) as that table.
_WHOLE_TABLE = regex.compile(r"표로|표를|항목별|전체|모두|모든|정리|\btable\b|\ball\b|\bevery\b|\boverview\b", regex.I)


@dataclass(frozen=True)
class Citation:
    n: int
    source: str
    section: str
    locator: str
    quote: str
    start: int  # span of the quote in the document text
    end: int
    passage: str  # the whole chunk the quote sits in, for showing it in context

    def as_json(self) -> dict:
        return {
            "n": self.n,
            "source": self.source,
            "section": self.section,
            "locator": self.locator,
            "quote": self.quote,
            "passage": self.passage,
        }


@dataclass(frozen=True)
class Answer:
    question: str
    answer: str
    abstained: bool
    citations: tuple[Citation, ...] = ()
    resolved_question: str = ""
    signals: dict = field(default_factory=dict)
    related: tuple[Hit, ...] = ()  # when abstaining: the closest passages, for reading, not as sources


@dataclass(frozen=True)
class Unit:
    """A candidate statement: one sentence, bullet or table row inside a retrieved chunk."""

    hit: Hit
    start: int
    end: int
    quote: str
    terms: frozenset[str]
    score: float


@dataclass(frozen=True)
class Thresholds:
    """Abstention calibration (bench/calibrate.py prints the dev-set margins these sit in)."""

    min_coverage: float = 0.3  # IDF-weighted share of a Korean question's terms the corpus must hold
    min_dense: float = 0.80  # cosine of question and best passage when keywords cannot help
    min_dense_with_coverage: float = 0.78
    min_latin_coverage: float = 0.5  # a non-Korean question whose own words the evidence holds (names, codes)
    min_evidence_score: float = 0.5  # fused score of the evidence's passage relative to the best passage


def _quote_span(text: str, start: int, end: int) -> tuple[int, int]:
    """Trim whitespace and a leading bullet mark off a span, keeping it a contiguous source span."""
    piece = text[start:end]
    lead = len(piece) - len(piece.lstrip())
    start += lead
    bullet = BULLET.match(text[start:end])
    if bullet:
        start += bullet.end()
    end = start + len(text[start:end].rstrip())
    return start, end


class Composer:
    """Turns ranked hits into a cited answer; shares the retriever's per-index data."""

    def __init__(self, retriever, thresholds: Thresholds | None = None):
        self.retriever = retriever
        self.documents = retriever.index.documents
        self.thresholds = thresholds or Thresholds()
        self.idf = dict(retriever.bm25.idf)
        self.oov_idf = max(self.idf.values(), default=1.0) + 1.0
        self.chunk_terms = [frozenset(content_terms(c.context)) for c in retriever.chunks]
        self.latin_names = retriever.latin_names
        self._statements: dict[int, list[tuple[int, int, frozenset[str]]]] = {}
        self.tables: dict[tuple[str, int], list[Chunk]] = {}
        for chunk in retriever.chunks:
            if chunk.kind == "table_row":
                self.tables.setdefault((chunk.source, chunk.table), []).append(chunk)

    def weight(self, term: str) -> float:
        return max(self.idf.get(term, self.oov_idf), 0.1)

    def coverage(self, question_terms: set[str], evidence: frozenset[str] | set[str]) -> float:
        total = sum(self.weight(t) for t in question_terms)
        if total == 0:
            return 0.0
        return sum(self.weight(t) for t in question_terms if t in evidence) / total

    def statements(self, chunk_id: int) -> list[tuple[int, int, frozenset[str]]]:
        """The citable statements of a chunk with their terms (label terms included); memoised.

        Table headers and numbered headings label what follows, and an open question ("그럼
        대한민국은?") asks rather than answers: none of them is a statement. (A callout used as a
        heading, "✅ 기술은 미국, 체력은 중국", does state something.)
        """
        cached = self._statements.get(chunk_id)
        if cached is not None:
            return cached
        chunk = self.retriever.chunks[chunk_id]
        text = self.documents[chunk.source].text
        label_terms = self.chunk_terms[chunk_id] - content_terms(chunk.text)  # section and headers
        out = []
        for a, b in [] if chunk.kind == "table_header" else unit_spans(text, chunk):
            a, b = _quote_span(text, a, b)
            terms = frozenset(content_terms(text[a:b]))
            if (
                a < b
                and not (_QUESTION_END.search(text[a:b]) and len(terms) < 3)
                and not is_numbered_heading(text[a:b])
            ):
                out.append((a, b, terms | label_terms))
        self._statements[chunk_id] = out
        return out

    def units(self, hits: list[Hit], question_terms: set[str], known: float, wanted: set[str]) -> list[Unit]:
        """Candidate statements of the hits, scored by the hit's rank score and term coverage.

        Coverage counts as far as the question's words occur in the corpus at all (`known`):
        for an English question over Korean text the retrieval score decides. A statement that
        misses the names the question is about (`wanted`) counts for half.
        """
        weight = 0.5 * known
        out = []
        for hit in hits:
            for a, b, terms in self.statements(hit.id):
                score = (1 - weight) * hit.score + weight * self.coverage(question_terms, terms)
                score *= 0.5 + 0.5 * self.name_coverage(wanted, terms)
                out.append(Unit(hit, a, b, self.documents[hit.chunk.source].text[a:b], terms, score))
        out.sort(key=lambda u: -u.score)
        return out

    def name_coverage(self, wanted: set[str], terms: frozenset[str]) -> float:
        """IDF-weighted share of the names that the terms mention, in any spelling (1.0 if no names)."""
        if not wanted:
            return 1.0
        missing = wanted - terms
        return self.coverage(wanted, {n for n in wanted if n not in missing or self.latin_names.match(n) in terms})

    def compose(self, question: str, hits: list[Hit], resolved: str | None = None) -> Answer:
        """Answer `question` from `hits` (best first), or abstain when they do not answer it."""
        resolved = resolved or question
        korean = is_korean(question)  # decides which signals apply
        framing_ko = language(question) == "ko"  # decides the language of the framing words
        q_terms = set(self.latin_names.normalize(sorted(content_terms(resolved))))
        known = self.coverage(q_terms, self.retriever.vocabulary) if q_terms else 0.0
        # Proper nouns of a Korean question: the entities the evidence must be about. Latin words
        # are left out: acronyms such as "AI" name topics more than entities.
        wanted = names(resolved, latin=False) if korean else set()
        units = self.units(hits[:6], q_terms, known, wanted)
        signals = self.signals(resolved, q_terms, known, hits, units, wanted)
        if not units or not self.answerable(signals, korean):
            text = self.abstain_text(framing_ko)
            return Answer(question, text, True, (), resolved, signals, related=tuple(hits[:3]))
        chosen = self.choose(units, q_terms)
        rows = self.table_rows(chosen, resolved, q_terms)
        if rows:
            citations = tuple(
                self.cite(n, c, *_quote_span(self.documents[c.source].text, c.start, c.end))
                for n, c in enumerate(rows, start=1)
            )
            text = self.table_text(rows, framing_ko)
        else:
            citations = tuple(self.cite(n, u.hit.chunk, u.start, u.end) for n, u in enumerate(chosen, start=1))
            text = "\n".join(f"{self.frame(u, q_terms)} [{n}]" for n, u in enumerate(chosen, start=1))
        if not framing_ko:
            text = "From the documents (quoted in their own language):\n\n" + text
        return Answer(question, text, False, citations, resolved, signals)

    def signals(
        self, question: str, q_terms: set[str], known: float, hits: list[Hit], units: list[Unit], wanted: set[str]
    ) -> dict:
        best = units[0] if units else None
        novel = best is not None and bool(
            best.terms - q_terms - self.chunk_terms[best.hit.id].difference(content_terms(best.quote))
        )
        return {
            "dense": round(best.hit.dense, 4) if best else 0.0,
            # How the evidence's passage ranks against the best passage (1.0 when it is the best).
            "evidence_score": round(best.hit.score / hits[0].score, 4) if best and hits[0].score > 0 else 0.0,
            "coverage": round(self.coverage(q_terms, best.terms), 4) if best else 0.0,
            "in_corpus": round(known, 4),
            "novel": novel,
            "asks_number": bool(_ASKS_NUMBER.search(question)),
            "quantity_in_evidence": best is not None and bool(_QUANTITY.search(best.quote)),
            "asks_time": bool(_ASKS_TIME.search(question)),
            "date_in_evidence": best is not None and bool(_DATE.search(best.quote)),
            "unknown_names": sorted(self.unknown_names(question)),
            # Passages about other names ("중국" when the question is about "대한민국") do not answer.
            "names_in_evidence": round(self.name_coverage(wanted, best.terms), 4) if best else 0.0,
        }

    def unknown_names(self, question: str) -> set[str]:
        """Names in a Korean question that the corpus never mentions, in any spelling.

        A question about a company, country or product the documents do not discuss cannot be
        answered from them, however close the passages about other names are.
        """
        if not is_korean(question):
            return set()  # English words of a question over Korean text are mostly unknown anyway
        vocabulary = self.retriever.vocabulary
        return {n for n in names(question) if n not in vocabulary and not self.latin_names.match(n)}

    def answerable(self, s: dict, korean: bool) -> bool:
        t = self.thresholds
        if not s["novel"]:
            return False  # the passage only restates the question
        if s["asks_number"] and not s["quantity_in_evidence"]:
            return False  # "얼마/how much" needs an amount, and the evidence states none
        if s["evidence_score"] < t.min_evidence_score:
            return False  # the best passages hold no statement; what is left ranks far below them
        if s["asks_time"] and not s["date_in_evidence"]:
            return False  # "언제/when" needs a date, and the evidence gives none
        if s["unknown_names"] or s["names_in_evidence"] < 0.5:
            return False
        if korean:
            return s["in_corpus"] >= t.min_coverage and s["dense"] >= t.min_dense_with_coverage
        return s["dense"] >= t.min_dense or (
            s["coverage"] >= t.min_latin_coverage and s["dense"] >= t.min_dense_with_coverage
        )

    def choose(self, units: list[Unit], q_terms: set[str]) -> list[Unit]:
        """The best unit, plus a second only when it is nearly as good and adds something new."""
        chosen = [units[0]]
        for unit in units[1:4]:
            if unit.score < 0.85 * units[0].score or len(chosen) >= 2:
                break
            if any(u.start == unit.start and u.hit.chunk.source == unit.hit.chunk.source for u in chosen):
                continue
            new_terms = unit.terms - q_terms - frozenset().union(*(u.terms for u in chosen))
            if new_terms and self.coverage(q_terms, unit.terms) > 0:
                chosen.append(unit)
        return chosen

    def table_rows(self, chosen: list[Unit], question: str, q_terms: set[str]) -> list[Chunk]:
        """Rows to show as a table: all of the best row's table when the question asks for it,
        the chosen rows when it compares columns (names two headers, or says so); else none."""
        first = chosen[0].hit.chunk
        if first.kind != "table_row":
            return []
        if _WHOLE_TABLE.search(question):
            return self.tables[(first.source, first.table)]
        headers = [h for h, _ in first.cells]
        named = sum(1 for h in headers if content_terms(h) and content_terms(h) <= q_terms)
        if named < 2 and not _COMPARES.search(question):
            return []
        return [u.hit.chunk for u in chosen if (u.hit.chunk.source, u.hit.chunk.table) == (first.source, first.table)]

    def cite(self, n: int, chunk: Chunk, start: int, end: int) -> Citation:
        """A citation whose locator points at the quote itself (its lines and page), not the whole chunk."""
        doc = self.documents[chunk.source]
        locator = chunk.locator if chunk.kind == "table_row" else locate(doc.text, doc.pages, start, end)
        return Citation(n, chunk.source, chunk.section, locator, doc.text[start:end], start, end, chunk.text)

    def frame(self, unit: Unit, q_terms: set[str]) -> str:
        """One statement for a unit; a table row reads as its header: cell pairs, the asked-about
        column first (after "미국의 AI 반도체는?" → "중국은?", China's cell leads)."""
        c = unit.hit.chunk
        if c.kind != "table_row" or not c.cells:
            return plain(unit.quote)
        (first_h, first_v), rest = c.cells[0], list(c.cells[1:])
        rest.sort(key=lambda hv: not (content_terms(hv[0]) and content_terms(hv[0]) <= q_terms))
        return f"**{first_v}** ({first_h}) — " + "; ".join(f"{h}: {v}" for h, v in rest)

    def table_text(self, rows: list[Chunk], korean: bool) -> str:
        """A compact Markdown table of rows from one table, each row with its citation marker."""
        headers = [h for h, _ in rows[0].cells]
        lines = [
            "| " + " | ".join([*headers, "출처" if korean else "Source"]) + " |",
            "|" + "---|" * (len(headers) + 1),
        ]
        for n, row in enumerate(rows, start=1):
            cells = dict(row.cells)
            lines.append("| " + " | ".join([*(cells.get(h, "").replace("|", "/") for h in headers), f"[{n}]"]) + " |")
        return "\n".join(lines)

    def abstain_text(self, korean: bool) -> str:
        # The closest passages travel separately (Answer.related): reading, not sources.
        return "문서에서 답을 찾을 수 없습니다." if korean else "The documents do not answer this."
