"""The JSON contract of the CLI and the HTTP API: a Reply as the answer object, its events, the health object.

One module, so that `aiqa ask --json`, `POST /api/ask`, its event stream and `aiqa eval` read the
same fields; docs/SECURITY.md and the widget rely on them.
"""

from __future__ import annotations

from collections.abc import Generator as Events
from typing import Any

from aiqa.engine import Engine
from aiqa.generate import Generator, with_generated
from aiqa.records import Hit, Reply


def _passage(hit: Hit) -> dict[str, Any]:
    c = hit.chunk
    return {
        "rank": hit.rank,
        "source": c.source,
        "section": c.section,
        "locator": c.locator,
        "text": hit.passage_text,
        "score": round(hit.score, 4),
    }


def reply_json(reply: Reply) -> dict[str, Any]:
    """The extractive answer as the JSON object of the CLI and HTTP contract."""
    answer, hits = reply.answer, reply.hits[: reply.k]
    return {
        "question": answer.question,
        "answer": answer.answer,
        "abstained": answer.abstained,
        "mode": "extractive",
        "language": reply.language,
        "resolved_question": answer.resolved_question,
        "citations": [c.as_json() for c in answer.citations],
        "passages": [_passage(h) for h in hits],
        "related": [_passage(h) for h in answer.related],
        "timings_ms": {name: round(ms, 2) for name, ms in reply.timings.items()},
        "confidence": answer.signals.get("probability", 0.0),
    }


def writes(reply: Reply, generator: Generator | None) -> bool:
    """Whether the LLM server is asked: one is set, and the decision answers (never on a refusal)."""
    return generator is not None and not reply.answer.abstained


def events(reply: Reply, generator: Generator | None) -> Events[tuple[str, dict[str, Any]], None, None]:
    """The answer as it forms: ("extractive", the quoted answer), then ("token", {"text"}) as the
    model writes, then ("answer", the final JSON: written and checked, or the extractive one)."""
    result = reply_json(reply)
    yield "extractive", result
    if generator is None or not writes(reply, generator):
        yield "answer", result
        return
    for kind, value in generator.events(reply, result["language"]):
        if kind == "token":
            yield "token", {"text": value}
        else:
            yield "answer", with_generated(result, value)


def final_json(reply: Reply, generator: Generator | None) -> dict[str, Any]:
    """The final answer of a reply: written and checked when an LLM server writes, else quoted."""
    if not writes(reply, generator):
        return reply_json(reply)
    return next(value for kind, value in events(reply, generator) if kind == "answer")


def ask_json(
    engine: Engine,
    question: Any,
    k: Any = 5,
    history: Any = None,
    *,
    generate: bool = True,
    groups: frozenset[str] | None = None,
) -> dict[str, Any]:
    """Answer one question as the JSON object of the contract; with an LLM server set (and `generate`),
    in the model's checked words. `groups`: the reader's access groups (None: every document)."""
    reply = engine.ask(question, k, history, groups)
    return final_json(reply, engine.generator) if generate else reply_json(reply)


def health_json(engine: Engine, groups: frozenset[str] | None = None) -> dict[str, Any]:
    """The live index's version and size, and what is degraded: a damaged new version, a failing LLM server.

    The counts are of what a reader with `groups` may read (None: everything)."""
    index = engine.index_for(groups)
    failed = engine.failed
    warnings = [f"{failed[1]}; serving the previous index {index.version}"] if failed else []
    llm = engine.generator.health() if engine.generator else None
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
