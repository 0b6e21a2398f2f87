"""Hits -> Answer: find the statements that answer, decide whether they do, cite each, or abstain.

Nothing is generated: every statement is a unit of the corpus (a sentence, a bullet, a table
row) with its citation, so no fact can appear that its quote does not hold.
"""

from __future__ import annotations

from dataclasses import replace
from itertools import pairwise

import regex

from aiqa.answer.align import Aligner
from aiqa.answer.candidates import Candidate, Question, Statements, candidates, reranked
from aiqa.answer.decision import Decision, answer_features, load_decision
from aiqa.answer.present import ABSTAIN, cite, present
from aiqa.chunk import quote_span
from aiqa.records import Answer, Chunk, Hit
from aiqa.retrieve import Retriever

# A second statement joins the answer when its chance to hold the answer is at least this share of the
# best's: on the calibration questions that lifts answers holding the gold span by 4 points at 1.3
# statements an answer on average (scripts/fit_decision.py).
SECOND_RATIO = 0.4
# A sentence that announces what follows it: a colon at its end, or a word that points below.
ANNOUNCES = regex.compile(r"[:：]\s*$|아래|다음과\s*같|\bbelow\b|\bfollowing\b|\bas follows\b", regex.I)


class Composer:
    """Turns ranked hits into a cited answer; built once per index version."""

    def __init__(self, retriever: Retriever, decision: Decision | None = None):
        self.stats = retriever.stats
        self.documents = retriever.index.documents
        self.statements = Statements(retriever.chunks, {s: d.text for s, d in self.documents.items()}, self.stats)
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

    def rerank(self, question: Question, hits: list[Hit]) -> list[Hit]:
        """The hits in the order the answer layer reads them (see candidates.reranked)."""
        return reranked(question, hits, self.statements, self.aligner)

    def ranked(self, question: Question, hits: list[Hit]) -> list[Candidate]:
        """The candidate statements of the hits, most likely to hold the answer first."""
        model = self.decision.selection
        found = candidates(question, hits, self.statements, self.aligner)
        scored = [replace(c, score=model.probability(c.features)) for c in found]
        scored.sort(key=lambda c: -c.score)
        return scored

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
        if not ranked or probability < self.decision.answer.threshold:
            return Answer(question, ABSTAIN[language], True, (), analysis.text, signals, related=tuple(hits[:3]))
        chosen = self.choose(ranked)
        text, citations = present(
            chosen,
            replace(asked, analysis=replace(analysis, language=language)),
            self.documents,
            self.tables,
            self.statements.korean,
        )
        shown = self.announced(chosen[-1])
        if shown is not None:  # the chosen sentence points at the code below it: show and cite that too
            doc = self.documents[shown.source]
            n = len(citations) + 1
            citations = (*citations, cite(n, shown, doc, *quote_span(doc.text, shown.start, shown.end)))
            text = f"{text}\n\n{citations[-1].quote}\n[{n}]"
        return Answer(question, text, False, citations, analysis.text, signals)

    def announced(self, chosen: Candidate) -> Chunk | None:
        """The code block that a chosen statement announces ("아래 명령을 실행합니다.", "Run the following:"):
        the unit right after it in its document and section, when the statement ends its chunk."""
        chunk = chosen.hit.chunk
        following = self.following.get((chunk.source, chunk.start))
        if following is None or following.kind != "code" or following.section != chunk.section:
            return None
        if chunk.text[chosen.end - chunk.start :].strip() or not ANNOUNCES.search(chosen.quote):
            return None
        return following

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
