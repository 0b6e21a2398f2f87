"""One question's whole path: a chat turn read once into a Query, then retrieve -> rerank -> compose -> Reply.

`read_query` checks the input, carries an elliptical follow-up's topic over from the earlier
questions and analyses the result with Kiwi once; `Pipeline.run` takes that Query through one
index version's retriever and answer layer. Nothing here knows where the version came from
(aiqa.engine reloads it) or how the reply is shown (aiqa.contract, aiqa.web).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

import regex

from aiqa.answer import Composer
from aiqa.answer.candidates import Question
from aiqa.answer.decision import Decision
from aiqa.embedders.base import Embedder
from aiqa.errors import BadRequest
from aiqa.index.format import LoadedIndex
from aiqa.laps import Laps
from aiqa.records import Reply
from aiqa.retrieve import Retriever
from aiqa.text.english import ENGLISH_STOPWORDS
from aiqa.text.korean import Analysis, analyse, language

# Openers of an elliptical follow-up ("그럼 중국은?", "what about China?").
_FOLLOW_UP = regex.compile(r"^\s*(?:그럼|그러면|그렇다면|그리고|또|반면|and|what about|how about)\b", regex.I)
# Retrieval reads at least this many passages: the rerank and the answer layer look past the k shown.
MIN_DEPTH = 6


@dataclass(frozen=True)
class QueryLimits:
    """What a caller may send: the question's length, k, and the history's size (Settings)."""

    max_question_chars: int = 1000
    max_k: int = 20
    max_history_items: int = 20
    max_history_chars: int = 8000

    @classmethod
    def of(cls, settings: Any) -> QueryLimits:
        return cls(settings.max_question_chars, settings.max_k, settings.max_history_items, settings.max_history_chars)


@dataclass(frozen=True)
class Query:
    """One chat turn as the pipeline reads it: read once, analysed once."""

    question: str  # as asked, trimmed
    k: int  # passages the caller wants back
    analysis: Analysis  # of the question with a follow-up's topic carried over (its .text)
    language: str  # of the question's own words: the language of the answer


def check_text(text: str, what: str = "question") -> None:
    """Refuse text that cannot be processed: lone surrogates, control characters."""
    for i, ch in enumerate(text):
        category = unicodedata.category(ch)
        if category == "Cs":
            raise BadRequest(
                f"{what} holds an invalid character at position {i} (a lone UTF-16 surrogate, "
                f"U+{ord(ch):04X}): send valid Unicode text"
            )
        if category == "Cc" and ch not in "\t\n\r":
            raise BadRequest(f"{what} holds a control character at position {i} (U+{ord(ch):04X}): remove it")


def has_content(text: str) -> bool:
    """Tell whether text has a letter or a digit: "???", "..." or "🙂" ask nothing."""
    return any(unicodedata.category(ch)[0] in "LN" for ch in text)


def check_question(question: Any, k: Any, limits: QueryLimits) -> tuple[str, int]:
    """Validate a question and k from any caller; raise BadRequest saying what is wrong."""
    if not isinstance(question, str):
        raise BadRequest("question must be a string")
    question = question.strip()
    if not question:
        raise BadRequest("question is empty: ask something about the documents")
    if len(question) > limits.max_question_chars:
        raise BadRequest(f"question is over {limits.max_question_chars} characters: shorten it")
    check_text(question)
    if not has_content(question):
        raise BadRequest("question has no words or numbers: ask something about the documents")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= limits.max_k:
        raise BadRequest(f"k must be a whole number from 1 to {limits.max_k}")
    return question, k


def history_questions(history: Any, max_items: int = 20, max_chars: int = 8000) -> list[str]:
    """Return the user's earlier questions from a history list; raise BadRequest on a bad shape.

    Accepts plain strings, {"role": "user", "content": "..."} messages (assistant turns are
    skipped), or {"question": "..."} objects; at most `max_items` entries of `max_chars` in all.
    """
    if history is None:
        return []
    if not isinstance(history, list):
        raise BadRequest("history must be a list of earlier questions or {role, content} messages")
    if len(history) > max_items:
        raise BadRequest(
            f"history has {len(history)} entries, over the cap of {max_items} (AIQA_MAX_HISTORY): "
            "send only the latest ones"
        )
    out, total = [], 0
    for item in history:
        text: Any
        if isinstance(item, str):
            text, role = item, "user"
        elif isinstance(item, dict):
            role = item.get("role", "user")
            text = item.get("content", item.get("question"))
            if not isinstance(text, str):
                raise BadRequest("each history message needs a text 'content' (or 'question') field")
        else:
            raise BadRequest("history items must be strings or {role, content} objects")
        total += len(text)
        if role == "user":
            out.append(text)
    if total > max_chars:
        raise BadRequest(
            f"history holds {total} characters, over the cap of {max_chars} (AIQA_MAX_HISTORY_CHARS): "
            "send fewer or shorter earlier messages"
        )
    for q in out:
        check_text(q, "a history question")
    return [q for q in out if q.strip()]


class _Analyses:
    """Each text of one turn analysed once: the question, the earlier questions, what they resolve to."""

    def __init__(self) -> None:
        self._done: dict[str, Analysis] = {}

    def __call__(self, text: str) -> Analysis:
        if text not in self._done:
            self._done[text] = analyse(text)
        return self._done[text]


def resolve_follow_up(question: str, history: list[str], analysed: _Analyses | None = None) -> str:
    """Carry the previous question's topic into an elliptical follow-up.

    "중국은?" after "미국의 AI 반도체는?" becomes "중국은? AI 반도체": the new question's own
    proper nouns replace the earlier ones, the rest of the topic stays. Earlier follow-ups are
    resolved the same way first, so a chain of short questions keeps its topic.
    """
    if not history:
        return question
    analysed = analysed or _Analyses()
    previous = history[0]
    for earlier in history[1:]:
        previous = _resolve_against(earlier, previous, analysed)
    return _resolve_against(question, previous, analysed)


def _resolve_against(question: str, previous: str, analysed: _Analyses) -> str:
    asked = analysed(question)
    terms = asked.terms
    if len(terms) > 2 and not _FOLLOW_UP.match(question):
        return question
    before = analysed(previous)
    earlier_names, new_names = before.names - ENGLISH_STOPWORDS, asked.names - ENGLISH_STOPWORDS
    words = [t for t in before.tokens if "_" not in t]
    carried = [t for t in dict.fromkeys(words) if t not in terms and not (new_names and t in earlier_names)]
    return f"{question} {' '.join(carried)}".strip()


def read_query(question: Any, k: Any = 5, history: Any = None, limits: QueryLimits | None = None) -> Query:
    """Read one chat turn: check it, resolve a follow-up against the history, analyse it once."""
    limits = limits or QueryLimits()
    question, k = check_question(question, k, limits)
    earlier = history_questions(history, limits.max_history_items, limits.max_history_chars)
    analysed = _Analyses()
    analysis = analysed(resolve_follow_up(question, earlier, analysed))
    own = analysis.language if analysis.text == question else language(question)
    return Query(question, k, analysis, own)


class Pipeline:
    """One index version's retrieve -> rerank -> compose; built once per version, shared by all questions."""

    def __init__(self, index: LoadedIndex, retriever: Retriever, composer: Composer):
        self.index = index
        self.retriever = retriever
        self.composer = composer

    @classmethod
    def over(cls, index: LoadedIndex, embedder: Embedder, decision: Decision) -> Pipeline:
        retriever = Retriever(index, embedder)
        return cls(index, retriever, Composer(retriever, decision))

    @property
    def version(self) -> str:
        return self.index.version

    def run(self, query: Query, laps: Laps | None = None) -> Reply:
        """Answer a query from this version: the extractive answer with everything a written one needs."""
        laps = laps or Laps()
        asked = Question.read(query.analysis, self.retriever.stats)
        found = self.retriever.search(
            query.analysis, k=max(query.k, MIN_DEPTH), laps=laps, also=self.composer.wanted(asked)
        )
        hits = self.composer.rerank(asked, found)
        laps.lap("rerank")
        answer = self.composer.compose(query.question, asked, hits, query.language)
        laps.lap("compose")
        steps = laps.ms()
        # "retrieve" and "answer" are the contract's two totals; the steps break them down.
        retrieve = sum(steps.get(s, 0.0) for s in ("analyse", "embed", "dense", "keyword", "fuse", "rerank"))
        timings = {"retrieve": retrieve, "answer": steps["compose"], **steps}
        return Reply(answer, hits, query.k, timings, self.composer.documents, query.language)
