"""The one engine behind the CLI, the HTTP API and the chat: load once, answer, reload on swap."""

from __future__ import annotations

import logging
import threading
import unicodedata
from collections.abc import Generator as Gen
from typing import Any

import regex

from aiqa.config import Settings
from aiqa.errors import AiqaError, BadRequest
from aiqa.generate import Generator, with_generated
from aiqa.laps import Laps
from aiqa.records import Reply
from aiqa.stores.registry import live_version, load_index
from aiqa.text.korean import analyse, content_terms, is_korean, language, names, tokens, topic_particle
from aiqa.text.layout import FAQ_QUESTION, short_section

log = logging.getLogger("aiqa.engine")
# A FAQ question this long at most is shown as an example question in the chat.
EXAMPLE_CHARS = 40
# Openers of an elliptical follow-up ("그럼 중국은?", "what about China?").
_FOLLOW_UP = regex.compile(r"^\s*(?:그럼|그러면|그렇다면|그리고|또|반면|and|what about|how about)\b", regex.I)


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


def _lower_first(words: str) -> str:
    """A title as words inside a sentence: "Working hours" -> "working hours", but "IT and security" stays."""
    return words[0].lower() + words[1:] if words[1:2].islower() else words


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


def resolve_follow_up(question: str, history: list[str]) -> str:
    """Carry the previous question's topic into an elliptical follow-up.

    "중국은?" after "미국의 AI 반도체는?" becomes "중국은? AI 반도체": the new question's own
    proper nouns replace the earlier ones, the rest of the topic stays. Earlier follow-ups are
    resolved the same way first, so a chain of short questions keeps its topic.
    """
    if not history:
        return question
    previous = history[0]
    for earlier in history[1:]:
        previous = _resolve_against(earlier, previous)
    return _resolve_against(question, previous)


def _resolve_against(question: str, previous: str) -> str:
    terms = content_terms(question)
    if len(terms) > 2 and not _FOLLOW_UP.match(question):
        return question
    earlier_names, new_names = names(previous, latin=False), names(question, latin=False)
    carried = [t for t in dict.fromkeys(tokens(previous)) if t not in terms and not (new_names and t in earlier_names)]
    return f"{question} {' '.join(carried)}".strip()


def _passage(hit) -> dict[str, Any]:
    c = hit.chunk
    return {
        "rank": hit.rank,
        "source": c.source,
        "section": c.section,
        "locator": c.locator,
        "text": c.text,
        "score": round(hit.score, 4),
    }


class Engine:
    """Loads the index, model and per-index structures once; swaps them when a new build lands."""

    def __init__(self, settings: Settings, *, shared_batches: bool = False):
        """`shared_batches`: embed questions that arrive together in one call (aiqa.batching); for servers."""
        self.settings = settings
        self._shared_batches = shared_batches
        self._lock = threading.Lock()
        self._embedder = None
        self._state: tuple[str, Any, Any] | None = None  # (version, retriever, composer)
        self._failed: tuple[str, str] | None = None  # (version, why) of a new version that did not load
        self.generator = Generator.from_settings(settings)  # None: answers are quotes only

    @property
    def embedder(self):
        if self._embedder is None:
            from aiqa.embedders.registry import load_embedder

            embedder = load_embedder(self.settings.embed_model, self.settings.cache_dir, self.settings.encoder_runtime)
            if self._shared_batches:
                from aiqa.embedders.batching import SharedBatches

                embedder = SharedBatches(embedder)
            self._embedder = embedder
        return self._embedder

    def state(self):
        """The live (version, retriever, composer), reloaded when the store names a new live version."""
        version = live_version(self.settings)
        state = self._state
        if state is not None and version in (state[0], (self._failed or ("",))[0]):
            return state  # the live one, or a damaged new one already tried: keep the good one
        with self._lock:
            if self._state is None or self._state[0] != live_version(self.settings):
                try:
                    self._state = self._load()
                    self._failed = None
                except AiqaError as exc:
                    if self._state is None:
                        raise
                    # A damaged new version must not take down a good one already in memory.
                    self._failed = (version or "", str(exc))
                    log.error("%s; still serving index %s", exc, self._state[0])
            return self._state

    def _load(self) -> tuple[str, Any, Any]:
        from aiqa.answer import Composer
        from aiqa.answer.decision import load_decision
        from aiqa.retrieve import Retriever

        index = load_index(self.settings)
        retriever = Retriever(index, self.embedder)
        return index.version, retriever, Composer(retriever, load_decision(self.settings.decision_file))

    def load(self) -> Engine:
        """Load everything now instead of on the first question, and warm the model up."""
        self.state()
        self.embedder.embed_queries(["warm-up"])  # the first forward pass is several times slower
        return self

    @property
    def retriever(self):
        """The live Retriever (reloaded if a new index version landed)."""
        return self.state()[1]

    def current_index(self):
        """The live LoadedIndex (reloaded if a new version landed)."""
        return self.retriever.index

    def examples(self, n: int = 4) -> list[str]:
        """Example questions for the chat: AIQA_EXAMPLES; else the questions of the documents' FAQs,
        then one about each of the first short section titles ("현재 기술 수준" -> "현재 기술 수준은?",
        "Working hours" -> "Tell me about working hours")."""
        if self.settings.examples:
            return list(self.settings.examples[:n])
        try:
            chunks = self.current_index().chunks
        except AiqaError:
            return []
        asked: list[str] = []
        topics: list[str] = []
        titles: set[str] = set()
        for chunk in chunks:
            first = chunk.text.split("\n", 1)[0]
            mark = FAQ_QUESTION.match(first)
            question = first[mark.end() :].strip() if mark else ""
            if 4 <= len(question) <= EXAMPLE_CHARS and question not in asked:
                asked.append(question)
            topic = short_section(chunk.section.split(" > ")[-1]).replace("_", " ") if chunk.section else ""
            if chunk.kind == "title":
                titles.add(topic)  # a document's title names it; it asks nothing
            elif 2 <= len(topic) <= 20 and topic not in topics and topic not in titles:
                topics.append(topic)
        about = [f"{t}{topic_particle(t)}?" if is_korean(t) else f"Tell me about {_lower_first(t)}" for t in topics]
        return [*asked[: n - min(len(about), n // 2)], *about][:n]

    def health(self) -> dict[str, Any]:
        index = self.current_index()
        failed = self._failed
        warnings = [f"{failed[1]}; serving the previous index {index.version}"] if failed else []
        llm = self.generator.health() if self.generator else None
        if llm and llm["state"] == "failing":
            warnings.append(f"the LLM server fails ({llm['last_error']}); answers are quoted from the documents")
        return {
            "status": "degraded" if warnings else "ok",
            **({"warning": "; ".join(warnings)} if warnings else {}),
            "index_version": index.version,
            "format_version": index.manifest["format_version"],
            "built_at": index.manifest["built_at"],
            "documents": len(index.documents),
            "chunks": len(index.chunks),
            "model": index.model,
            "dim": index.manifest["dim"],
            "llm": llm,  # null: answers are the documents' own statements
        }

    def check(self, question: Any, k: Any) -> tuple[str, int]:
        """Validate a question and k from any caller; raise BadRequest saying what is wrong."""
        if not isinstance(question, str):
            raise BadRequest("question must be a string")
        question = question.strip()
        if not question:
            raise BadRequest("question is empty: ask something about the documents")
        if len(question) > self.settings.max_question_chars:
            raise BadRequest(f"question is over {self.settings.max_question_chars} characters: shorten it")
        check_text(question)
        if not has_content(question):
            raise BadRequest("question has no words or numbers: ask something about the documents")
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= self.settings.max_k:
            raise BadRequest(f"k must be a whole number from 1 to {self.settings.max_k}")
        return question, k

    def prepare(self, question: Any, k: Any = 5, history: Any = None) -> Reply:
        """Retrieve and decide: the extractive answer with everything a written one needs."""
        question, k = self.check(question, k)
        earlier = history_questions(history, self.settings.max_history_items, self.settings.max_history_chars)
        _, retriever, composer = self.state()
        laps = Laps()
        resolved = analyse(resolve_follow_up(question, earlier))  # the one analysis of the question
        laps.lap("analyse")
        hits = composer.rerank(resolved, retriever.search(resolved, k=max(k, 6), laps=laps))
        laps.lap("rerank")
        answer = composer.compose(question, hits, resolved)
        laps.lap("compose")
        steps = laps.ms()
        # "retrieve" and "answer" are the contract's two totals; the steps break them down.
        retrieve = sum(steps.get(s, 0.0) for s in ("analyse", "embed", "dense", "keyword", "fuse", "rerank"))
        timings = {"retrieve": retrieve, "answer": steps["compose"], **steps}
        return Reply(answer, hits, k, timings, composer.documents)

    def ask(self, question: Any, k: Any = 5, history: Any = None):
        """Answer one question from the documents' statements; return the Answer, the top k hits and the
        timings in milliseconds."""
        reply = self.prepare(question, k, history)
        return reply.answer, reply.hits[: reply.k], reply.timings

    def reply_json(self, reply: Reply) -> dict[str, Any]:
        """The extractive answer as the JSON object of the CLI and HTTP contract."""
        answer, hits = reply.answer, reply.hits[: reply.k]
        return {
            "question": answer.question,
            "answer": answer.answer,
            "abstained": answer.abstained,
            "mode": "extractive",
            "language": language(answer.question),
            "resolved_question": answer.resolved_question,
            "citations": [c.as_json() for c in answer.citations],
            "passages": [_passage(h) for h in hits],
            "related": [_passage(h) for h in answer.related],
            "timings_ms": {name: round(ms, 2) for name, ms in reply.timings.items()},
            "confidence": answer.signals.get("probability", 0.0),
        }

    def writes(self, reply: Reply) -> bool:
        """Whether the LLM server is asked: one is set, and the decision answers (never on a refusal)."""
        return self.generator is not None and not reply.answer.abstained

    def events(self, reply: Reply) -> Gen[tuple[str, dict[str, Any]]]:
        """The answer as it forms: ("extractive", the quoted answer), then ("token", {"text"}) as the
        model writes, then ("answer", the final JSON: written and checked, or the extractive one)."""
        result = self.reply_json(reply)
        yield "extractive", result
        if self.generator is None or not self.writes(reply):
            yield "answer", result
            return
        for kind, value in self.generator.events(reply, result["language"]):
            if kind == "token":
                yield "token", {"text": value}
            else:
                yield "answer", with_generated(result, value)

    def ask_json(self, question: Any, k: Any = 5, history: Any = None, *, generate: bool = True) -> dict[str, Any]:
        """Answer one question as the JSON object of the CLI and HTTP contract; with an LLM server set
        (and `generate`), in the model's checked words."""
        reply = self.prepare(question, k, history)
        return self.final_json(reply) if generate else self.reply_json(reply)

    def final_json(self, reply: Reply) -> dict[str, Any]:
        """The final answer of a prepared reply: written and checked when an LLM server writes, else quoted."""
        if not self.writes(reply):
            return self.reply_json(reply)
        return next(value for kind, value in self.events(reply) if kind == "answer")
