"""Compare the dense views of a chunk (labelled context, own words, best of both) on questions; prints a table.

Usage: .venv/bin/python bench/views.py [EVAL.jsonl ...]   (reads index/ or $AIQA_INDEX)
Each chunk is embedded in both views here, so the comparison does not depend on what the index stores.
"""

from __future__ import annotations

import sys

import numpy as np

from aiqa.chunk import chunk_views
from aiqa.config import Settings
from aiqa.engine import Engine
from aiqa.evaluate import contains
from aiqa.retrieve import fuse
from aiqa.text.korean import language
from evalsets import BENCH_SET, DEV_SET, question_files, read_cases


def main() -> None:
    files = question_files(sys.argv[1:], defaults=(DEV_SET, BENCH_SET))
    cases = [c for c in read_cases(files) if c.answerable]
    engine = Engine(Settings()).load()
    retriever = engine.pipeline().retriever
    chunks = retriever.chunks
    context, own = (engine.embedder.embed_passages([chunk_views(c)[v] for c in chunks]) for v in (0, 1))
    views = {
        "context": lambda q: context @ q,
        "own words": lambda q: own @ q,
        "best of both": lambda q: np.maximum(context @ q, own @ q),
    }
    print(f"{'dense view':<14} {'R@1 all':>8} {'R@5 all':>8} {'R@1 en':>7} {'R@5 en':>7}   ({len(cases)} questions)")
    for name, score in views.items():
        ranks, english = [], []
        for case in cases:
            _, keyword, known = retriever.signals(case.q, depth=len(chunks))
            dense = score(engine.embedder.embed_queries([case.q])[0]).astype(np.float32)
            order = np.argsort(-fuse(dense, keyword, known), kind="stable")
            gold = np.array([any(contains(chunks[i].text, g) for g in case.gold) for i in order])
            rank = int(np.nonzero(gold)[0][0]) + 1 if gold.any() else 999
            ranks.append(rank)
            if language(case.q) == "en":
                english.append(rank)
        r, e = np.array(ranks), np.array(english or [999])
        print(f"{name:<14} {np.mean(r == 1):8.3f} {np.mean(r <= 5):8.3f} {np.mean(e == 1):7.3f} {np.mean(e <= 5):7.3f}")


if __name__ == "__main__":
    main()
