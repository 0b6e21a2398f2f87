"""Check the office calibration set (second set): format, ids, gold strings, question/document overlap.

Run from anywhere:  python3 check.py [questions.jsonl] [--split DIR]
Exits 1 on any failure. Standard library only. With --split DIR (a folder outside this one), after a
clean check it writes DIR/fit.jsonl and DIR/report.jsonl: the questions split by document (FIT and
REPORT below).

Checks
- every line is a JSON object with exactly the keys id, q, gold, must, answerable, kind, file;
  ids look like b001 and are unique; kinds are known; every question names a document of this folder;
- answerable lines have 1-3 gold strings of 3-30 characters and a kind other than "absent";
  unanswerable lines have gold [] and kind "absent" (whether the asked fact is really missing from
  every document cannot be checked by a script: that was judged by reading, see README.md);
- every gold string occurs in its file once all whitespace is removed (so a string broken by a line
  wrap or by letter spacing still matches);
- no question shares 15 or more consecutive non-space characters with ANY document, so a question
  cannot be answered by string matching;
- every document is in exactly one half of the split, and each half has unanswerable questions;
- prints counts per kind, per file and per half; warns when a document is outside 2-6 KB.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
DOC_SUFFIXES = {".txt", ".md"}
SKIP = {"README.md"}
OVERLAP = 15
KEYS = {"id", "q", "gold", "must", "answerable", "kind", "file"}
KINDS = {"fact", "why", "list", "article", "who", "howto", "compare", "when-where", "english", "absent"}
MIN_BYTES, MAX_BYTES = 2000, 6 * 1024

# The fixed split by document: fit (calibrate, tune) on FIT, report numbers on REPORT. Each half mixes
# shapes: a regulation-like text with article lookups, a PDF-shaped or bill-shaped text, a Markdown
# document, English questions and unanswerable ones. The English-language document is in REPORT.
FIT = {
    "당직및비상근무규정.txt",  # regulation with 별표
    "통합예약상담센터_기안.txt",  # 기안문 extracted from a PDF
    "환자안전위원회_제2차회의록.md",  # meeting minutes
    "복지포인트_FAQ.txt",  # FAQ
    "응급의료센터_상반기운영보고.md",  # report with tables
}
REPORT = {
    "보육지원규정_개정안.txt",  # 개정안 with 신구조문대비표
    "헌혈행사안내.txt",  # notice
    "slabel_README.md",  # software README
    "의료기기고장_처리절차서.txt",  # procedure
    "observership_guidelines.md",  # English guideline
}


@dataclass(frozen=True)
class QuestionSet:
    """A folder of documents with its questions: the id prefix, the kinds allowed, the split by document."""

    here: Path
    prefix: str
    kinds: frozenset[str]
    fit: frozenset[str]
    report: frozenset[str]


OFFICE = QuestionSet(HERE, "b", frozenset(KINDS), frozenset(FIT), frozenset(REPORT))


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def longest_common_run(a: str, b: str) -> str:
    """Longest common substring of a and b (a is short: a question)."""
    best = ""
    for i in range(len(a)):
        lo = len(best) + 1
        while i + lo <= len(a) and a[i : i + lo] in b:
            best = a[i : i + lo]
            lo += 1
    return best


def write_split(rows: list[dict], out: Path, qs: QuestionSet = OFFICE) -> None:
    out = out.resolve()
    if out == qs.here or qs.here in out.parents:
        raise SystemExit(f"--split {out}: choose a folder outside {qs.here} (its .md files would join the corpus)")
    out.mkdir(parents=True, exist_ok=True)
    for name, files in (("fit", qs.fit), ("report", qs.report)):
        part = [r for r in rows if r.get("file") in files]
        (out / f"{name}.jsonl").write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in part), encoding="utf-8"
        )
        print(f"wrote {out / (name + '.jsonl')}: {len(part)} questions")


def check(argv: list[str], qs: QuestionSet = OFFICE) -> int:
    """Check the set `qs` (this folder's by default) with the command line `argv`; the exit status."""
    args = list(argv[1:])
    split_dir = None
    if "--split" in args:
        i = args.index("--split")
        if i + 1 >= len(args):
            print("--split needs a folder")
            return 2
        split_dir = Path(args[i + 1])
        del args[i : i + 2]
    qpath = Path(args[0]) if args else qs.here / "questions.jsonl"
    docs = {
        p.name: p.read_text(encoding="utf-8")
        for p in sorted(qs.here.iterdir())
        if p.suffix in DOC_SUFFIXES and p.name not in SKIP
    }
    flat = {name: squeeze(text) for name, text in docs.items()}
    errors: list[str] = []
    notes: list[str] = []
    rows: list[dict] = []
    kinds: Counter[str] = Counter()
    files: Counter[str] = Counter()
    answerable: Counter[bool] = Counter()
    seen: set[str] = set()

    # the split must cover every document exactly once
    if qs.fit & qs.report:
        errors.append(f"documents in both halves: {sorted(qs.fit & qs.report)}")
    for name in sorted(set(docs) - qs.fit - qs.report):
        errors.append(f"document {name} is in neither half of the split")
    for name in sorted((qs.fit | qs.report) - set(docs)):
        errors.append(f"split names {name}, which is not in {qs.here}")

    for n, raw in enumerate(qpath.read_text(encoding="utf-8").splitlines(), 1):
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw)
        except json.JSONDecodeError as exc:
            errors.append(f"line {n}: not JSON ({exc})")
            continue
        if not isinstance(rec, dict):
            errors.append(f"line {n}: not a JSON object")
            continue
        if set(rec) != KEYS:
            errors.append(f"line {n}: keys {sorted(rec)}; expected exactly {sorted(KEYS)}")
            continue
        rows.append(rec)
        qid, q, gold, must, kind, fname = (rec["id"], rec["q"], rec["gold"], rec["must"], rec["kind"], rec["file"])
        if not isinstance(qid, str) or not re.fullmatch(rf"{qs.prefix}\d{{3}}", qid):
            errors.append(f"line {n}: id {qid!r} should look like {qs.prefix}001")
        if qid in seen:
            errors.append(f"{qid}: duplicate id")
        seen.add(qid)
        if not isinstance(q, str) or not q.strip():
            errors.append(f"{qid}: empty question")
            continue
        if not isinstance(gold, list) or not all(isinstance(g, str) for g in gold):
            errors.append(f"{qid}: gold must be a list of strings")
            continue
        if must != []:
            errors.append(f"{qid}: must should be [] in this set, has {must!r}")
        if not isinstance(rec["answerable"], bool):
            errors.append(f"{qid}: answerable must be true or false")
        if kind not in qs.kinds:
            errors.append(f"{qid}: kind {kind!r} not one of {sorted(qs.kinds)}")
        kinds[kind] += 1
        answerable[bool(rec["answerable"])] += 1
        if fname not in docs:
            errors.append(f"{qid}: file {fname!r} not in {qs.here}")
            continue
        files[fname] += 1

        if rec["answerable"]:
            if not 1 <= len(gold) <= 3:
                errors.append(f"{qid}: answerable needs 1-3 gold strings, has {len(gold)}")
            if kind == "absent":
                errors.append(f"{qid}: kind absent but answerable")
        else:
            if gold:
                errors.append(f"{qid}: unanswerable but has gold {gold}")
            if kind != "absent":
                errors.append(f"{qid}: unanswerable needs kind 'absent', has {kind!r}")
        for g in gold:
            if not 3 <= len(g) <= 30:
                errors.append(f"{qid}: gold {g!r} is {len(g)} characters (3-30 expected)")
            if squeeze(g) not in flat[fname]:
                errors.append(f"{qid}: gold {g!r} not found in {fname}")
        if kind == "english" and re.search(r"[\uac00-\ud7a3]", q):
            errors.append(f"{qid}: kind english but the question contains Hangul")

        sq = squeeze(q)
        for t in docs:
            run = longest_common_run(sq, flat[t])
            if len(run) >= OVERLAP:
                errors.append(f"{qid}: question shares {len(run)} characters with {t}: {run!r}")

    print(
        f"questions: {sum(answerable.values())} "
        f"(answerable {answerable[True]}, unanswerable {answerable[False]}), ids unique: {len(seen)}"
    )
    print("per kind: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items(), key=lambda kv: (-kv[1], str(kv[0])))))
    print("per file:")
    for name in sorted(docs):
        size = len(docs[name].encode("utf-8"))
        half = "fit" if name in qs.fit else "report" if name in qs.report else "-"
        print(f"  {files.get(name, 0):3d}  {name}  ({size} bytes, {half})")
        if not MIN_BYTES <= size <= MAX_BYTES:
            notes.append(f"warning: {name} is {size} bytes (2-6 KB expected)")
        if not files.get(name):
            notes.append(f"document with no question naming it: {name}")
    for half, names in (("fit", qs.fit), ("report", qs.report)):
        part = [r for r in rows if r.get("file") in names]
        k = Counter(r.get("kind") for r in part)
        print(
            f"{half}: {len(part)} questions ({sum(1 for r in part if r.get('answerable') is True)} answerable; "
            + ", ".join(f"{a} {b}" for a, b in sorted(k.items()))
            + ")"
        )
        if not k.get("absent"):
            errors.append(f"the {half} half has no unanswerable questions")
    for line in notes:
        print("note: " + line)
    if errors:
        print(f"FAILED: {len(errors)} problem(s)")
        for line in errors:
            print("  " + line)
        return 1
    print(
        f"OK: format, unique ids, every gold string found in its document, no question copies "
        f"{OVERLAP}+ characters of any document"
    )
    if split_dir is not None:
        write_split(rows, split_dir, qs)
    return 0


def main(argv: list[str]) -> int:
    return check(argv, OFFICE)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
