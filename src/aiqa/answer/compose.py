"""Hits -> Answer: find the statements that answer, decide whether they do, cite each, or abstain.

Nothing is generated: every statement is a unit of the corpus (a sentence, a bullet, a table
row) with its citation, so no fact can appear that its quote does not hold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from itertools import pairwise

import regex

from aiqa.answer.align import Aligner
from aiqa.answer.candidates import (
    Candidate,
    Question,
    Statement,
    Statements,
    answered_by_structure,
    candidates,
    document_reason,
    ordered,
    reranked,
)
from aiqa.answer.decision import Decision, answer_features, load_decision
from aiqa.answer.present import ABSTAIN, cite, present, present_span
from aiqa.chunk import quote_span
from aiqa.records import Answer, Chunk, Hit
from aiqa.retrieve import Retriever
from aiqa.text.cues import REASON_SECTION, STATES_REASON, named_parts, other_period, periods, roles
from aiqa.text.layout import LEADS_IN

# A second statement joins the answer when its chance to hold the answer is at least this share of the
# best's: on the calibration questions that lifts answers holding the gold span by 4 points at 1.3
# statements an answer on average (scripts/fit_decision.py).
SECOND_RATIO = 0.4
# A sentence that announces what follows it: a colon at its end, or a word that points below.
ANNOUNCES = regex.compile(r"[:：]\s*$|아래|다음과\s*같|\bbelow\b|\bfollowing\b|\bas follows\b", regex.I)
# An answer shaped as a span (a reason, a list, an article) holds at most this much of its section.
SPAN_STATEMENTS = 8
# A section with this many items is a list: a what- or how-question answered by one item gets the list.
LIST_ITEMS = 3
# ... unless a statement of another section is at least this share as likely as that item.
LIST_MARGIN = 0.5
SPAN_CHARS = 700


def names_also(asked: Question, chosen: list[Candidate]) -> bool:
    """Whether a chosen statement names what a question asks about with 도 ("also"): "재검사 비용도 회사가
    내줘?" is answered by a statement about 재검사 비용, not by "기본 검진 비용은 회사가 부담" beside it,
    and "윈도우 PC에서도 돼?" by one that names 윈도우 PC. Read in the statement, its unit and its labels,
    spaces aside; a question in another language than its passages cannot be held to its own words."""
    if not asked.also or any(c.features.get("foreign") for c in chosen):
        return True
    for c in chosen:
        seen = unspaced_fold(f"{c.quote} {c.hit.chunk.context}")
        if all(unspaced_fold(word) in seen for word in asked.also):
            return True
    return False


def unspaced_fold(text: str) -> str:
    return "".join(text.split()).casefold()


class Composer:
    """Turns ranked hits into a cited answer; built once per index version."""

    def __init__(self, retriever: Retriever, decision: Decision | None = None):
        self.stats = retriever.stats
        self.documents = retriever.index.documents
        texts = {s: d.text for s, d in self.documents.items()}
        self.statements = Statements(retriever.chunks, texts, self.stats, retriever.centres.of_source)
        self.decision = decision or load_decision()
        self.aligner = Aligner(retriever.embedder)
        self.tables: dict[tuple[str, int], list[Chunk]] = {}
        # The unit after each chunk in its document (chunks are stored in document order, by source).
        self.following: dict[tuple[str, int], Chunk] = {
            (a.source, a.start): b for a, b in pairwise(retriever.chunks) if a.source == b.source
        }
        for chunk in retriever.chunks:
            if chunk.kind == "table_row":
                self.tables.setdefault((chunk.source, chunk.table), []).append(chunk)
        # Each chunk's run: the consecutive chunks of its section, by id (a span may reach past a passage).
        self.chunks = retriever.chunks
        self.run_of: dict[int, range] = {}
        start = 0
        for i in range(1, len(self.chunks) + 1):
            if i == len(self.chunks) or (self.chunks[i].source, self.chunks[i].section) != (
                self.chunks[start].source,
                self.chunks[start].section,
            ):
                self.run_of.update(dict.fromkeys(range(start, i), range(start, i)))
                start = i

    def rerank(self, question: Question, hits: list[Hit]) -> list[Hit]:
        """The hits in the order the answer layer reads them (see candidates.reranked); a question that
        names an article or step ("제12조", "3단계") reads the passages that sit in it first, and a
        why-question about what a document proposes reads its reason section first."""
        hits = reranked(question, hits, self.statements, self.aligner)
        if not (question.parts or question.reason):
            return hits
        inside = [
            h
            for h in hits
            if any(
                question.parts & named_parts(u.chunk.section) or document_reason(question, u.chunk, self.statements)
                for u in h.passage_units
            )
        ]
        if not inside or inside[0] is hits[0]:
            return hits
        first = inside + [h for h in hits if h not in inside]
        return [replace(h, rank=r) for r, h in enumerate(first, start=1)]

    def wanted(self, question: Question) -> Callable[[Chunk], bool] | None:
        """The units a question asks for by structure, for retrieval to fetch though they score low: those
        of the article or step it names, and for a why-question about a whole document, its reason
        section (see `rerank`); None for any other question."""
        if not (question.parts or question.reason):
            return None
        return lambda chunk: (
            bool(question.parts & named_parts(chunk.section)) or document_reason(question, chunk, self.statements)
        )

    def ranked(self, question: Question, hits: list[Hit]) -> list[Candidate]:
        """The candidate statements of the hits, most likely to hold the answer first (candidates.ordered)."""
        return ordered(candidates(question, hits, self.statements, self.aligner), self.decision.selection)

    def judge(self, question: Question, hits: list[Hit]) -> tuple[list[Candidate], dict[str, float], float]:
        """Rank the candidates and tell how likely the documents answer the question (0 with none)."""
        ranked = self.ranked(question, hits)
        if not ranked:
            return ranked, {}, 0.0
        features = answer_features(question, ranked[0], hits, self.stats, ranked)
        return ranked, features, self.decision.answer.probability(features)

    def compose(self, question: str, asked: Question, hits: list[Hit], language: str) -> Answer:
        """Answer `question` from `hits` (best first), or abstain when they do not answer it.

        `asked` is the question as retrieval read it (a follow-up with its topic carried over);
        `language` is that of the question's own words, the answer's language.
        """
        analysis = asked.analysis
        ranked, features, probability = self.judge(asked, hits)
        signals = {**{k: round(v, 4) for k, v in features.items()}, "probability": round(probability, 4)}
        # The writer's field of the document a question names answers who wrote it, however few words it shares.
        certain = bool(ranked) and answered_by_structure(ranked[0])

        def refuse(**why: float) -> Answer:
            return Answer(question, ABSTAIN[language], True, (), analysis.text, signals | why, related=tuple(hits[:3]))

        if not ranked or (probability < self.decision.answer.threshold and not certain):
            return refuse()
        chosen = [ranked[0]] if certain else self.choose(ranked)
        if not certain and not names_also(asked, chosen):
            return refuse(also_unstated=1.0)
        if not certain and self.another_period(asked, ranked[0]):
            return refuse(other_period=1.0)
        span = self.span(asked, ranked[0], chosen)
        framed = replace(asked, analysis=replace(analysis, language=language))
        if span:
            chosen = span
            text, citations = present_span(span, framed, self.documents, self.statements.korean)
        else:
            # a why-question answered by a bare rule ("…에 넣지 마세요.") also gets the sentence after it in its unit
            after = self.reason_after(asked, ranked[0], self.section_statements(ranked[0]), marked=False)
            if after is not None and all(c.start != after.start for c in chosen):
                chosen = [chosen[0], after, *chosen[1:]]
            # a who-question answered by a step whose heading names who does it ("【2단계】 신고 (담당 : 간호사)")
            heading = self.role_heading(asked, ranked[0])
            if heading is not None and all(c.start != heading.start for c in chosen):
                chosen = [heading, *chosen]
            text, citations = present(chosen, framed, self.documents, self.tables, self.statements.korean)
        # the first chosen sentence that points at the code below it (or, asked how, is followed by it)
        shown = next((code for c in chosen if (code := self.announced(c, asked)) is not None), None)
        if shown is not None:  # show and cite the code too
            doc = self.documents[shown.source]
            n = len(citations) + 1
            citations = (*citations, cite(n, shown, doc, *quote_span(doc.text, shown.start, shown.end)))
            text = f"{text}\n\n{citations[-1].quote}\n[{n}]"
        return Answer(question, text, False, citations, analysis.text, signals)

    def announced(self, chosen: Candidate, asked: Question) -> Chunk | None:
        """The code block that a chosen statement announces ("아래 명령을 실행합니다.", "Run the following:"),
        when the statement ends its chunk, or that follows its unit when the question asks how to do
        something: the unit right after it in its document and section."""
        chunk = chosen.hit.chunk
        following = self.following.get((chunk.source, chunk.start))
        if following is None or following.kind != "code" or following.section != chunk.section:
            return None
        if asked.how:
            return following  # the steps' command, whichever sentence of the steps answered
        if chunk.text[chosen.end - chunk.start :].strip() or not ANNOUNCES.search(chosen.quote):
            return None
        return following

    def span(self, asked: Question, best: Candidate, chosen: list[Candidate]) -> list[Candidate] | None:
        """The statements of the best one's section that answer together, or None for a one-statement answer.

        A question that names an article or step gets that part; one that asks why, answered from a
        section that gives reasons ("제안이유", "1. 목적"), gets the section; one that asks for several
        things, answered by an item of a list or the sentence that opens one, gets the list with its
        opening sentence, and so does one that asks what or how (no number, time or person) answered by
        an item of a list. Consecutive statements of one section, within a bound.
        """
        chunk = best.hit.chunk
        item = chunk.kind in ("bullet", "article") or bool(LEADS_IN.search(best.quote))
        ordered = self.section_statements(best)
        reasons = bool(asked.reason and REASON_SECTION.search(chunk.section.split(" > ")[-1]))
        because = None if reasons else self.reason_after(asked, best, ordered)
        if because is not None:
            return [best, because]
        # (not when a second statement from elsewhere is nearly as likely: then the list is one guess of two)
        listed = (
            chunk.kind == "bullet"
            and sum(c.hit.chunk.kind == "bullet" for c in ordered) >= LIST_ITEMS
            # a sentence elsewhere that only announces what follows ("…을 아래와 같이 실시합니다.") is no rival
            and all(
                c.hit.chunk.section == chunk.section or c.score < LIST_MARGIN * best.score or LEADS_IN.search(c.quote)
                for c in chosen
            )
        )
        if not (
            (asked.parts and asked.parts & named_parts(chunk.section))
            or reasons
            or (asked.many and item)
            or (asked.open and listed)
            or self.headed(asked, best)
        ):
            return None
        at = next(i for i, c in enumerate(ordered) if c.start == best.start)
        window: list[Candidate] = []
        for c in ordered[0 if at < SPAN_STATEMENTS else at - 1 :]:
            if len(window) >= SPAN_STATEMENTS or sum(len(x.quote) for x in window) + len(c.quote) > SPAN_CHARS:
                break
            window.append(c)
        return window if len(window) > 1 and any(c.start == best.start for c in window) else None

    def headed(self, asked: Question, best: Candidate) -> bool:
        """Whether a why- or how-question names what the best statement's heading names and no word of it is the
        statement's own ("E210 에러는 왜 나?" over "### E210: 헬스체크 실패" and the sentences below it): every
        sentence of the section then matches alike, and the section, in its order, is the answer."""
        if not (asked.reason or asked.how) or best.features.get("coverage", 0.0) > 0 or best.hit.chunk.kind == "code":
            return False  # (a code block asked for is shown as itself, see `announced`)
        return bool(asked.terms & self.statements.heading_terms(best.hit.chunk))

    @staticmethod
    def reason_after(
        asked: Question, best: Candidate, ordered: list[Candidate], marked: bool = True
    ) -> Candidate | None:
        """For a why-question whose best statement restates what it asks about but gives no reason ("잠금 파일을
        `rm`으로 직접 지우면 안 됩니다."), the sentence right after it in its unit when that one gives the
        reason ("…미러 색인이 깨지기 때문입니다."); with `marked` False, whatever it says: a reason is often
        given without a word that says so ("앱 파일은 누구나 풀어 볼 수 있어 비밀값이 드러납니다."). Else None."""
        if not asked.reason or STATES_REASON.search(best.quote):
            return None
        at = next((i for i, c in enumerate(ordered) if c.start == best.start), None)
        after = ordered[at + 1] if at is not None and at + 1 < len(ordered) else None
        if after is None or after.hit.chunk is not best.hit.chunk:
            return None
        return after if not marked or STATES_REASON.search(after.quote) else None

    def another_period(self, asked: Question, best: Candidate) -> bool:
        """Whether the best statement's document is about another period or round than the question names ("6차
        회의" asked of "제5차 회의록", "하반기" of a "상반기" report) and the statement, its labels and column
        headers do not name the asked one either (a report of 2027 may give 2026's figures beside its own)."""
        if not asked.periods or not other_period(asked.periods, self.statements.title(best.hit.chunk.source)):
            return False
        return not asked.periods <= periods(f"{best.quote} {best.hit.chunk.context}")

    def role_heading(self, asked: Question, best: Candidate) -> Candidate | None:
        """For a who-question whose best statement names nobody ("전산 화면에 증상과 사진을 올린다."), the first line
        of its section's heading when that names who does it ("【2단계】 고장 신고 (담당 : 사용 부서 책임간호사)");
        else None."""
        run = self.run_of.get(best.hit.id)
        if not asked.who or best.statement.roles - asked.roles or run is None or run.start == best.hit.id:
            return None
        head = self.chunks[run.start]
        line = head.text.split("\n", 1)[0].rstrip()
        if head.kind != "heading" or not roles(line) - asked.roles:
            return None
        return self.shown(best, run.start, head.start, head.start + len(line))

    def section_statements(self, best: Candidate) -> list[Candidate]:
        """The statements of the best one's section, in document order: those of its passage as ranked, and
        those of the section's chunks beyond the passage (a long reason section spans two passages)."""
        run = self.run_of.get(best.hit.id, range(best.hit.id, best.hit.id + 1))
        out = [self.shown(best, i, a, b) for i in run for a, b in self.chunks[i].statements]
        out.sort(key=lambda c: c.start)
        return [c for n, c in enumerate(out) if n == 0 or c.start >= out[n - 1].end]  # no overlaps

    def shown(self, best: Candidate, chunk_id: int, start: int, end: int) -> Candidate:
        """A span of a chunk near the best statement as a candidate to show, not scored: no analysis needed."""
        text = self.statements.texts[best.hit.chunk.source][start:end]
        hit = replace(best.hit, chunk=self.chunks[chunk_id], id=chunk_id, units=(), passage="", statement_dense=())
        none: frozenset[str] = frozenset()
        return Candidate(hit, Statement(start, end, none, none, none, False, False, text), text, {})

    def choose(self, ranked: list[Candidate]) -> list[Candidate]:
        """The best statement, and a second one when it is nearly as likely and says something else."""
        chosen = [ranked[0]]
        for c in ranked[1:3]:
            if c.score < SECOND_RATIO * ranked[0].score:
                break
            if (c.hit.chunk.source, c.start) != (
                ranked[0].hit.chunk.source,
                ranked[0].start,
            ) and c.statement.terms - ranked[0].statement.terms:
                chosen.append(c)
                break
        return chosen
