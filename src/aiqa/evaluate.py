"""Measure retrieval and answers on a JSONL question set: hit@k, MRR, answer hits, abstentions, crashes.

Two line formats are read:
- aiqa's own: `{"id", "q", "gold": [...], "must": [...], "answerable": bool}`;
- KorQuAD-style: `{"id", "q", "answers": [...], "file": "article.txt"}`. Such a question is
  answerable exactly when its `file` is in the index: questions about documents left out of the
  index must be refused.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiqa.contract import ask_json
from aiqa.engine import Engine
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
    gold: tuple[str, ...]
    must: tuple[str, ...] = ()
    answerable: bool | None = True  # None: decided by whether `file` is in the index
    file: str | None = None


def parse_case(row: Any, n: int) -> Case:
    """One eval line as a Case; raise KeyError/TypeError/ValueError when it is not one."""
    if not isinstance(row, dict) or not isinstance(row["q"], str):
        raise TypeError("a line must be a JSON object with a text 'q'")
    gold = row.get("gold", row.get("answers", []))
    if not isinstance(gold, list) or not all(isinstance(g, str) for g in gold):
        raise TypeError("'gold' (or 'answers') must be a list of strings")
    file = row.get("file")
    answerable = row.get("answerable", None if file else True)
    return Case(str(row.get("id", n)), row["q"], tuple(gold), tuple(row.get("must", [])), answerable, file)


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
            cases.append(parse_case(json.loads(line), n))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise BadRequest(
                f'{path}:{n}: not an eval line ({exc}); expected {{"id", "q", "gold", ...}} '
                'or {"id", "q", "answers", "file"}'
            ) from None
    if not cases:
        raise BadRequest(f"{path} holds no questions")
    return cases


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def is_answerable(case: Case, sources: set[str]) -> bool:
    if case.answerable is not None:
        return case.answerable
    return case.file in sources or Path(case.file or "").name in {Path(s).name for s in sources}


def score_case(case: Case, answerable: bool, result: dict[str, Any]) -> dict[str, Any]:
    """Judge one answer: the rank of the first passage holding a gold string, and whether it is right.

    Right means: not abstained, every `must` string in the answer, and a gold string in the answer
    text or in one of its cited quotes.
    """
    rank = next((p["rank"] for p in result["passages"] if any(contains(p["text"], g) for g in case.gold)), None)
    shown = [result["answer"], *(c["quote"] for c in result["citations"])]
    correct = (
        not result["abstained"]
        and all(contains(result["answer"], m) for m in case.must)
        and any(contains(text, g) for text in shown for g in case.gold)
    )
    return {
        "id": case.id,
        "q": case.q,
        "answerable": answerable,
        "rank": rank,
        "abstained": result["abstained"],
        "correct": correct,
        "mode": result.get("mode", "extractive"),  # "generated": written by the LLM server and checked
        "error": None,
    }


def run_eval(engine: Engine, cases: list[Case], k: int = 10) -> dict[str, Any]:
    """Ask every question once (after one warm-up) and score retrieval and answers.

    A question that fails inside aiqa is counted as a crash and the run goes on.
    """
    engine.load()
    documents = engine.index.documents
    sources = set(documents)
    corpus_texts = [squash(d.text) for d in documents.values()]
    per_case, latencies, retrieve_ms, answer_ms = [], [], [], []
    quotes = verbatim = 0
    for case in cases:
        answerable = is_answerable(case, sources)
        t0 = time.perf_counter()
        try:
            result = ask_json(engine, case.q, k)
        except BadRequest as exc:  # the question itself is refused as malformed: an abstention
            result = {"abstained": True, "answer": "", "citations": [], "passages": [], "error": str(exc)}
        except Exception as exc:
            per_case.append(
                {
                    "id": case.id,
                    "q": case.q,
                    "answerable": answerable,
                    "rank": None,
                    "abstained": False,
                    "correct": False,
                    "error": f"{type(exc).__name__}: {exc}",
                }
            )
            continue
        latencies.append((time.perf_counter() - t0) * 1000)
        if "timings_ms" in result:
            retrieve_ms.append(result["timings_ms"]["retrieve"])
            answer_ms.append(result["timings_ms"]["answer"])
        for citation in result["citations"]:
            quotes += 1
            verbatim += any(squash(citation["quote"]) in text for text in corpus_texts)
        per_case.append(score_case(case, answerable, result))
    return summarise(per_case, latencies, retrieve_ms, answer_ms, quotes, verbatim)


def summarise(per_case, latencies, retrieve_ms, answer_ms, quotes: int, verbatim: int) -> dict[str, Any]:
    answerable = [c for c in per_case if c["answerable"] and not c["error"]]
    unanswerable = [c for c in per_case if not c["answerable"] and not c["error"]]

    def share(items: list[dict], test) -> float:
        return round(sum(1 for c in items if test(c)) / len(items), 4) if items else 0.0

    return {
        "questions": len(per_case),
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
        "false_abstention_rate": share(answerable, lambda c: c["abstained"]),
        "crashes": sum(1 for c in per_case if c["error"]),
        "written_answers": sum(1 for c in per_case if c.get("mode") == "generated"),
        "verbatim_quotes": round(verbatim / quotes, 4) if quotes else 1.0,
        "latency_ms": {
            "p50": round(percentile(latencies, 0.5), 1),
            "p95": round(percentile(latencies, 0.95), 1),
            "retrieve_p50": round(percentile(retrieve_ms, 0.5), 1),
            "answer_p50": round(percentile(answer_ms, 0.5), 1),
        },
        "cases": per_case,
    }
