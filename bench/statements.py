"""Statement vectors pooled from their chunk's encoder pass against statements embedded apart, side by side.

Usage: flock /tmp/aiqa-bench.lock .venv/bin/python bench/statements.py [--json bench/results/statements.json]
       [--calibration DIR]

For each way (AIQA_STATEMENT_VECTORS=pooled, then separate) and each corpus, the command line a
user runs: `aiqa index --json` into a fresh folder (its build seconds and steps), then
`aiqa eval QUESTIONS --json` on that corpus's sets (hit@1, hit@5 and answer accuracy). Corpora:
the bundled report with its three question sets, and the KorQuAD calibration half
(.cache/calibration/korquad/, as scripts/fit_decision.py writes it: the indexed articles and the
report half's questions). The encoder is the default runtime (onnx-int8) unless AIQA_ENCODER says.
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
from quality import aiqa

REPO = Path(__file__).resolve().parents[1]
KEEP = ("recall@1", "recall@5", "answer_accuracy", "abstention_accuracy", "answerable", "unanswerable")


def sets(calibration: Path) -> dict[str, tuple[Path, list[Path]]]:
    out = {
        "report": (
            REPO / "corpus",
            [REPO / "tests/data/report_questions.jsonl", REPO / "bench/english.jsonl", REPO / "bench/questions.jsonl"],
        )
    }
    if (calibration / "report.jsonl").exists():
        out["korquad"] = (calibration / "corpus", [calibration / "report.jsonl"])
    else:
        print(f"statements: {calibration}/report.jsonl is not here: KorQuAD skipped", file=sys.stderr)
    return out


def measure(mode: str, calibration: Path) -> list[dict[str, Any]]:
    rows = []
    for name, (corpus, files) in sets(calibration).items():
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
            for path in files:
                report = aiqa(env, "eval", str(path), "--json")
                row = {
                    "statements": mode,
                    "corpus": name,
                    "set": str(path.relative_to(REPO)),
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
    args = parser.parse_args()
    rows = [row for mode in STATEMENT_VECTORS for row in measure(mode, args.calibration)]
    command = " ".join(["flock /tmp/aiqa-bench.lock .venv/bin/python bench/statements.py", *sys.argv[1:]])
    data = {"command": command, "encoder": Settings().encoder_runtime, "rows": rows}
    args.json.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
