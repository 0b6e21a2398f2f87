"""Statement vectors pooled from their chunk's encoder pass against statements embedded apart, side by side.

Usage: flock /tmp/aiqa-bench.lock .venv/bin/python bench/statements.py [--json bench/results/statements.json]
       [--calibration DIR]

For each way (AIQA_STATEMENT_VECTORS=pooled, then separate) and each corpus, the command line a
user runs: `aiqa index --json` into a fresh folder (its build seconds and steps), then
`aiqa eval QUESTIONS --json` on that corpus's sets (hit@1, hit@5 and answer accuracy). Corpora:
the bundled report with its three question sets (and ../shared/eval/dev.jsonl, or `--shared DIR`, when
it is there), the KorQuAD calibration half (.cache/calibration/korquad/, as scripts/fit_decision.py
writes it: the indexed articles and the report half's questions, with the English ones of
report-english.jsonl), and the documents in the shapes organisations keep with the fit and report halves
of their questions: bench/office, bench/devdocs and ../shared/eval/realistic (as bench/quality.py splits
them). The encoder is the default runtime (onnx-int8) unless AIQA_ENCODER says.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aiqa.config import STATEMENT_VECTORS, Settings
from quality import aiqa, realistic, split_set

REPO = Path(__file__).resolve().parents[1]
KEEP = ("recall@1", "recall@5", "answer_accuracy", "abstention_accuracy", "answerable", "unanswerable")


def sets(calibration: Path, shared: Path, work: Path) -> dict[str, tuple[Path, list[tuple[str, Path]]]]:
    """Each corpus and its question sets, each with the label it is reported under."""
    report = [REPO / "tests/data/report_questions.jsonl", REPO / "bench/english.jsonl", REPO / "bench/questions.jsonl"]
    if (shared / "eval/dev.jsonl").exists():
        report.append(shared / "eval/dev.jsonl")
    out = {"report": (REPO / "corpus", [(label(path, shared), path) for path in report])}
    if (calibration / "report.jsonl").exists():
        english = [calibration / "report-english.jsonl"] if (calibration / "report-english.jsonl").exists() else []
        out["korquad"] = (
            calibration / "corpus",
            [(f"korquad/{p.name}", p) for p in [calibration / "report.jsonl", *english]],
        )
    else:
        print(f"statements: {calibration}/report.jsonl is not here: KorQuAD skipped", file=sys.stderr)
    halves = {"office": split_set("office", work), "devdocs": split_set("devdocs", work)}
    if (shared / "eval/realistic").is_dir():
        halves["realistic"] = realistic(shared, work)
    for name, (corpus, files) in halves.items():
        out[name] = (
            corpus,
            [(f"{name} ({half} half)", path) for half, path in zip(("fit", "report"), files, strict=True)],
        )
    return out


def label(path: Path, shared: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else f"../shared/{path.relative_to(shared)}"


def measure(mode: str, corpora: dict[str, tuple[Path, list[tuple[str, Path]]]]) -> list[dict[str, Any]]:
    rows = []
    for name, (corpus, files) in corpora.items():
        with tempfile.TemporaryDirectory() as tmp:
            env = {
                **os.environ,
                "AIQA_CORPUS": str(corpus),
                "AIQA_INDEX": str(Path(tmp) / "index"),
                "AIQA_STATEMENT_VECTORS": mode,
            }
            started = time.perf_counter()
            build = aiqa(env, "index", "--json")
            wall = time.perf_counter() - started
            for set_name, path in files:
                report = aiqa(env, "eval", str(path), "--json")
                row = {
                    "statements": mode,
                    "corpus": name,
                    "set": set_name,
                    "chunks": build["chunks"],
                    "build_s": build["seconds"],
                    "build_wall_s": round(wall, 1),  # with the process start and the model's load
                    "steps": build["steps"],
                    **{k: report[k] for k in KEEP if k in report},
                }
                rows.append(row)
                print(
                    f"statements: {mode:<8} {row['set']}: build {row['build_s']:.1f} s, hit@1 {row['recall@1']:.3f}, "
                    f"hit@5 {row['recall@5']:.3f}, answers {row['answer_accuracy']:.3f}",
                    file=sys.stderr,
                )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--json", type=Path, default=REPO / "bench/results/statements.json", help="where to save")
    parser.add_argument("--calibration", type=Path, default=REPO / ".cache/calibration/korquad")
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared", help="the folder of eval/dev.jsonl")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        corpora = sets(args.calibration, args.shared.resolve(), Path(work))
        rows = [row for mode in STATEMENT_VECTORS for row in measure(mode, corpora)]
    command = " ".join(["flock /tmp/aiqa-bench.lock .venv/bin/python bench/statements.py", *sys.argv[1:]])
    data = {"command": command, "encoder": Settings().encoder_runtime, "rows": rows}
    args.json.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
