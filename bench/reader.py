"""Measure the reader (scripts/train_reader.py) side by side with the answer decision without it.

Usage: .venv/bin/python bench/reader.py [--examples .cache/calibration/reader.pkl]
                                        [--reader ~/.cache/aiqa/reader] [--top 16]

Reads the questions `scripts/train_reader.py collect` gathered (aiqa's own retrieval and
candidates, both halves). The reader scores the best `--top` candidates of each question under a
selection model fitted without it; its probability becomes the feature "reader" (0 for the
candidates it did not read) of the selection model and of the answer model. Both decisions, with
and without the feature, are fitted the way aiqa.calibrate.fit does, on the same fit halves
(KorQuAD's indexed and withheld articles, the realistic documents weighed up; the English KorQuAD
questions teach the selection only), and measured on the report halves only: KorQuAD's indexed
articles, its withheld ones (every answer is a false one), the copies with the answer sentence cut,
the English questions, and the realistic documents per question kind. Then the reader's cost per
question: scoring the best 8 and 16 candidates with onnxruntime int8 on 2 threads.
"""

from __future__ import annotations

import argparse
import pickle
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

from aiqa.answer.candidates import SELECTION_FEATURES
from aiqa.answer.decision import ANSWER_FEATURES, Model, fit_model
from aiqa.answer.reader import Reader, passage_text
from aiqa.calibrate import TARGET_FALSE_ABSTENTIONS
from aiqa.evaluate import contains

REPO = Path(__file__).resolve().parents[1]


def probabilities(model: Model, rows: list[dict]) -> list[float]:
    return [model.probability(r) for r in rows]


def read_all(records: list[dict], reader: Reader, baseline: Model, top: int) -> None:
    """Set each candidate's "reader" feature: its probability for the best `top` under `baseline`, else 0."""
    for n, r in enumerate(records, start=1):
        cands = r["candidates"]
        p = probabilities(baseline, [c["features"] for c in cands])
        order = sorted(range(len(cands)), key=lambda i: -p[i])[:top]
        scores = reader.scores(r["q"], [passage_text(cands[i]["text"], cands[i]["section"]) for i in order])
        for c in cands:
            c["features"]["reader"] = 0.0
        for i, s in zip(order, scores, strict=True):
            cands[i]["features"]["reader"] = s
        if n % 500 == 0:
            print(f"read {n}/{len(records)}", file=sys.stderr, flush=True)


def best(record: dict, selection: Model) -> tuple[int, float] | None:
    cands = record["candidates"]
    if not cands:
        return None
    p = probabilities(selection, [c["features"] for c in cands])
    i = max(range(len(cands)), key=lambda j: p[j])
    return i, p[i]


def answer_row(record: dict, chosen: tuple[int, float]) -> dict:
    i, p = chosen
    c = record["candidates"][i]
    row = {**c["answer"], "selection": p}
    row["reader"] = c["features"].get("reader", 0.0)
    row["reader_top"] = max(x["features"].get("reader", 0.0) for x in record["candidates"])
    return row


def fit(train: list[dict], selection_only: list[dict], sel_features, ans_features) -> tuple[Model, Model]:
    """aiqa.calibrate.fit on collected records: selection on answerable ones with a gold candidate, the
    answer model on the best candidate of each, the threshold at the target share of false refusals."""
    taught = [r for r in train + selection_only if r["answerable"] and any(r["labels"])]
    rows = [c["features"] for r in taught for c in r["candidates"]]
    labels = [y for r in taught for y in r["labels"]]
    weights = [r["weight"] for r in taught for _ in r["candidates"]]
    selection = fit_model(rows, labels, sel_features, weights=weights)
    usable = [(r, b) for r in train if (b := best(r, selection)) is not None]
    answer_rows = [answer_row(r, b) for r, b in usable]
    answer = fit_model(
        answer_rows, [int(r["answerable"]) for r, _ in usable], ans_features, weights=[r["weight"] for r, _ in usable]
    )
    answerable = sorted(answer.probability(x) for x, (r, _) in zip(answer_rows, usable, strict=True) if r["answerable"])
    threshold = answerable[int(TARGET_FALSE_ABSTENTIONS * len(answerable))] if answerable else 0.5
    from dataclasses import replace

    return selection, replace(answer, threshold=threshold)


def measure(records: list[dict], selection: Model, answer: Model) -> dict:
    """Answerable: count, answered with gold, refused, best holds gold; unanswerable: count, refused."""
    m = defaultdict(int)
    for r in records:
        chosen = best(r, selection)
        refused = chosen is None or answer.probability(answer_row(r, chosen)) < answer.threshold
        if r["answerable"]:
            holds = chosen is not None and any(contains(r["candidates"][chosen[0]]["text"], g) for g in r["gold"])
            m["answerable"] += 1
            m["hit"] += holds and not refused
            m["refused"] += refused
            m["selection"] += holds
            m["found"] += r["found"]
        else:
            m["unanswerable"] += 1
            m["refusals"] += refused
    return m


def row(name: str, m: dict) -> str:
    a, u = m["answerable"], m["unanswerable"]

    def share(x: int, n: int) -> str:
        return f"{x / n:.3f} ({x}/{n})" if n else "-"

    return (
        f"{name:<34}{share(m['hit'], a):>18}{share(m['refused'], a):>16}{share(m['selection'], a):>18}"
        f"{share(m['found'], a):>18}{share(m['refusals'], u):>16}"
    )


def cost(records: list[dict], reader: Reader, tops: tuple[int, ...], n: int = 120) -> None:
    """Milliseconds a question of the reader on its best candidates, beside one bare encoder call (the
    default runtime's query vector, the unit bench/latency.py measures in)."""
    from aiqa.config import Settings
    from aiqa.engine import Engine

    sample = [r for r in records if r["candidates"]][:n]
    embedder = Engine(Settings()).embedder
    reader.scores(sample[0]["q"], [passage_text(c["text"], c["section"]) for c in sample[0]["candidates"][:4]])
    embedder.embed_queries([sample[0]["q"]])
    encode = []
    for r in sample:
        started = time.perf_counter()
        embedder.embed_queries([r["q"]])
        encode.append(time.perf_counter() - started)
    print(f"bare encoder call: median {statistics.median(encode) * 1000:.1f} ms a question")
    for top in tops:
        times = []
        for r in sample:
            texts = [passage_text(c["text"], c["section"]) for c in r["candidates"][:top]]
            started = time.perf_counter()
            reader.scores(r["q"], texts)
            times.append(time.perf_counter() - started)
        print(
            f"reader cost, top {top}: median {statistics.median(times) * 1000:.0f} ms, "
            f"mean {statistics.mean(times) * 1000:.0f} ms a question ({len(times)} questions, 2 threads, int8)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=Path, default=REPO / ".cache" / "calibration" / "reader.pkl")
    parser.add_argument("--reader", type=Path, default=Path.home() / ".cache" / "aiqa" / "reader")
    parser.add_argument("--top", type=int, default=16, help="candidates the reader reads per question")
    parser.add_argument("--no-cost", action="store_true", help="skip the cost per question")
    parser.add_argument("--cost-only", action="store_true", help="measure the cost per question only")
    args = parser.parse_args()
    records = pickle.loads(args.examples.read_bytes())
    reader = Reader(args.reader)
    if not args.no_cost:
        cost([r for r in records if r["half"] == "report"], reader, (8, 16))
    if args.cost_only:
        return

    def part(name: str, half: str) -> list[dict]:
        return [r for r in records if r["set"] == name and r["half"] == half]

    train = part("korquad", "fit") + part("report", "fit") + part("realistic", "fit")
    english = part("korquad_en", "fit")
    base_sel, base_ans = fit(train, english, SELECTION_FEATURES, ANSWER_FEATURES)
    # The reader's scores are kept beside the examples, per reader file and depth: a rerun of the table
    # (another set of features) skips the reading.
    stamp = (args.reader / "reader-int8.onnx").stat().st_mtime_ns
    saved = args.examples.with_name(f"reader-scores-top{args.top}-{stamp}.pkl")
    if saved.exists():
        for r, scores in zip(records, pickle.loads(saved.read_bytes()), strict=True):
            for c, score in zip(r["candidates"], scores, strict=True):
                c["features"]["reader"] = score
    else:
        started = time.perf_counter()
        read_all(records, reader, base_sel, args.top)
        print(f"read {len(records)} questions in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        saved.write_bytes(pickle.dumps([[c["features"]["reader"] for c in r["candidates"]] for r in records]))
    arms = {
        "without reader": (base_sel, base_ans),
        "reader in selection+answer": fit(
            train, english, (*SELECTION_FEATURES, "reader"), (*ANSWER_FEATURES, "reader", "reader_top")
        ),
        "reader in selection only": fit(train, english, (*SELECTION_FEATURES, "reader"), ANSWER_FEATURES),
    }
    sets = [
        ("KorQuAD report, indexed", [r for r in part("korquad", "report") if r["answerable"]]),
        ("KorQuAD report, withheld", [r for r in part("korquad", "report") if not r["answerable"]]),
        ("KorQuAD report, answer cut", part("cut", "report")),
        ("KorQuAD English report", part("korquad_en", "report")),
        ("report questions, report half", part("report", "report")),
        ("realistic report", part("realistic", "report")),
    ]
    kinds = sorted({r["kind"] for r in part("realistic", "report")})
    sets += [(f"  realistic {k}", [r for r in part("realistic", "report") if r["kind"] == k]) for k in kinds]
    sets += [("realistic fit (seen)", part("realistic", "fit"))]
    header = (
        f"{'set':<34}{'answer hit':>18}{'false refusals':>16}{'selection':>18}{'gold retrieved':>18}{'refusals':>16}"
    )
    for arm, (selection, answer) in arms.items():
        print(f"\n== {arm} (threshold {answer.threshold:.3f}, top {args.top})")
        print(header)
        for name, rs in sets:
            print(row(name, measure(rs, selection, answer)))
        coef = dict(zip(selection.features, selection.coef, strict=True))
        extra = dict(zip(answer.features, answer.coef, strict=True))
        print(
            f"coefficients: selection reader {coef.get('reader', 0):.3f}; answer reader {extra.get('reader', 0):.3f}, "
            f"reader_top {extra.get('reader_top', 0):.3f}"
        )
    # The reader alone as the selector among the candidates it read.
    print("\n== reader alone picks among the best candidates it read (selection accuracy)")
    for name, rs in sets:
        answerable = [r for r in rs if r["answerable"]]
        if not answerable:
            continue
        ok = 0
        for r in answerable:
            i = max(range(len(r["candidates"])), key=lambda j: r["candidates"][j]["features"]["reader"], default=None)
            ok += i is not None and any(contains(r["candidates"][i]["text"], g) for g in r["gold"])
        print(f"{name:<34}{ok / len(answerable):.3f} ({ok}/{len(answerable)})")


if __name__ == "__main__":
    main()
