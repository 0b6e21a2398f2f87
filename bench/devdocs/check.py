"""Check the devdocs set (Korean software documentation) with the checks of bench/office/check.py.

Run from anywhere:  python3 check.py [questions.jsonl] [--split DIR]
Exits 1 on any failure. Standard library only. The checks (format, ids like d001, gold strings found
in their documents, no question copying 15+ characters of a document, unanswerable questions in each
half) are those bench/office/check.py lists. With --split DIR (a folder outside this one), after a
clean check it writes DIR/fit.jsonl and DIR/report.jsonl: the questions split by document (FIT and
REPORT below).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
KINDS = frozenset({"fact", "why", "list", "who", "howto", "compare", "english", "absent"})

# The fixed split by document: fit (calibrate, tune) on FIT, report numbers on REPORT. Each half has a
# Markdown document with code blocks and tables, English questions and unanswerable ones; FIT also holds
# the PDF-shaped plain text, REPORT the two guides (procedure with rules and FAQ; API reference).
FIT = frozenset(
    {
        "pkgsync_README.md",  # CLI README: install, options table, yaml config, troubleshooting, changelog
        "logpipe_운영매뉴얼.txt",  # operations manual extracted from a PDF (hard wraps, page headers)
    }
)
REPORT = frozenset(
    {
        "배포파이프라인_가이드.md",  # CI/CD user guide: numbered steps, environments table, rules, rollback, FAQ
        "인증API_연동가이드.md",  # API integration guide: endpoints, JSON examples, error codes, limits
    }
)


def office_checks():
    """bench/office/check.py, the checks both sets share."""
    spec = importlib.util.spec_from_file_location("office_check", HERE.parent / "office" / "check.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


if __name__ == "__main__":
    checks = office_checks()
    sys.exit(checks.check(sys.argv, checks.QuestionSet(HERE, "d", KINDS, FIT, REPORT)))
