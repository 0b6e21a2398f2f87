"""What the access filter costs a question: p50/p95 with 0 %, 10 % and 50 % of the chunks restricted.

Usage: flock /tmp/aiqa-bench.lock .venv/bin/python bench/access.py [--copies 20] [--rounds 3] [--json out.json]

The corpus is the bundled report, bench/documents/corpus and tests/data/company copied into
`--copies` folders (d00/, d01/, ...), indexed once with the real model; the rules file then
restricts the first 0 %, 10 % or 50 % of the folders to a group (a rules change alone re-embeds
nothing). For each share, side by side on the same index: a reader who may read everything (no
filter: the whole version) and a reader of the public documents only (their view: the masked dense
search, their own postings and statistics), both on the same questions, after one warm-up round;
and the one-off cost of building that reader's view. Both dense layouts are measured: exact
search (the default below AIQA_ANN_THRESHOLD) and the HNSW graph.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from aiqa.build import build_index
from aiqa.config import Settings
from aiqa.embedders.registry import load_embedder
from aiqa.engine import Engine
from aiqa.evaluate import load_cases, percentile
from evalsets import REPO

SOURCES = [REPO / "corpus", REPO / "bench" / "documents" / "corpus", REPO / "tests" / "data" / "company"]
QUESTIONS = [REPO / "tests" / "data" / "report_questions.jsonl", REPO / "bench" / "documents" / "questions.jsonl"]
SHARES = (0.0, 0.1, 0.5)


class Remembering:
    """The real embedder, remembering passages it embedded: the HNSW build reuses them."""

    def __init__(self, inner):
        self.inner = inner
        self.name = inner.name
        self.seen: dict[str, object] = {}

    def embed_passages(self, texts, *, batch_size: int = 32, progress: bool = False):
        import numpy as np

        todo = [t for t in dict.fromkeys(texts) if t not in self.seen]
        if todo:
            for text, vector in zip(todo, self.inner.embed_passages(todo), strict=True):
                self.seen[text] = vector
        return np.vstack([self.seen[t] for t in texts])

    def embed_queries(self, texts):
        return self.inner.embed_queries(texts)


def make_corpus(folder: Path, copies: int) -> list[str]:
    names = []
    for i in range(copies):
        name = f"d{i:02d}"
        for source in SOURCES:
            shutil.copytree(source, folder / name / source.name, dirs_exist_ok=True)
        names.append(name)
    return names


def timed(engine: Engine, questions: list[str], groups, rounds: int) -> list[float]:
    for q in questions:
        engine.ask(q, 5, None, groups)  # warm-up: the view is built here, once
    out = []
    for _ in range(rounds):
        for q in questions:
            start = time.perf_counter()
            engine.ask(q, 5, None, groups)
            out.append((time.perf_counter() - start) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--copies", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    base = Settings()
    embedder = Remembering(load_embedder(base.embed_model, base.cache_dir, base.encoder_runtime))
    questions = [c.q for path in QUESTIONS for c in load_cases(path)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folders = make_corpus(root / "corpus", args.copies)
        for layout, threshold in (("exact", 10_000_000), ("hnsw", 1)):
            settings = replace(
                base, corpus_dir=root / "corpus", index_dir=root / f"index-{layout}", ann_threshold=threshold
            )
            for share in SHARES:
                restricted = folders[: round(share * len(folders))]
                rules = "folders = false\n[groups]\n" + "".join(f'"{d}/**" = ["restricted"]\n' for d in restricted)
                (settings.corpus_dir / ".access.toml").write_text(rules, encoding="utf-8")
                report = build_index(settings, embedder_factory=lambda: embedder)
                engine = Engine(settings, embedder=embedder, generator=None).load()
                everything = timed(engine, questions, None, args.rounds)
                start = time.perf_counter()
                engine.index_for(frozenset())
                view_ms = (time.perf_counter() - start) * 1000
                public = timed(engine, questions, frozenset(), args.rounds)
                rows.append(
                    {
                        "layout": layout,
                        "restricted": share,
                        "chunks": report.chunks,
                        "view_build_ms": round(view_ms, 1),
                        "all_p50": round(statistics.median(everything), 1),
                        "all_p95": round(percentile(everything, 0.95), 1),
                        "public_p50": round(statistics.median(public), 1),
                        "public_p95": round(percentile(public, 0.95), 1),
                        "questions": len(public),
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
    print(
        f"\n{'layout':<7}{'restricted':>11}{'chunks':>8}{'view build':>12}{'p50 all':>10}{'p50 public':>12}{'ratio':>7}"
        f"{'p95 all':>10}{'p95 public':>12}"
    )
    for r in rows:
        ratio = r["public_p50"] / r["all_p50"] if r["all_p50"] else 0.0
        print(
            f"{r['layout']:<7}{r['restricted']:>10.0%}{r['chunks']:>8}{r['view_build_ms']:>10.0f}ms"
            f"{r['all_p50']:>8.1f}ms{r['public_p50']:>10.1f}ms{ratio:>7.2f}{r['all_p95']:>8.1f}ms{r['public_p95']:>10.1f}ms"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
