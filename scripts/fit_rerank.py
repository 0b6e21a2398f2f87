"""Fit the alignment weight of the passage rerank for questions not in Korean (RERANK_WEIGHT).

Usage: .venv/bin/python scripts/fit_rerank.py --korquad DIR [--work .cache/calibration]

The English questions of bench/korquad_english.jsonl about indexed KorQuAD articles, in the same
fit/report split as scripts/fit_decision.py (which builds the index this reads). For each question
the best RERANK_DEPTH passages are retrieved once, with their fused scores and the token alignment of
their best statement; then every weight on a grid is tried: the share of questions whose first
passage holds a gold span. The weight is chosen on the fit half, on hit@1 averaged with the
neighbouring weights of the grid (the smallest of equal ones); the report half is printed beside it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from fit_decision import REPO, english_cases, korquad_engine

from aiqa.answer.candidates import RERANK_DEPTH, Question, passage_alignment, rerank_scores
from aiqa.evaluate import contains, load_cases
from aiqa.text.korean import analyse

GRID = [round(w, 2) for w in np.arange(0.0, 1.0001, 0.05)]


def passages(engine, cases) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per question: the fused scores, best statement alignments and gold flags of its best passages."""
    pipeline = engine.pipeline()
    retriever, composer = pipeline.retriever, pipeline.composer
    out = []
    for case in cases:
        analysis = analyse(case.q)
        hits = retriever.search(analysis, k=RERANK_DEPTH)
        question = Question.read(analysis, retriever.stats)
        alignment = passage_alignment(question, hits, composer.statements, composer.aligner)
        gold = [any(contains(h.chunk.text, g) for g in case.gold) for h in hits]
        out.append((np.array([h.score for h in hits]), alignment, np.array(gold)))
    return out


def hit_at_1(rows, weight: float) -> float:
    return float(np.mean([gold[int(np.argmax(rerank_scores(f, a, weight)))] for f, a, gold in rows if len(f)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--korquad",
        type=Path,
        required=True,
        help="the KorQuAD calibration set: questions.jsonl and corpus/",
    )
    parser.add_argument("--work", type=Path, default=REPO / ".cache" / "calibration")
    args = parser.parse_args()
    engine, split = korquad_engine(args.korquad, args.work)
    engine.load()
    if not engine.pipeline().composer.aligner.available:
        sys.exit("the embedding model has no token states: nothing to fit")
    cases = load_cases(args.korquad / "questions.jsonl")
    english = english_cases(REPO / "bench" / "korquad_english.jsonl", cases)
    halves = {h: [c for c in english if split.get(c.file) == f"{h}_in"] for h in ("fit", "report")}
    rows = {h: passages(engine, c) for h, c in halves.items()}
    table = {w: {h: hit_at_1(r, w) for h, r in rows.items()} for w in GRID}
    print("weight  " + "  ".join(f"{h} hit@1 (n={len(c)})" for h, c in halves.items()))
    for w, found in table.items():
        print(f"{w:6.2f}  " + "  ".join(f"{found[h]:14.3f}" for h in halves))
    # One question is 1.25 points here, and the int8 encoder's states vary a little with the batch a
    # text is encoded in: choose on hit@1 averaged with the neighbouring weights, not on a lone peak.
    fit = [table[w]["fit"] for w in GRID]
    smoothed = {w: float(np.mean(fit[max(0, i - 1) : i + 2])) for i, w in enumerate(GRID)}
    chosen = max(GRID, key=lambda w: (round(smoothed[w], 6), -w))
    print(json.dumps({"RERANK_DEPTH": RERANK_DEPTH, "RERANK_WEIGHT": chosen, "hit@1": table[chosen]}))


if __name__ == "__main__":
    main()
