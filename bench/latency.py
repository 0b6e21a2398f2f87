"""Time a warm `ask` against one bare encoder call, and report memory; prints a table.

Usage: .venv/bin/python bench/latency.py [EVAL.jsonl] [--repeat N]   (reads index/ or $AIQA_INDEX)
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

from aiqa.config import Settings
from aiqa.engine import Engine
from aiqa.evaluate import percentile
from evalsets import DEV_SET, question_files, read_cases


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("file", nargs="?", help=f"questions (default {DEV_SET})")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    questions = [c.q for c in read_cases(question_files([args.file] if args.file else []))]

    t0 = time.perf_counter()
    engine = Engine(Settings()).load()
    load_s = time.perf_counter() - t0

    encode, ask, retrieve, compose = [], [], [], []
    for _ in range(args.repeat):
        for q in questions:
            t = time.perf_counter()
            engine.embedder.embed_queries([q])
            encode.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            result = engine.ask_json(q)
            ask.append((time.perf_counter() - t) * 1000)
            retrieve.append(result["timings_ms"]["retrieve"])
            compose.append(result["timings_ms"]["answer"])

    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{len(questions)} questions x {args.repeat}; engine load {load_s:.1f} s; peak RSS {rss_mb:.0f} MB")
    print(f"{'step':<28} {'p50 ms':>8} {'p95 ms':>8} {'mean ms':>8}")
    for name, values in (
        ("bare encoder call (1 query)", encode),
        ("ask: retrieve", retrieve),
        ("ask: compose answer", compose),
        ("ask: total", ask),
    ):
        print(
            f"{name:<28} {percentile(values, 0.5):8.1f} {percentile(values, 0.95):8.1f} {statistics.fmean(values):8.1f}"
        )


if __name__ == "__main__":
    main()
