"""What Kiwi's load options cost in memory, and whether they change its analysis.

Usage: flock /tmp/aiqa-bench.lock .venv/bin/python bench/kiwi_memory.py [--json bench/results/kiwi_memory.json]
       [--korquad DIR]

Each option set loads Kiwi in a fresh process, analyses every line of the bundled report and of
the KorQuAD articles (../shared/eval/korquad/corpus), and reports the process's resident memory
that Kiwi added (VmRSS after the analysis less VmRSS before the import of Kiwi) and how many
lines come out with other morphemes than with Kiwi's defaults.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
KORQUAD = REPO.parent / "shared" / "eval" / "korquad" / "corpus"
OPTIONS = [
    {},
    {"load_typo_dict": False},
    {"load_typo_dict": False, "load_multi_dict": False},  # what aiqa.text.korean loads
    {"load_typo_dict": False, "load_multi_dict": False, "load_default_dict": False},
]
CHILD = r"""
import json, sys, warnings
from pathlib import Path
warnings.simplefilter("ignore")
def rss():
    status = Path("/proc/self/status").read_text().splitlines()
    return int(next(l for l in status if l.startswith("VmRSS:")).split()[1]) // 1024
before = rss()
from kiwipiepy import Kiwi
kiwi = Kiwi(**json.loads(sys.argv[1]))
files = [f for p in sys.argv[2:] for f in sorted(Path(p).glob("*.txt"))]
lines = [l for f in files for l in f.read_text(encoding="utf-8").splitlines()]
out = [[(t.form, t.tag) for t in kiwi.tokenize(l)] for l in lines]
print(json.dumps({"kiwi_mb": rss() - before, "analysis": out}, ensure_ascii=False))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--json", type=Path, default=REPO / "bench/results/kiwi_memory.json")
    parser.add_argument("--korquad", type=Path, default=KORQUAD, help="folder of the KorQuAD articles")
    args = parser.parse_args()
    if not args.korquad.is_dir():
        print(f"kiwi_memory: {args.korquad} is not here: the bundled report only", file=sys.stderr)
    folders = [str(REPO / "corpus"), *([str(args.korquad)] if args.korquad.is_dir() else [])]
    rows, base = [], None
    for options in OPTIONS:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, json.dumps(options), *folders], capture_output=True, text=True, check=True
        )
        got = json.loads(done.stdout)
        base = base or got["analysis"]
        changed = sum(a != b for a, b in zip(base, got["analysis"], strict=True))
        rows.append({"options": options, "kiwi_mb": got["kiwi_mb"], "lines": len(base), "lines_changed": changed})
        print(f"kiwi {json.dumps(options)}: {got['kiwi_mb']} MB, {changed} of {len(base)} lines analysed otherwise")
    command = " ".join(["flock /tmp/aiqa-bench.lock .venv/bin/python bench/kiwi_memory.py", *sys.argv[1:]])
    args.json.write_text(json.dumps({"command": command, "rows": rows}, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
