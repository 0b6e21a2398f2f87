"""Measure answer quality with `aiqa eval --json` on every question set the repository ships.

Usage: flock /tmp/aiqa-bench.lock .venv/bin/python bench/quality.py [--json bench/results/quality.json]
       [--shared DIR]

For each shipped corpus it builds a fresh index in a temporary folder (`aiqa index --json`, with
AIQA_CORPUS and AIQA_INDEX pointing there), then runs `aiqa eval QUESTIONS --json` on each question
set over that corpus, through the command line a user runs. It saves, per set, the summary fields of
the eval report (every field but the per-question `cases`) and, when the question lines carry a
`kind` field, the same summary per kind. The project's dev set is read from ../shared/eval/dev.jsonl
beside the repository (or `--shared DIR`) when it is there. bench/report.py lays the file out in
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aiqa.config import Settings
from aiqa.evaluate import summarise

REPO = Path(__file__).resolve().parents[1]


def realistic(shared: Path, work: Path) -> tuple[Path, list[Path]]:
    """The realistic office documents of ../shared/eval/realistic (without its README) and the two halves
    of their questions, as its check_realistic.py --split writes them (fit first, then report)."""
    source, corpus = shared / "eval/realistic", work / "realistic-corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.iterdir()):
        if path.suffix in (".txt", ".md") and path.name != "README.md":
            shutil.copy(path, corpus / path.name)
    subprocess.run(
        [sys.executable, str(source / "check_realistic.py"), "--split", str(work / "realistic")],
        check=True,
        capture_output=True,
    )
    return corpus, [work / "realistic" / "fit.jsonl", work / "realistic" / "report.jsonl"]


def split_set(name: str, work: Path) -> tuple[Path, list[Path]]:
    """One of the repository's own sets, bench/NAME: its documents (without its README) and its two halves,
    as its check.py --split writes them (fit first, then report). bench/office holds documents of a hospital
    in the shapes organisations keep, bench/devdocs Korean software documentation."""
    source, corpus = REPO / "bench" / name, work / f"{name}-corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.iterdir()):
        if path.suffix in (".txt", ".md") and path.name != "README.md":
            shutil.copy(path, corpus / path.name)
    split = work / f"{name}-split"
    subprocess.run([sys.executable, str(source / "check.py"), "--split", str(split)], check=True, capture_output=True)
    return corpus, [split / "fit.jsonl", split / "report.jsonl"]


def sets(shared: Path | None, work: Path) -> dict[str, tuple[Path, list[Path]]]:
    """Corpus name -> (corpus folder, question files over it); the report's sets first."""
    out = {
        "report": (
            REPO / "corpus",
            [REPO / "tests/data/report_questions.jsonl", REPO / "bench/english.jsonl", REPO / "bench/questions.jsonl"],
        ),
        "company": (REPO / "tests/data/company", [REPO / "tests/data/company_questions.jsonl"]),
        "handbook": (REPO / "tests/data/handbook", [REPO / "tests/data/handbook_questions.jsonl"]),
        "documents": (REPO / "bench/documents/corpus", [REPO / "bench/documents/questions.jsonl"]),
        "office": (REPO / "tests/data/office", [REPO / "tests/data/office_questions.jsonl"]),
        "hospital": split_set("office", work),
        "devdocs": split_set("devdocs", work),
    }
    if shared is not None and (shared / "eval/dev.jsonl").exists():
        out["report"][1].append(shared / "eval/dev.jsonl")
    if shared is not None and (shared / "eval/realistic/check_realistic.py").exists():
        out["realistic"] = realistic(shared, work)
    return out


def aiqa(env: dict[str, str], *args: str) -> Any:
    """Run `python -m aiqa.cli ARGS` and return the JSON it prints; exit with its stderr when it fails."""
    done = subprocess.run(
        [sys.executable, "-m", "aiqa.cli", *args],
        cwd=REPO,
        env={**env, "PYTHONPATH": str(REPO / "src")},
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"quality: `aiqa {' '.join(args)}` failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout)


def kinds(path: Path) -> dict[str, str]:
    """Question id -> its `kind`, for the lines that carry one (the ids as `aiqa eval` numbers them)."""
    out = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            row = json.loads(line)
            if isinstance(row, dict) and row.get("kind"):
                out[str(row.get("id", n))] = str(row["kind"])
    return out


def summary(report: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in report.items() if k != "cases"}


def per_kind(report: dict[str, Any], kind_of: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The eval summary over each kind's questions (no latency: `aiqa eval` times whole runs only)."""
    out = {}
    for kind in sorted(set(kind_of.values())):
        cases = [c for c in report["cases"] if kind_of.get(c["id"]) == kind]
        scored = summarise(cases, [], [], [], 0, 0)
        out[kind] = {k: v for k, v in summary(scored).items() if k not in ("latency_ms", "verbatim_quotes")}
    return out


def label(path: Path, shared: Path | None) -> str:
    """The path as the docs name it: inside the repository, or under ../shared."""
    path = path.resolve()
    if path.is_relative_to(REPO):
        return str(path.relative_to(REPO))
    if shared is not None and path.is_relative_to(shared.resolve()):
        return f"../shared/{path.relative_to(shared.resolve())}"
    for name in ("office", "devdocs"):  # written from bench/NAME by split_set
        if path.parent.name == f"{name}-split" or path.name == f"{name}-corpus":
            half = {"fit.jsonl": " (fit half)", "report.jsonl": " (report half)"}.get(path.name, "")
            return f"bench/{name}{half}"
    if path.name in ("fit.jsonl", "report.jsonl", "realistic-corpus"):  # written from ../shared/eval/realistic
        half = {"fit.jsonl": " (fit half)", "report.jsonl": " (report half)"}.get(path.name, "")
        return f"../shared/eval/realistic{half}"
    return str(path)


def measure(shared: Path | None) -> list[dict[str, Any]]:
    rows = []
    work = Path(tempfile.mkdtemp(prefix="aiqa-quality-"))
    for corpus, files in sets(shared, work).values():
        with tempfile.TemporaryDirectory() as tmp:
            env = {**os.environ, "AIQA_CORPUS": str(corpus), "AIQA_INDEX": str(Path(tmp) / "index")}
            build = aiqa(env, "index", "--json")
            for path in files:
                t0 = time.perf_counter()
                report = aiqa(env, "eval", str(path), "--json")
                row = {
                    "set": label(path, shared),
                    "corpus": label(corpus, shared),
                    "documents": build["added"],
                    "chunks": build["chunks"],
                    "summary": summary(report),
                    "seconds": round(time.perf_counter() - t0, 1),
                }
                kind_of = kinds(path)
                if kind_of:
                    row["kinds"] = per_kind(report, kind_of)
                rows.append(row)
                s = row["summary"]
                print(
                    f"quality: {row['set']}: hit@1 {s['recall@1']:.3f}, answers {s['answer_accuracy']:.3f}, "
                    f"refused {s['abstention_accuracy']:.3f}",
                    file=sys.stderr,
                )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--json", type=Path, default=REPO / "bench/results/quality.json", help="where to save")
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared", help="holds eval/dev.jsonl")
    args = parser.parse_args()
    shared = args.shared if args.shared.is_dir() else None
    if shared is None:
        print(f"quality: {args.shared} is not here (the dev set lives beside the repository): skipped", file=sys.stderr)
    rows = measure(shared)
    encoder = Settings().encoder_runtime
    command = " ".join(["flock /tmp/aiqa-bench.lock .venv/bin/python bench/quality.py", *sys.argv[1:]])
    data = {"command": command, "encoder": encoder, "sets": rows}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
