"""Generator: prompt the LLM server, stream its reply, check it, and say whether it may replace the quotes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiqa.answer.present import cite
from aiqa.config import Settings
from aiqa.errors import GenerationFailed
from aiqa.generate.check import Evidence, Sentence, check
from aiqa.generate.client import ChatClient
from aiqa.generate.prompt import Prompt, build_prompt
from aiqa.records import Chunk, Citation, Document, Reply

# A written answer is shown only when at least this share of its sentences (and at least one) is
# held by the passages they cite, and one of them cites a statement the answer decision chose;
# otherwise the model strayed, and the quotes are the better answer.
MIN_KEPT_SHARE = 0.5


@dataclass(frozen=True)
class Generated:
    """The outcome of one generation: the checked answer, or why the extractive one stays."""

    answer: str = ""  # kept sentences, markers renumbered 1.. in order of first use
    citations: tuple[Citation, ...] = ()
    sentences: tuple[Sentence, ...] = ()
    fallback: str = ""  # why the extractive answer is shown instead ("" when the written one is)
    seconds: float = 0.0
    prompt_tokens: int = 0

    @property
    def used(self) -> bool:
        return not self.fallback

    def as_json(self) -> dict[str, Any]:
        return {
            "sentences": len(self.sentences),
            "kept": sum(s.kept for s in self.sentences),
            "dropped": [{"text": s.text, "reason": s.reason} for s in self.sentences if not s.kept],
            "fallback": self.fallback or None,
            "seconds": round(self.seconds, 2),
            "prompt_tokens": self.prompt_tokens,
        }


@dataclass
class LlmStatus:
    """What /api/health says of the LLM server: the last success and the last failure."""

    answers: int = 0
    failures: int = 0
    last_ok: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def ok(self) -> None:
        with self.lock:
            self.answers += 1
            self.last_ok = time.time()

    def failed(self, why: str) -> None:
        with self.lock:
            self.failures += 1
            self.last_error, self.last_error_at = why, time.time()

    @property
    def failing(self) -> bool:
        """The last call failed (no success since)."""
        return self.last_error_at is not None and (self.last_ok is None or self.last_ok < self.last_error_at)


class Generator:
    """One LLM server's client, prompt budget and status; shared by every question of a process."""

    def __init__(self, client: ChatClient, context_tokens: int = 4096, passages: int = 5):
        self.client = client
        self.context_tokens = context_tokens
        self.passages = passages
        self.status = LlmStatus()

    @classmethod
    def from_settings(cls, settings: Settings) -> Generator | None:
        if not settings.llm_url:
            return None
        client = ChatClient(
            settings.llm_url,
            settings.llm_model,
            settings.llm_api_key,
            read_timeout_s=settings.llm_timeout_s,
            max_tokens=settings.llm_max_tokens,
        )
        return cls(client, settings.llm_context_tokens, settings.llm_passages)

    def prompt(self, question: str, chunks: list[Chunk], language: str) -> Prompt:
        return build_prompt(question, chunks[: self.passages], language, self.context_tokens, self.client.max_tokens)

    def stream(self, prompt: Prompt) -> Iterator[str]:
        """The reply as it comes; GenerationFailed (recorded for /api/health) on any failure."""
        try:
            yield from self.client.stream(prompt.messages)
        except GenerationFailed as exc:
            self.status.failed(str(exc))
            raise
        self.status.ok()

    def finish(
        self,
        reply: str,
        prompt: Prompt,
        documents: Mapping[str, Document],
        started: float,
        grounds: tuple[tuple[str, int, int], ...] = (),
    ) -> Generated:
        """Check a complete reply and build its citations.

        `grounds`: spans (source, start, end) of the statements the answer decision found to answer
        the question; a written answer must cite at least one of them, or it answers something else.
        """
        sentences = tuple(check(reply, Evidence(prompt.passages, prompt.texts)))
        kept = [s for s in sentences if s.kept]
        seconds = time.perf_counter() - started
        if not kept or len(kept) < MIN_KEPT_SHARE * len(sentences):
            why = (
                "the model wrote nothing"
                if not sentences
                else f"{len(kept)} of {len(sentences)} written sentences are held by the passages they cite"
            )
            return Generated(sentences=sentences, fallback=why, seconds=seconds, prompt_tokens=prompt.tokens)
        answer, citations = _renumber(kept, prompt, documents)
        if grounds and not any(
            c.source == source and c.start < end and start < c.end for c in citations for source, start, end in grounds
        ):
            why = "the written sentences do not cite the statement that answers the question"
            return Generated(sentences=sentences, fallback=why, seconds=seconds, prompt_tokens=prompt.tokens)
        return Generated(answer, citations, sentences, "", seconds, prompt.tokens)

    def events(self, reply: Reply, language: str) -> Iterator[tuple[str, Any]]:
        """("token", text) as the model writes, then ("done", Generated); a failure mid-way ends in a
        fallback, never an error."""
        started = time.perf_counter()
        prompt = self.prompt(reply.answer.question, prompt_chunks(reply), language)
        pieces: list[str] = []
        try:
            for piece in self.stream(prompt):
                pieces.append(piece)
                yield "token", piece
        except GenerationFailed as exc:
            seconds = time.perf_counter() - started
            yield "done", Generated(fallback=str(exc), seconds=seconds, prompt_tokens=prompt.tokens)
            return
        grounds = tuple((c.source, c.start, c.end) for c in reply.answer.citations)
        yield "done", self.finish("".join(pieces), prompt, reply.documents, started, grounds)

    def health(self) -> dict[str, Any]:
        s = self.status
        state = "failing" if s.failing else ("ok" if s.last_ok else "not asked yet")
        return {
            "url": self.client.url,
            "model": self.client.model,
            "state": state,
            "answers": s.answers,
            "failures": s.failures,
            "last_error": s.last_error,
            "last_error_at": _iso(s.last_error_at),
            "last_ok_at": _iso(s.last_ok),
        }


def _iso(t: float | None) -> str | None:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t)) if t else None


def _renumber(kept: list[Sentence], prompt: Prompt, documents) -> tuple[str, tuple[Citation, ...]]:
    """The kept sentences with their passage numbers turned into citation numbers 1.., and one
    citation per (passage, quote) in order of first use."""
    numbers: dict[tuple[int, int, int], int] = {}
    citations: list[Citation] = []
    lines = []
    for s in kept:
        marks = []
        for n, start, end in s.quotes:
            key = (n, start, end)
            if key not in numbers:
                numbers[key] = len(numbers) + 1
                chunk = prompt.passages[n - 1]
                citations.append(cite(numbers[key], chunk, documents[chunk.source], start, end))
            marks.append(f"[{numbers[key]}]")
        body, stop = (s.bare[:-1], s.bare[-1]) if s.bare[-1:] in ".!?。" else (s.bare, "")
        lines.append(f"{body.rstrip()} {''.join(dict.fromkeys(marks))}{stop}")
    return " ".join(lines), tuple(citations)


def prompt_chunks(reply: Reply) -> list[Chunk]:
    """The passages for the prompt: those holding the statements the decision chose first (so a
    cut never loses them), then the rest in retrieval order."""
    chunks = [h.chunk for h in reply.hits]
    spans = [(c.source, c.start) for c in reply.answer.citations]
    holds = [c for c in chunks if any(s == c.source and c.start <= a < c.end for s, a in spans)]
    return list(dict.fromkeys(holds + chunks))


def with_generated(result: dict[str, Any], generated: Generated) -> dict[str, Any]:
    """The answer JSON with the written answer in place of the quoted one when it passed the check; the
    quoted one stays under "extractive", and "generation" tells what was kept and dropped."""
    out = {**result, "generation": generated.as_json()}
    out["timings_ms"] = {**result["timings_ms"], "generate": round(generated.seconds * 1000, 2)}
    if generated.used:
        out.update(
            mode="generated",
            answer=generated.answer,
            citations=[c.as_json() for c in generated.citations],
            extractive={"answer": result["answer"], "citations": result["citations"]},
        )
    return out
