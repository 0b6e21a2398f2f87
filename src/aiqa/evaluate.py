"""Measure retrieval and answers on a JSONL question set: recall@k, MRR, answer and abstention accuracy."""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiqa.errors import BadRequest


def squash(text: str) -> str:
    """Drop all whitespace, so matching ignores line breaks and spacing."""
    return "".join(text.split())


def contains(haystack: str, needle: str) -> bool:
    return squash(needle) in squash(haystack)


@dataclass(frozen=True)
class Case:
    id: str
    q: str
    gold: list[str]
    must: list[str]
    answerable: bool


def load_cases(path: Path) -> list[Case]:
    """Read an eval file; raise BadRequest naming the line that is malformed."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BadRequest(f"cannot read eval file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    cases = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            cases.append(
                Case(
                    str(row.get("id", n)),
                    row["q"],
                    list(row.get("gold", [])),
                    list(row.get("must", [])),
                    bool(row.get("answerable", True)),
                )
            )
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise BadRequest(f'{path}:{n}: not an eval line ({exc}); expected {{"id", "q", "gold", ...}}') from None
    if not cases:
        raise BadRequest(f"{path} holds no questions")
    return cases


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run_eval(engine, cases: list[Case], k: int = 10) -> dict[str, Any]:
    """Ask every question once (after one warm-up) and score retrieval and answers."""
    engine.ask(cases[0].q, k)  # warm-up: loads the model and index, fills caches
    documents = engine.current_index().documents
    corpus_texts = [squash(d.text) for d in documents.values()]
    per_case, latencies, retrieve_ms, answer_ms = [], [], [], []
    quotes = verbatim = 0
    for case in cases:
        t0 = time.perf_counter()
        result = engine.ask_json(case.q, k)
        latencies.append((time.perf_counter() - t0) * 1000)
        retrieve_ms.append(result["timings_ms"]["retrieve"])
        answer_ms.append(result["timings_ms"]["answer"])
        rank = next((p["rank"] for p in result["passages"] if any(contains(p["text"], g) for g in case.gold)), None)
        for citation in result["citations"]:
            quotes += 1
            verbatim += any(squash(citation["quote"]) in text for text in corpus_texts)
        correct = (
            not result["abstained"]
            and all(contains(result["answer"], m) for m in case.must)
            and any(contains(c["quote"], g) for c in result["citations"] for g in case.gold)
        )
        per_case.append(
            {
                "id": case.id,
                "q": case.q,
                "answerable": case.answerable,
                "rank": rank,
                "abstained": result["abstained"],
                "correct": correct,
            }
        )
    answerable = [c for c in per_case if c["answerable"]]
    unanswerable = [c for c in per_case if not c["answerable"]]

    def share(items: list[dict], test) -> float:
        return round(sum(1 for c in items if test(c)) / len(items), 4) if items else 0.0

    return {
        "questions": len(cases),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "recall@1": share(answerable, lambda c: c["rank"] == 1),
        "recall@5": share(answerable, lambda c: c["rank"] is not None and c["rank"] <= 5),
        "mrr": round(statistics.fmean([1 / c["rank"] if c["rank"] else 0.0 for c in answerable]), 4)
        if answerable
        else 0.0,
        "answer_accuracy": share(answerable, lambda c: c["correct"]),
        "abstention_accuracy": share(unanswerable, lambda c: c["abstained"]),
        "false_abstentions": sum(1 for c in answerable if c["abstained"]),
        "verbatim_quotes": round(verbatim / quotes, 4) if quotes else 1.0,
        "latency_ms": {
            "p50": round(percentile(latencies, 0.5), 1),
            "p95": round(percentile(latencies, 0.95), 1),
            "retrieve_p50": round(percentile(retrieve_ms, 0.5), 1),
            "answer_p50": round(percentile(answer_ms, 0.5), 1),
        },
        "cases": per_case,
    }
