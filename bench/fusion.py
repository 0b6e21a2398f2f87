"""Compare fusion weights of dense and BM25 retrieval on an eval set; prints a table.

Usage: .venv/bin/python bench/fusion.py [EVAL.jsonl]   (reads the index in index/ or $AIQA_INDEX)
"""

from __future__ import annotations

import sys

import numpy as np

from aiqa.config import Settings
from aiqa.engine import Engine
from aiqa.evaluate import contains
from aiqa.retrieve import fuse
from evalsets import question_files, read_cases


def main() -> None:
    cases = [c for c in read_cases(question_files(sys.argv[1:2])) if c.answerable]
    engine = Engine(Settings()).load()
    retriever = engine.pipeline().retriever
    rows = []
    for case in cases:
        gold = np.array([any(contains(c.text, g) for g in case.gold) for c in retriever.chunks])
        rows.append((retriever.signals(case.q, depth=len(retriever.chunks)), gold))

    def ranks(score_fn):
        out = []
        for signals, gold in rows:
            order = np.argsort(-score_fn(*signals), kind="stable")
            hit = np.nonzero(gold[order])[0]
            out.append(int(hit[0]) + 1 if len(hit) else 999)
        return out

    schemes = {"dense only": lambda d, b, k: d, "bm25 only": lambda d, b, k: b}
    for w in (0.3, 0.4, 0.5, 0.6, 0.7):
        schemes[f"fixed w={w}"] = lambda d, b, k, w=w: fuse(d, b, 1.0, w)
        schemes[f"adaptive w={w}"] = lambda d, b, k, w=w: fuse(d, b, k, w)
    print(f"{'scheme':<16} {'R@1':>6} {'R@5':>6} {'MRR':>6}  misses@1 (id:rank)")
    for name, fn in schemes.items():
        r = ranks(fn)
        misses = [f"{c.id}:{x}" for c, x in zip(cases, r, strict=True) if x > 1]
        print(
            f"{name:<16} {np.mean([x == 1 for x in r]):6.3f} {np.mean([x <= 5 for x in r]):6.3f} "
            f"{np.mean([1 / x for x in r]):6.3f}  {' '.join(misses)}"
        )


if __name__ == "__main__":
    main()
