"""Print the answer decision's features and probability for every question in eval sets.

Usage: .venv/bin/python bench/calibrate.py EVAL.jsonl [MORE.jsonl ...]   (reads index/ or $AIQA_INDEX)
Each row: whether the question is answerable, whether aiqa abstained, and the features behind it
(src/aiqa/answer/decision.py); scripts/fit_decision.py fits the decision itself.
"""

from __future__ import annotations

import sys

from aiqa.config import Settings
from aiqa.engine import Engine
from evalsets import question_files, read_cases

COLUMNS = (
    "probability",
    "selection",
    "coverage_context",
    "coverage_chunk",
    "names",
    "type_absent",
    "dense_top",
    "known",
    "unknown_names",
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
        answer = engine.ask(case.q, 6).answer
        s = answer.signals
        wrong = "!" if answer.abstained == case.answerable else " "
        print(
            f"{case.id:<5} {'yes' if case.answerable else 'no':<3} {str(answer.abstained)[0]:<3}{wrong} "
            + " ".join(_cell(s.get(c)) for c in COLUMNS)
            + f"  {case.q}"
        )


if __name__ == "__main__":
    main()
