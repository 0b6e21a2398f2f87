"""Record what aiqa answers on every question set the repository ships, to prove a change kept behaviour.

Usage: .venv/bin/python bench/behaviour.py OUT_DIR [--tree DIR] [--shared DIR]

For each shipped corpus it builds a fresh index with `aiqa index --json`, then writes, per question
set over that corpus: `aiqa eval --json` and `aiqa ask - --json` for every question, with timings,
build dates and version names stripped. It drives the command line only, so the same script records
a tree before a refactor (`--tree` pointing at its checkout) and after, and `diff -r` tells whether
anything a user sees changed. The dev set and the KorQuAD calibration articles are read from
../shared when they are there.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# Keys whose values change from run to run without any change of behaviour.
VOLATILE = {"timings_ms", "latency_ms", "seconds", "steps", "built_at", "index_version", "version"}


def sets(shared: Path | None) -> dict[str, tuple[Path, list[Path]]]:
    """Corpus name -> (corpus folder, question files over it)."""
    out = {
        "report": (
            REPO / "corpus",
            [
                REPO / "tests/data/report_questions.jsonl",
                REPO / "bench/questions.jsonl",
                REPO / "bench/english.jsonl",
                REPO / "bench/report_calibration.jsonl",
            ],
        ),
        "company": (REPO / "tests/data/company", [REPO / "tests/data/company_questions.jsonl"]),
        "handbook": (REPO / "tests/data/handbook", [REPO / "tests/data/handbook_questions.jsonl"]),
        "documents": (REPO / "bench/documents/corpus", [REPO / "bench/documents/questions.jsonl"]),
    }
    if shared is not None and (shared / "eval").is_dir():
        out["report"][1].append(shared / "eval/dev.jsonl")
        korquad = shared / "eval/korquad"
        out["korquad"] = (korquad / "corpus", [REPO / "bench/korquad_english.jsonl", korquad / "questions.jsonl"])
    return out


def stripped(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: stripped(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [stripped(v) for v in value]
    return value


def aiqa(tree: Path, env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "aiqa.cli", *args],
        cwd=tree,
        env={**env, "PYTHONPATH": str(tree / "src")},
        input=stdin,
        capture_output=True,
        text=True,
    )
    if done.returncode not in (0, 1):
        raise SystemExit(f"behaviour: `aiqa {' '.join(args)}` failed in {tree}:\n{done.stderr[-2000:]}")
    return done.stdout


def questions(path: Path) -> list[str]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            out.append(" ".join((row["q"] if isinstance(row, dict) else row).split()))
    return out


def record(tree: Path, out: Path, shared: Path | None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, (corpus, files) in sets(shared).items():
        with tempfile.TemporaryDirectory() as tmp:
            env = {**os.environ, "AIQA_CORPUS": str(corpus), "AIQA_INDEX": str(Path(tmp) / "index")}
            build = json.loads(aiqa(tree, env, "index", "--json"))
            manifest = json.loads(next((Path(tmp) / "index").glob("*/manifest.json")).read_text(encoding="utf-8"))
            (out / f"{name}.build.json").write_text(dump(stripped(build)), encoding="utf-8")
            (out / f"{name}.manifest.json").write_text(dump(stripped(manifest)), encoding="utf-8")
            for path in files:
                stem = f"{name}.{path.stem}"
                report = json.loads(aiqa(tree, env, "eval", str(path), "--json"))
                (out / f"{stem}.eval.json").write_text(dump(stripped(report)), encoding="utf-8")
                asked = aiqa(tree, env, "ask", "-", "--json", "-k", "10", stdin="\n".join(questions(path)))
                lines = [dump(stripped(json.loads(line)), indent=None) for line in asked.splitlines() if line.strip()]
                (out / f"{stem}.ask.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
                print(f"behaviour: {stem}: {report['questions']} questions", file=sys.stderr)


def dump(data: Any, indent: int | None = 1) -> str:
    return json.dumps(data, ensure_ascii=False, indent=indent, sort_keys=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--tree", type=Path, default=REPO, help="the checkout to record (default: this one)")
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    args = parser.parse_args()
    record(args.tree.resolve(), args.out, args.shared if args.shared.is_dir() else None)


if __name__ == "__main__":
    main()
