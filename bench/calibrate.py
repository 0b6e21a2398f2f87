"""Print the abstention signals of every question in eval sets, to place the thresholds.

Usage: .venv/bin/python bench/calibrate.py EVAL.jsonl [MORE.jsonl ...]   (reads index/ or $AIQA_INDEX)
Each row: whether the question is answerable, whether aiqa abstained, and the signals behind it.
"""

from __future__ import annotations

import sys

from aiqa.config import Settings
from aiqa.engine import Engine
from evalsets import question_files, read_cases

COLUMNS = (
    "dense",
    "coverage",
    "in_corpus",
    "novel",
    "asks_number",
    "quantity_in_evidence",
    "unknown_names",
    "names_in_evidence",
)


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:>9.3f}"
    if isinstance(value, list):
        return f"{','.join(value)[:9]:>9}"
    return f"{value!s:>9}"


def main() -> None:
    cases = read_cases(question_files(sys.argv[1:]))
    engine = Engine(Settings()).load()
    print(f"{'id':<5} {'ans':<3} {'abst':<4} " + " ".join(f"{c[:9]:>9}" for c in COLUMNS) + "  question")
    for case in cases:
        answer, _, _ = engine.ask(case.q, 6)
        s = answer.signals
        wrong = "!" if answer.abstained == case.answerable else " "
        print(
            f"{case.id:<5} {'yes' if case.answerable else 'no':<3} {str(answer.abstained)[0]:<3}{wrong} "
            + " ".join(_cell(s.get(c)) for c in COLUMNS)
            + f"  {case.q}"
        )


if __name__ == "__main__":
    main()
