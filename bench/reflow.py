"""Measure the re-flow of PDF-like text: spacing at line breaks, clean text unchanged, retrieval before/after.

Usage (from the repository root, PYTHONPATH=src):
    .venv/bin/python bench/reflow.py glue [--articles N]
        Where Korean text was hard-wrapped at 37 characters (KorQuAD articles, the space at a break
        dropped as extraction does), how often each way of joining the lines puts the space back
        right: never, always, Kiwi.glue, Kiwi.space over a window, and aiqa's rules + Kiwi.space.
    .venv/bin/python bench/reflow.py korquad
        Every clean KorQuAD article reads and chunks byte-identically with and without the re-flow;
        the same articles hard-wrapped with page numbers and a running header come back to their
        paragraphs.
    flock /tmp/aiqa-bench.lock .venv/bin/python bench/reflow.py eval [--json OUT]
        Index a copy of the realistic documents twice, with the re-flow switched off (before) and
        on (after), run `aiqa eval --json` on the fit and report halves, and print hit@1 / hit@5
        ("recall@1/@5": answerable questions) and answer accuracy per question kind; absent
        questions count as right when refused. About 4 minutes on 2 cores.
    flock /tmp/aiqa-bench.lock .venv/bin/python bench/reflow.py wrapped [--articles 10]
        The same before/after on KorQuAD articles hard-wrapped at 37 characters with "- N -" page
        numbers and a running header (tests/pdflike.py), with their questions.

`--realistic` and `--korquad` point at the shared sets (default ../shared/eval/...).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.pdflike makes the PDF-like variants
sys.path.insert(0, str(REPO / "src"))

from tests.pdflike import hard_wrap, paragraphs, squash  # noqa: E402

from aiqa.chunk import chunk_document  # noqa: E402
from aiqa.ingest import read_document  # noqa: E402
from aiqa.ingest.text import decode, normalize_newlines  # noqa: E402
from aiqa.records import Document  # noqa: E402
from aiqa.text.korean import _kiwi  # noqa: E402
from aiqa.text.reflow import join_rule, kiwi_spaces, reflow_if_extracted  # noqa: E402
from aiqa.text.tokens import count_tokens  # noqa: E402

# The project's eval sets beside the checkout (--realistic and --korquad name others).
SHARED = REPO.parent / "shared" / "eval"
# Switches the re-flow off in every process of a run (the CLI reads files in a worker process):
# a sitecustomize module on PYTHONPATH runs at each interpreter's start.
OFF = (
    "import aiqa.text.reflow as r\n"
    "r.reflow = lambda text, pages=(): r.Reflowed(text, text, pages=tuple(pages))\n"
    "r.reflow_if_extracted = lambda text: r.Reflowed(text, text)\n"
)


def wrapped_breaks(paragraph: str, width: int = 37) -> tuple[list[str], list[bool]]:
    """Cut a paragraph every `width` characters; whether the writer had a space at each cut."""
    lines, spaces, rest = [], [], paragraph
    while len(rest) > width:
        cut, rest = rest[:width], rest[width:]
        spaces.append(cut.endswith(" ") or rest.startswith(" "))
        lines.append(cut.rstrip())
        rest = rest.lstrip(" ")
    return [*lines, rest], spaces


def glue(args: argparse.Namespace) -> dict:
    files = sorted((args.korquad / "corpus").glob("*.txt"))[: args.articles]
    cases = [wrapped_breaks(p) for f in files for p in paragraphs(f.read_text(encoding="utf-8")) if len(p) > 200]
    kiwi = _kiwi()

    def ours(lines: list[str]) -> list[bool]:
        pairs = list(itertools.pairwise(lines))
        rules = [join_rule(a, b) for a, b in pairs]
        asked = iter(kiwi_spaces([p for p, r in zip(pairs, rules, strict=True) if r is None]))
        return [r if r is not None else next(asked) for r in rules]

    methods = {
        "never a space": lambda lines: [False] * (len(lines) - 1),
        "always a space": lambda lines: [True] * (len(lines) - 1),
        "Kiwi.glue(lines)": lambda lines: list(kiwi.glue(lines, return_space_insertions=True)[1]),
        "Kiwi.space, 12 chars either side": lambda lines: kiwi_spaces(list(itertools.pairwise(lines))),
        "aiqa: rules, then Kiwi.space": ours,
    }
    breaks = sum(len(s) for _, s in cases)
    out = {"articles": len(files), "paragraphs": len(cases), "breaks": breaks, "methods": {}}
    print(f"{len(cases)} paragraphs of {len(files)} KorQuAD articles wrapped at 37 characters: {breaks} breaks")
    for name, method in methods.items():
        right = spaced_wrongly = glued_wrongly = 0
        for lines, truth in cases:
            for guess, real in zip(method(lines), truth, strict=True):
                right += guess == real
                spaced_wrongly += guess and not real
                glued_wrongly += real and not guess
        out["methods"][name] = {"right": right, "space_inside_word": spaced_wrongly, "words_glued": glued_wrongly}
        print(f"  {name:34s} right {right / breaks:.3f}  space in a word {spaced_wrongly:4d}  glued {glued_wrongly:4d}")
    return out


def korquad(args: argparse.Namespace) -> dict:
    files = sorted((args.korquad / "corpus").glob("*.txt"))
    same_text = same_chunks = back = 0
    units_wrapped_off = units_wrapped_on = 0
    for f in files:
        data = f.read_bytes()
        raw = normalize_newlines(decode(data))
        doc = read_document(f, f.parent, max_bytes=10**8)
        same_text += doc.text == raw
        plain = Document(doc.source, raw, doc.sha256)
        same_chunks += chunk_document(doc, count_tokens) == chunk_document(plain, count_tokens)
        wrapped = hard_wrap(raw, width=37, page_lines=30, header=f"위키백과 문서 모음 · {f.stem[:20]}")
        flowed = reflow_if_extracted(wrapped)
        expected = [squash(p) for p in paragraphs(raw)]
        got = "".join(squash(p) for p in paragraphs(flowed.text))
        header = squash(wrapped.split("\n", 1)[0])
        back += got == header + "".join(expected)
        units_wrapped_off += len(chunk_document(Document(f.name, wrapped, ""), count_tokens))
        units_wrapped_on += len(chunk_document(Document(f.name, flowed.text, ""), count_tokens))
    out = {
        "articles": len(files),
        "text_identical": same_text,
        "chunks_identical": same_chunks,
        "wrapped_back_to_paragraphs": back,
        "wrapped_chunks_before": units_wrapped_off,
        "wrapped_chunks_after": units_wrapped_on,
    }
    print(json.dumps(out, ensure_ascii=False))
    return out


def run_cli(argv: list[str], env: dict[str, str]) -> str:
    cli = [sys.executable, "-m", "aiqa.cli", *argv]
    done = subprocess.run(cli, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"aiqa {' '.join(argv)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def per_kind(questions: Path, report: dict) -> dict[str, dict]:
    kinds = {}
    for line in questions.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            kinds[row["id"]] = row.get("kind", "korquad")
    table: dict[str, dict] = defaultdict(lambda: {"n": 0, "hit@1": 0, "hit@5": 0, "right": 0})
    for case in report["cases"]:
        for kind in (kinds[case["id"]], "all answerable" if case["answerable"] else "all absent"):
            row = table[kind]
            row["n"] += 1
            if case["answerable"]:
                row["hit@1"] += case["rank"] == 1
                row["hit@5"] += case["rank"] is not None and case["rank"] <= 5
                row["right"] += case["correct"]
            else:
                row["right"] += case["abstained"]
    return dict(table)


def before_after(documents: dict[str, str], halves: dict[str, Path]) -> dict:
    """Index `documents` (name -> text) with the re-flow off, then on; eval each question file."""
    out: dict = {}
    for mode in ("before", "after"):
        with tempfile.TemporaryDirectory(prefix=f"reflow-{mode}-") as tmp:
            corpus, index, shim = Path(tmp) / "corpus", Path(tmp) / "index", Path(tmp) / "shim"
            corpus.mkdir()
            shim.mkdir()
            if mode == "before":
                (shim / "sitecustomize.py").write_text(OFF, encoding="utf-8")
            for name, text in documents.items():
                (corpus / name).write_text(text, encoding="utf-8")
            env = {**os.environ, "AIQA_CORPUS": str(corpus), "AIQA_INDEX": str(index)}
            env["PYTHONPATH"] = os.pathsep.join([str(shim), str(REPO / "src"), env.get("PYTHONPATH", "")])
            build = json.loads(run_cli(["index", "--json"], env).strip().splitlines()[-1])
            out[mode] = {"chunks": build.get("chunks"), "halves": {}}
            for half, questions in halves.items():
                report = json.loads(run_cli(["eval", str(questions), "--json"], env))
                out[mode]["halves"][half] = {
                    "recall@1": report["recall@1"],
                    "recall@5": report["recall@5"],
                    "answer_accuracy": report["answer_accuracy"],
                    "abstention_accuracy": report["abstention_accuracy"],
                    "false_abstentions": report["false_abstentions"],
                    "verbatim_quotes": report["verbatim_quotes"],
                    "kinds": per_kind(questions, report),
                    "cases": [{k: c[k] for k in ("id", "rank", "abstained", "correct")} for c in report["cases"]],
                }
    for half in halves:
        print(f"\n{half} — before → after (counts; absent: refused)")
        print(f"{'kind':16s} {'n':>4s}  {'hit@1':>11s}  {'hit@5':>11s}  {'right':>11s}")
        kinds = out["after"]["halves"][half]["kinds"]
        for kind in sorted(kinds, key=lambda k: (k.startswith("all"), k)):
            b, a = out["before"]["halves"][half]["kinds"][kind], kinds[kind]
            cells = [f"{b[m]:>4d} → {a[m]:<4d}" if not kind.endswith("absent") else "" for m in ("hit@1", "hit@5")]
            print(f"{kind:16s} {a['n']:4d}  {cells[0]:>11s}  {cells[1]:>11s}  {b['right']:>4d} → {a['right']:<4d}")
    print(f"\nchunks: {out['before']['chunks']} → {out['after']['chunks']}")
    return out


def evaluate(args: argparse.Namespace) -> dict:
    split = Path(tempfile.mkdtemp(prefix="reflow-q-"))
    check = args.realistic / "check_realistic.py"
    subprocess.run([sys.executable, str(check), "--split", str(split)], check=True, capture_output=True)
    files = [*args.realistic.glob("*.txt"), *args.realistic.glob("*.md")]
    documents = {f.name: f.read_text(encoding="utf-8") for f in files if f.name != "README.md"}
    return before_after(documents, {"fit half": split / "fit.jsonl", "report half": split / "report.jsonl"})


def wrapped(args: argparse.Namespace) -> dict:
    """KorQuAD articles hard-wrapped at 37 characters with page numbers and a running header."""
    files = sorted((args.korquad / "corpus").glob("*.txt"))[: args.articles]
    documents = {
        f.name: hard_wrap(
            f.read_text(encoding="utf-8"), width=37, page_lines=30, header=f"위키백과 문서 모음 · {f.stem}"
        )
        for f in files
    }
    questions = Path(tempfile.mkdtemp(prefix="reflow-kq-")) / "questions.jsonl"
    lines = (args.korquad / "questions.jsonl").read_text(encoding="utf-8").splitlines()
    keep = [line for line in lines if line.strip() and json.loads(line)["file"] in documents]
    questions.write_text("\n".join(keep) + "\n", encoding="utf-8")
    return before_after(documents, {"wrapped KorQuAD": questions})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("glue", "korquad", "eval", "wrapped"))
    parser.add_argument("--realistic", type=Path, default=SHARED / "realistic")
    parser.add_argument("--korquad", type=Path, default=SHARED / "korquad")
    parser.add_argument("--articles", type=int, default=20, help="glue, wrapped: how many KorQuAD articles")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    result = {"glue": glue, "korquad": korquad, "eval": evaluate, "wrapped": wrapped}[args.what](args)
    if args.json:
        args.json.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
