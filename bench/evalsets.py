"""Which question sets a benchmark reads: the ones named on its command line, else its defaults.

The project's dev set lives beside the repository, in ../shared/eval/dev.jsonl, and a fresh clone
does not have it: a benchmark then says so and leaves it out, or stops cleanly when nothing is left.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from aiqa.errors import AiqaError
from aiqa.evaluate import Case, load_cases

REPO = Path(__file__).resolve().parents[1]
DEV_SET = str(REPO.parent / "shared" / "eval" / "dev.jsonl")
BENCH_SET = str(REPO / "bench" / "questions.jsonl")
SHIPPED = "tests/data/report_questions.jsonl"


def question_files(given: Sequence[str], defaults: Sequence[str] = (DEV_SET,)) -> list[Path]:
    """Return the files named on the command line, else the defaults that exist; exit 0 when none does."""
    if given:
        return [Path(name) for name in given]
    bench = Path(sys.argv[0]).name
    for name in defaults:
        if not Path(name).exists():
            print(f"{bench}: {name} is not here (the dev set lives beside the repository): skipped", file=sys.stderr)
    found = [Path(name) for name in defaults if Path(name).exists()]
    if not found:
        print(f"{bench}: nothing to measure: pass a question set, e.g. {SHIPPED}", file=sys.stderr)
        raise SystemExit(0)
    return found


def read_cases(paths: Sequence[Path]) -> list[Case]:
    """Read every question of the files; exit with the one-line reason when one cannot be read."""
    try:
        return [case for path in paths for case in load_cases(path)]
    except AiqaError as exc:
        raise SystemExit(f"{Path(sys.argv[0]).name}: {exc}") from None
