"""Fit the bundled answer decision (src/aiqa/answer/decision.json) and report it on held-out questions.

Usage: .venv/bin/python scripts/fit_decision.py [--korquad ../shared/eval/korquad] [--work .cache/calibration]
                                               [--out src/aiqa/answer/decision.json]

Data, split by a hash of each name so that the split never depends on the order of files:
- KorQuAD articles (Korean Wikipedia) fall into four groups: fit/indexed, fit/withheld,
  report/indexed, report/withheld. One index holds the indexed articles of both halves.
  Questions about indexed articles are answerable; questions about withheld ones are not.
- The bundled report (corpus/) with bench/report_calibration.jsonl and bench/questions.jsonl:
  questions written for calibration, answerable and not, split into fit and report halves by id.
The models are fitted on the fit halves only; the table shows both halves. The seed dev set is
never read here.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path

from aiqa.calibrate import collect, fit, measure
from aiqa.config import Settings
from aiqa.engine import Engine
from aiqa.evaluate import load_cases
from aiqa.index import build_index

REPO = Path(__file__).resolve().parents[1]
GROUPS = ("fit_in", "fit_out", "report_in", "report_out")
# The bundled report's questions are few beside KorQuAD's: weigh them up so the fit sees both kinds
# of document (prose articles; tables, bullets and callouts) about equally.
REPORT_WEIGHT = 16.0
REPORT_SETS = ("report_calibration.jsonl", "questions.jsonl")


def group(name: str, groups: tuple[str, ...]) -> str:
    return groups[int(hashlib.sha256(name.encode()).hexdigest(), 16) % len(groups)]


def korquad_engine(korquad: Path, work: Path) -> tuple[Engine, dict[str, str]]:
    """An engine over the indexed KorQuAD articles (built once, then reused), and each article's group."""
    split = {p.name: group(p.name, GROUPS) for p in sorted((korquad / "corpus").glob("*.txt"))}
    corpus = work / "korquad" / "corpus"
    if corpus.exists():
        shutil.rmtree(corpus)
    corpus.mkdir(parents=True)
    for name, g in split.items():
        if g.endswith("_in"):
            shutil.copy(korquad / "corpus" / name, corpus / name)
    settings = Settings(corpus_dir=corpus, index_dir=work / "korquad" / "index")
    build_index(settings, progress=sys.stderr.isatty())
    return Engine(settings), split


def query_vectors(engine: Engine, questions: list[str], work: Path) -> dict[str, object]:
    """Query vectors of the questions, kept in the work folder per model so that a refit skips them."""
    model = hashlib.sha256(engine.current_index().model.encode()).hexdigest()[:12]
    path = work / f"query-vectors-{model}.pkl"
    cached = pickle.loads(path.read_bytes()) if path.exists() else {}
    missing = [q for q in dict.fromkeys(questions) if q not in cached]
    if missing:
        cached.update(zip(missing, engine.embedder.embed_queries(missing), strict=True))
        path.write_bytes(pickle.dumps(cached))
    return cached


def report_engine(work: Path, embedder) -> Engine:
    settings = Settings(corpus_dir=REPO / "corpus", index_dir=work / "report" / "index")
    build_index(settings, embedder_factory=lambda: embedder)
    engine = Engine(settings)
    engine._embedder = embedder
    return engine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--korquad", type=Path, default=REPO.parent / "shared" / "eval" / "korquad")
    parser.add_argument("--work", type=Path, default=REPO / ".cache" / "calibration")
    parser.add_argument("--out", type=Path, default=REPO / "src" / "aiqa" / "answer" / "decision.json")
    args = parser.parse_args()
    if not (args.korquad / "questions.jsonl").exists():
        sys.exit(f"fit_decision: no KorQuAD calibration set in {args.korquad}: pass --korquad DIR")

    engine, split = korquad_engine(args.korquad, args.work)
    cases = load_cases(args.korquad / "questions.jsonl")
    # The held-out half as its own question file, for `aiqa eval` on the same index.
    held_out = args.work / "korquad" / "report.jsonl"
    with held_out.open("w", encoding="utf-8") as out:
        for line in (args.korquad / "questions.jsonl").read_text(encoding="utf-8").splitlines():
            if line.strip() and split[json.loads(line)["file"]].startswith("report"):
                out.write(line + "\n")
    vectors = query_vectors(engine, [c.q for c in cases], args.work)
    korquad = {
        g: collect(engine, [c for c in cases if split[c.file or ""].startswith(g)], vectors=vectors)
        for g in ("fit", "report")
    }

    report_cases = [c for name in REPORT_SETS for c in load_cases(REPO / "bench" / name)]
    seed = report_engine(args.work, engine.embedder)
    halves = {h: [c for c in report_cases if group(c.id, ("fit", "report")) == h] for h in ("fit", "report")}
    report = {h: collect(seed, halves[h], weight=REPORT_WEIGHT) for h in halves}

    about = {
        "fitted": datetime.now(UTC).strftime("%Y-%m-%d"),
        "by": "scripts/fit_decision.py",
        "on": f"KorQuAD 1.0 dev calibration articles, fit half ({len(korquad['fit'])} questions); "
        f"{' and '.join(REPORT_SETS)} in bench/, fit half ({len(report['fit'])} questions)",
    }
    decision = fit(korquad["fit"] + report["fit"], about=about)
    args.out.write_text(json.dumps(decision.as_json(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")

    print(
        f"{'set':<22}{'answerable':>11}{'unanswerable':>13}{'answer hit':>11}{'false abst.':>12}"
        f"{'refusals':>9}{'selection':>10}"
    )
    for name, examples in (
        ("KorQuAD fit", korquad["fit"]),
        ("KorQuAD report", korquad["report"]),
        ("report questions fit", report["fit"]),
        ("report questions rep.", report["report"]),
    ):
        m = measure(examples, decision)
        print(
            f"{name:<22}{m['answerable']:>11}{m['unanswerable']:>13}{m['answer_hit']:>11.3f}"
            f"{m['false_abstentions']:>12.3f}{m['refusals']:>9.3f}{m['selection']:>10.3f}"
        )
    print(f"threshold {decision.answer.threshold:.3f}; written to {args.out}")
    print(f"held-out KorQuAD questions: {held_out} (aiqa eval {held_out} --index {engine.settings.index_dir})")


if __name__ == "__main__":
    main()
