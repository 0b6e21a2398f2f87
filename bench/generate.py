"""Written answers against quoted ones: answer hit, sentences kept, and seconds an answer, side by side.

Usage: .venv/bin/python bench/generate.py [--llm-url URL] [--sample 30] [--passages 3] [--json out.json]

Sets: the dev set (../shared/eval/dev.jsonl over the index in AIQA_INDEX, default index/; skipped
when it is not beside the repository) and a sample of the answerable KorQuAD calibration questions
(.cache/calibration/korquad/report.jsonl over .cache/calibration/korquad/index; scripts/fit_decision.py
makes them). Without --llm-url, the tests' small model (tests/llmserver.py: Qwen2.5-Coder 0.5B, Q4)
is served on this machine: a floor, not what a company's own LLM server would write.

For each question, the extractive answer and then the written one are taken from the same retrieval
(Engine.prepare, then Engine.events). "right" is `aiqa eval`'s test (not abstained, a gold string in
the answer or its cited quotes); "in text" asks that the gold string be in the answer's own text.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

from aiqa.config import Settings
from aiqa.contract import final_json, reply_json
from aiqa.engine import Engine
from aiqa.evaluate import contains, is_answerable, score_case
from evalsets import DEV_SET, REPO, read_cases

sys.path.insert(0, str(REPO))  # tests.llmserver serves the test model when no URL is given

CALIBRATION = REPO / ".cache" / "calibration" / "korquad"


def measure(engine: Engine, cases, name: str) -> dict:
    sources = set(engine.index.documents)
    rows = []
    for case in cases:
        reply = engine.ask(case.q, 5)
        answerable = is_answerable(case, sources)
        extractive = reply_json(reply)
        started = time.perf_counter()
        final = final_json(reply, engine.generator)
        seconds = time.perf_counter() - started
        generation = final.get("generation")
        rows.append(
            {
                "id": case.id,
                "answerable": answerable,
                "abstained": final["abstained"],
                "mode": final["mode"],
                "extractive_right": score_case(case, answerable, extractive)["correct"],
                "right": score_case(case, answerable, final)["correct"],
                "in_text": not final["abstained"] and any(contains(final["answer"], g) for g in case.gold),
                "extractive_in_text": not extractive["abstained"]
                and any(contains(extractive["answer"], g) for g in case.gold),
                "sentences": generation["sentences"] if generation else 0,
                "kept": generation["kept"] if generation else 0,
                "seconds": seconds if generation else None,
                "fallback": generation["fallback"] if generation else None,
            }
        )
        print(f"{name} {case.id}: {final['mode']} {rows[-1]['kept']}/{rows[-1]['sentences']}", file=sys.stderr)
    return summary(name, rows)


def summary(name: str, rows: list[dict]) -> dict:
    answered = [r for r in rows if r["answerable"]]
    asked = [r for r in rows if r["seconds"] is not None]
    written = [r for r in asked if r["mode"] == "generated"]

    def share(items, key) -> float:
        return round(sum(bool(r[key]) for r in items) / len(items), 3) if items else 0.0

    sentences = sum(r["sentences"] for r in asked)
    return {
        "set": name,
        "questions": len(rows),
        "answerable": len(answered),
        "model_asked": len(asked),
        "generated": len(written),
        "right_extractive": share(answered, "extractive_right"),
        "right_final": share(answered, "right"),
        "in_text_extractive": share(answered, "extractive_in_text"),
        "in_text_final": share(answered, "in_text"),
        "right_when_generated": share(written, "right"),
        "sentences_kept": round(sum(r["kept"] for r in asked) / sentences, 3) if sentences else 0.0,
        "seconds_p50": round(statistics.median(r["seconds"] for r in asked), 2) if asked else None,
        "seconds_max": round(max(r["seconds"] for r in asked), 2) if asked else None,
        "rows": rows,
    }


def table(results: list[dict]) -> str:
    head = (
        "| set | questions | model asked | written shown | right: quoted → final | gold in the answer's text: "
        "quoted → final | sentences kept | s / answer p50 (max) |"
    )
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(
            f"| {r['set']} | {r['questions']} | {r['model_asked']} | {r['generated']} | "
            f"{r['right_extractive']:.3f} → {r['right_final']:.3f} | {r['in_text_extractive']:.3f} → "
            f"{r['in_text_final']:.3f} | {r['sentences_kept']:.0%} | {r['seconds_p50']} ({r['seconds_max']}) |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llm-url", help="an OpenAI-compatible server (…/v1); default: serve the test model here")
    parser.add_argument("--sample", type=int, default=30, help="answerable KorQuAD questions drawn (seed 0)")
    parser.add_argument("--passages", type=int, default=3, help="passages in the prompt (AIQA_LLM_PASSAGES)")
    parser.add_argument("--max-tokens", type=int, default=200)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    with ExitStack() as stack:
        url = args.llm_url
        if not url:
            from tests.llmserver import LlmServer, fetch_model, model_cache

            url = stack.enter_context(LlmServer(fetch_model(model_cache()))).url
        sets = []
        if Path(DEV_SET).exists():
            report = Settings().with_paths(corpus=REPO / "corpus", index=os.environ.get("AIQA_INDEX") or REPO / "index")
            sets.append(("dev", report, read_cases([Path(DEV_SET)])))
        else:
            print(f"generate.py: {DEV_SET} is not here: the dev set is left out", file=sys.stderr)
        if (CALIBRATION / "report.jsonl").exists():
            kq = Settings().with_paths(corpus=CALIBRATION / "corpus", index=CALIBRATION / "index")
            indexed = {p.name for p in (CALIBRATION / "corpus").iterdir()}
            cases = [c for c in read_cases([CALIBRATION / "report.jsonl"]) if c.file in indexed]
            sets.append(("korquad", kq, random.Random(0).sample(cases, min(args.sample, len(cases)))))
        results = []
        for name, settings, cases in sets:
            settings = replace(
                settings,
                llm_url=url,
                llm_model="test",
                llm_passages=args.passages,
                llm_max_tokens=args.max_tokens,
                llm_timeout_s=300,
            )
            results.append(measure(Engine(settings).load(), cases, name))
    print(table(results))
    if args.json:  # the figures, and the table beside them for bench/report.py
        args.json.write_text(json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8")
        args.json.with_suffix(".md").write_text(table(results) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
