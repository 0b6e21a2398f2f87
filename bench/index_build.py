"""Time full, no-change and one-document index builds on a generated corpus; prints a table.

Usage: .venv/bin/python bench/index_build.py [--docs N]
The corpus is N copies of the bundled report, each with its facts renumbered so no two are equal.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

from aiqa.config import Settings
from aiqa.index import build_index

REPORT = Path(__file__).resolve().parents[1] / "corpus" / "us-china-ai-race.txt"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=20)
    args = parser.parse_args()
    text = REPORT.read_text(encoding="utf-8")
    root = Path(tempfile.mkdtemp(prefix="aiqa-bench-"))
    try:
        corpus = root / "corpus"
        corpus.mkdir()
        for n in range(args.docs):
            (corpus / f"report-{n:03d}.txt").write_text(text.replace("2025", str(2025 + n)), encoding="utf-8")
        settings = Settings(corpus_dir=corpus, index_dir=root / "index")

        rows = []
        t = time.perf_counter()
        full = build_index(settings)
        rows.append(("full build (model load included)", time.perf_counter() - t, full))
        t = time.perf_counter()
        same = build_index(settings)
        rows.append(("no change (no model load)", time.perf_counter() - t, same))
        (corpus / "report-000.txt").write_text(text + "\n추가 문단입니다.\n", encoding="utf-8")
        t = time.perf_counter()
        one = build_index(settings)
        rows.append(("one document changed", time.perf_counter() - t, one))

        size = sum(p.stat().st_size for p in (root / "index").rglob("*") if p.is_file()) / 1e6
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{args.docs} documents, {full.chunks} chunks; index on disk {size:.1f} MB; peak RSS {rss:.0f} MB")
        print(f"{'build':<34} {'seconds':>8} {'embedded':>9} {'chunks/s':>9}")
        for name, seconds, report in rows:
            rate = report.embedded_chunks / seconds if report.embedded_chunks else 0
            print(f"{name:<34} {seconds:8.2f} {report.embedded_chunks:9d} {rate:9.1f}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
