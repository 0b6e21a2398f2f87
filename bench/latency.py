"""Time a warm `ask`, step by step, against one bare encoder call for the question (the floor).

Usage: .venv/bin/python bench/latency.py [EVAL.jsonl] [--repeat N] [--json out.json]   (reads index/ or $AIQA_INDEX)
The steps are those of the answer's timings_ms: analyse (Kiwi, once), embed, dense, keyword, fuse, compose.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time
from pathlib import Path

from aiqa.config import Settings
from aiqa.contract import ask_json
from aiqa.engine import Engine
from aiqa.evaluate import percentile
from evalsets import DEV_SET, question_files, read_cases


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("file", nargs="?", help=f"questions (default {DEV_SET})")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    questions = [c.q for c in read_cases(question_files([args.file] if args.file else []))]

    t0 = time.perf_counter()
    engine = Engine(Settings()).load()
    load_s = time.perf_counter() - t0

    encode: list[float] = []
    ask: list[float] = []
    steps: dict[str, list[float]] = {}
    for _ in range(args.repeat):
        for q in questions:
            t = time.perf_counter()
            engine.embedder.embed_queries([q])
            encode.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            result = ask_json(engine, q)
            ask.append((time.perf_counter() - t) * 1000)
            for name, ms in result["timings_ms"].items():
                if name not in ("retrieve", "answer"):
                    steps.setdefault(name, []).append(ms)

    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    floor = percentile(encode, 0.5)
    print(f"{len(questions)} questions x {args.repeat}; engine load {load_s:.1f} s; peak RSS {rss_mb:.0f} MB")
    print(f"{'step':<30} {'p50 ms':>8} {'p95 ms':>8} {'mean ms':>8} {'p50/floor':>9}")
    rows = [("bare encoder call (the floor)", encode), *((f"ask: {k}", v) for k, v in steps.items())]
    rows.append(("ask: total", ask))
    for name, values in rows:
        p50 = percentile(values, 0.5)
        print(
            f"{name:<30} {p50:8.2f} {percentile(values, 0.95):8.2f} {statistics.fmean(values):8.2f} {p50 / floor:9.2f}"
        )
    if args.json:
        figures = {name: {"p50": percentile(v, 0.5), "p95": percentile(v, 0.95)} for name, v in rows}
        Path(args.json).write_text(json.dumps({"load_s": load_s, "rss_mb": rss_mb, **figures}, indent=1))


if __name__ == "__main__":
    main()
