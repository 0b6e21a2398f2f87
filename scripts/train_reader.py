"""Train the reader: a cross-encoder that reads a question and one candidate statement together.

Usage: .venv/bin/python scripts/train_reader.py collect --korquad DIR [--realistic DIR ...] [--work .cache/calibration]
       .venv/bin/python scripts/train_reader.py train [--epochs 2] [--out ~/.cache/aiqa/reader]
       .venv/bin/python scripts/train_reader.py export [--out ~/.cache/aiqa/reader]

`collect` retrieves for every calibration question with aiqa's own retrieval and candidates (the
engines of scripts/fit_decision.py: KorQuAD's indexed articles, the copies with answer sentences
cut, the English KorQuAD questions, the realistic documents) and keeps, per question, each
candidate's text, section, selection features, answer features (as if it were the best) and label
(it holds a gold string). Both halves are kept; `train` reads the fit halves only, and
bench/reader.py measures on the report halves.

`train` fine-tunes the bundled e5-small encoder (embeddings and the lower layers frozen) with a
linear head on the mean of its last states, on pairs from the fit halves: the statements holding
a gold string are positives; other statements of the retrieved passages, the same statements with
the gold string cut out, and the best statements of questions the documents do not answer are
negatives. A checkpoint is written after each epoch. `export` writes the last one as ONNX, and its
int8 dynamic quantization, beside it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from aiqa.answer.reader import MAX_TOKENS, passage_text, query_text  # noqa: E402

# Negatives per answerable question and per unanswerable one (its best statements by cosine).
NEGATIVES = 7
UNANSWERABLE_NEGATIVES = 4
# The realistic documents' questions are few and of the kinds KorQuAD lacks: repeated this often.
REALISTIC_REPEAT = 4


# ---------------------------------------------------------------------------------------------- collect


def light(examples, name: str, half: str, kinds: dict[str, str]) -> list[dict]:
    """Examples reduced to what training and measuring need (plain data, no index objects)."""
    from aiqa.answer.decision import answer_features
    from aiqa.evaluate import contains

    out = []
    for ex in examples:
        cands = []
        for c in ex.candidates:
            answer = answer_features(ex.question, c, ex.hits, ex.stats, ex.candidates)
            answer.pop("selection")
            cands.append(
                {
                    "text": c.quote,
                    "section": c.hit.chunk.section,
                    "features": dict(c.features),
                    "answer": answer,
                }
            )
        gold = list(ex.case.gold)
        out.append(
            {
                "set": name,
                "half": half,
                "id": ex.case.id,
                "q": ex.case.q,
                "gold": gold,
                "kind": kinds.get(ex.case.id, ""),
                "answerable": ex.answerable,
                "weight": ex.weight,
                "labels": list(ex.labels),
                "candidates": cands,
                # Whether any gold string is in the best passages at all (retrieval found it).
                "found": any(contains(c["text"], g) for c in cands for g in gold),
            }
        )
    return out


def collect_all(args) -> None:
    from fit_decision import (
        GROUPS,
        REALISTIC_WEIGHT,
        REPORT_SETS,
        REPORT_WEIGHT,
        english_cases,
        gapped_engine,
        group,
        korquad_engine,
        query_vectors,
        realistic_engine,
        report_engine,
    )

    from aiqa.calibrate import collect
    from aiqa.evaluate import load_cases

    if args.korquad is None:
        sys.exit("train_reader: collect reads a KorQuAD calibration set: pass --korquad DIR")
    for path in [args.korquad / "questions.jsonl"] + [folder / "questions.jsonl" for folder in args.realistic]:
        if not path.exists():
            sys.exit(f"train_reader: no calibration questions at {path}: pass --korquad DIR and --realistic DIR")
    args.work.mkdir(parents=True, exist_ok=True)
    engine, split = korquad_engine(args.korquad, args.work)
    assert GROUPS == ("fit_in", "fit_out", "report_in", "report_out")
    cases = load_cases(args.korquad / "questions.jsonl")
    english = english_cases(args.english, cases)
    vectors = query_vectors(engine, [c.q for c in cases + english], args.work)
    kinds = {}
    for folder in args.realistic:
        for line in (folder / "questions.jsonl").read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                kinds[row["id"]] = row.get("kind", "")
    records: list[dict] = []
    for half in ("fit", "report"):
        mine = [c for c in cases if split[c.file or ""].startswith(half)]
        for c in mine:
            kinds[c.id] = "withheld" if split[c.file or ""].endswith("_out") else "indexed"
        records += light(collect(engine, mine, vectors=vectors), "korquad", half, kinds)
        mine_en = [c for c in english if split[c.file or ""].startswith(half)]
        for c in mine_en:
            kinds[c.id] = "english-" + ("withheld" if split[c.file or ""].endswith("_out") else "indexed")
        records += light(collect(engine, mine_en, vectors=vectors), "korquad_en", half, kinds)
        print(f"collect: KorQuAD {half} done ({len(records)} questions)", file=sys.stderr)
    gapped, gaps = gapped_engine(args.korquad, args.work, split, cases, 0.25, engine.embedder)
    for half in gaps:
        for c in gaps[half]:
            kinds[c.id] = "cut"
        records += light(collect(gapped, gaps[half], vectors=vectors), "cut", half, kinds)
    report_cases = [c for name in REPORT_SETS for c in load_cases(REPO / "bench" / name)]
    seed = report_engine(args.work, engine.embedder)
    for half in ("fit", "report"):
        mine = [c for c in report_cases if group(c.id, ("fit", "report")) == half]
        records += light(collect(seed, mine, weight=REPORT_WEIGHT), "report", half, kinds)
    for folder in args.realistic:
        office, halves = realistic_engine(folder, args.work, engine.embedder)
        for half in halves:
            records += light(collect(office, halves[half], weight=REALISTIC_WEIGHT), "realistic", half, kinds)
        print(f"collect: {folder.name} done ({len(records)} questions)", file=sys.stderr)
    args.examples.parent.mkdir(parents=True, exist_ok=True)
    args.examples.write_bytes(pickle.dumps(records))
    print(f"collect: {len(records)} questions written to {args.examples}", file=sys.stderr)


# ---------------------------------------------------------------------------------------------- pairs


def cut_gold(text: str, gold: list[str]) -> str | None:
    """The statement with its gold strings cut out, or None when too little is left to read."""
    out = text
    for g in gold:
        out = out.replace(g, " ")
    out = " ".join(out.split())
    return out if len(out) >= 8 and out != text else None


def pairs(records: list[dict], seed: int = 0) -> list[tuple[str, str, float]]:
    """Training pairs (question, passage, label) from the fit halves."""
    rng = random.Random(seed)
    out: list[tuple[str, str, float]] = []
    for r in records:
        if r["half"] != "fit" or not r["candidates"]:
            continue
        q = query_text(r["q"])
        cands = r["candidates"]
        by_dense = sorted(range(len(cands)), key=lambda i: -cands[i]["features"]["statement_dense"])
        mine: list[tuple[str, str, float]] = []
        if r["answerable"] and any(r["labels"]):
            positives = [i for i in range(len(cands)) if r["labels"][i]]
            for i in positives[:2]:
                c = cands[i]
                mine.append((q, passage_text(c["text"], c["section"]), 1.0))
                cut = cut_gold(c["text"], r["gold"])
                if cut:
                    mine.append((q, passage_text(cut, c["section"]), 0.0))
            negatives = [i for i in by_dense if not r["labels"][i]]
            # Half the negatives are the nearest by cosine (hard), half drawn from the rest.
            hard = negatives[: NEGATIVES // 2 + 1]
            rest = negatives[len(hard) :]
            chosen = hard + rng.sample(rest, min(len(rest), NEGATIVES - len(hard)))
            mine += [(q, passage_text(cands[i]["text"], cands[i]["section"]), 0.0) for i in chosen]
        elif not r["answerable"] or r["set"] == "cut":
            mine += [
                (q, passage_text(cands[i]["text"], cands[i]["section"]), 0.0) for i in by_dense[:UNANSWERABLE_NEGATIVES]
            ]
        out += mine * (REALISTIC_REPEAT if r["set"] == "realistic" else 1)
    rng.shuffle(out)
    return out


# ---------------------------------------------------------------------------------------------- model


def base_model_dir() -> Path:
    from aiqa.config import Settings
    from aiqa.embedders.convert import ensure_model

    return ensure_model(Settings().cache_dir)


def build_model(base: Path, trainable_layers: int):
    import torch
    from transformers import AutoModel

    class Reader(torch.nn.Module):
        """e5 encoder, masked mean of the last states, one linear unit: the logit that the passage answers."""

        def __init__(self) -> None:
            super().__init__()
            self.encoder = AutoModel.from_pretrained(str(base), attn_implementation="eager")
            self.head = torch.nn.Linear(self.encoder.config.hidden_size, 1)

        def forward(self, input_ids, attention_mask):
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return self.head(mean).squeeze(-1)

    model = Reader()
    for p in model.encoder.embeddings.parameters():
        p.requires_grad = False
    layers = model.encoder.encoder.layer
    for layer in layers[: len(layers) - trainable_layers]:
        for p in layer.parameters():
            p.requires_grad = False
    return model


def train(args) -> None:
    import torch
    from transformers import AutoTokenizer

    torch.set_num_threads(2)
    torch.manual_seed(0)
    records = pickle.loads(args.examples.read_bytes())
    data = pairs(records)
    if args.limit:
        data = data[: args.limit]
    positives = sum(1 for *_, y in data if y)
    print(f"train: {len(data)} pairs ({positives} positive)", file=sys.stderr)
    base = base_model_dir()
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    model = build_model(base, args.trainable_layers)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    steps = args.epochs * ((len(data) + args.batch - 1) // args.batch)
    # Warm up, then decay linearly to 0 at the last step; the last step is cut to fit the time budget once
    # the first steps have shown how long a step takes.
    warmup = max(1, int(0.06 * steps))
    plan = {"steps": steps}

    def factor(i: int) -> float:
        return min((i + 1) / warmup, max(0.0, (plan["steps"] - i) / max(1, plan["steps"] - warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(args.pos_weight))
    args.out.mkdir(parents=True, exist_ok=True)
    step = 0
    started = time.monotonic()
    for epoch in range(1, args.epochs + 1):
        model.train()
        rng = random.Random(epoch)
        order = list(range(len(data)))
        rng.shuffle(order)
        # Batches of similar length: less padding.
        chunks = [order[i : i + args.batch * 50] for i in range(0, len(order), args.batch * 50)]
        batches = []
        for chunk in chunks:
            chunk.sort(key=lambda i: len(data[i][0]) + len(data[i][1]))
            batches += [chunk[i : i + args.batch] for i in range(0, len(chunk), args.batch)]
        rng.shuffle(batches)
        total = 0.0
        for n, batch in enumerate(batches, start=1):
            enc = tokenizer(
                [data[i][0] for i in batch],
                [data[i][1] for i in batch],
                truncation="only_second",
                max_length=MAX_TOKENS,
                padding=True,
                return_tensors="pt",
            )
            labels = torch.tensor([data[i][2] for i in batch])
            loss = loss_fn(model(enc["input_ids"], enc["attention_mask"]), labels)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            step += 1
            if step == 20 and args.minutes:
                rate = (time.monotonic() - started) / step
                plan["steps"] = min(steps, int(args.minutes * 60 / rate))
                print(f"train: {rate:.2f} s a step, {plan['steps']} of {steps} steps fit in {args.minutes} min")
            total += loss.item()
            if step >= plan["steps"]:
                break
            if n % 50 == 0:
                rate = (time.monotonic() - started) / step
                print(
                    f"epoch {epoch} step {n}/{len(batches)} loss {total / n:.4f} "
                    f"({rate:.2f} s a step, {rate * (plan['steps'] - step) / 60:.1f} min left)",
                    file=sys.stderr,
                    flush=True,
                )
        save(model, args, epoch, step)
        if step >= plan["steps"]:
            break
        print(f"epoch {epoch}: mean loss {total / len(batches):.4f}", file=sys.stderr, flush=True)


def save(model, args, epoch: int, step: int) -> None:
    import torch

    # Only what was trained: the frozen embeddings and lower layers are the base model's.
    trained = {name for name, p in model.named_parameters() if p.requires_grad}
    state = {k: v for k, v in model.state_dict().items() if k in trained}
    meta = {
        "epoch": epoch,
        "trainable_layers": args.trainable_layers,
        "max_tokens": MAX_TOKENS,
        "lr": args.lr,
        "batch": args.batch,
        "steps": step,
    }
    torch.save({"state": state, "meta": meta}, args.out / f"checkpoint-{epoch}.pt")
    (args.out / "checkpoint.json").write_text(json.dumps(meta) + "\n", encoding="utf-8")


# ---------------------------------------------------------------------------------------------- export


def export(args) -> None:
    import shutil
    import warnings

    import torch

    from aiqa.embedders.export import _quantize

    meta = json.loads((args.out / "checkpoint.json").read_text(encoding="utf-8"))
    checkpoint = torch.load(args.out / f"checkpoint-{meta['epoch']}.pt", weights_only=True)
    base = base_model_dir()
    model = build_model(base, meta["trainable_layers"]).eval()
    loaded = model.load_state_dict(checkpoint["state"], strict=False)
    if loaded.unexpected_keys or not any(k.startswith("head.") for k in checkpoint["state"]):
        sys.exit(f"train_reader: {args.out} holds no checkpoint of this model ({loaded.unexpected_keys[:3]})")
    traced = args.out / "reader.onnx"
    example = torch.ones((2, 16), dtype=torch.long)
    dynamic = {0: "batch", 1: "tokens"}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (example, example),
            str(traced),
            input_names=["input_ids", "attention_mask"],
            output_names=["logit"],
            dynamic_axes={"input_ids": dynamic, "attention_mask": dynamic, "logit": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    from onnxruntime.transformers.optimizer import optimize_model

    config = model.encoder.config
    fused = optimize_model(
        str(traced), model_type="bert", num_heads=config.num_attention_heads, hidden_size=config.hidden_size
    )
    fused.save_model_to_file(str(args.out / "reader-fp32.onnx"))
    traced.unlink()
    _quantize(args.out / "reader-fp32.onnx", args.out / "reader-int8.onnx")
    (args.out / "reader-fp32.onnx").unlink()  # 470 MB, most of it the embeddings: the int8 file is what runs
    shutil.copyfile(base / "tokenizer.json", args.out / "tokenizer.json")
    digest = hashlib.sha256((args.out / "reader-int8.onnx").read_bytes()).hexdigest()[:12]
    print(f"export: {args.out / 'reader-int8.onnx'} ({digest})", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("stage", choices=("collect", "train", "export"))
    parser.add_argument(
        "--korquad",
        type=Path,
        help="the KorQuAD calibration set: questions.jsonl and corpus/ (collect)",
    )
    parser.add_argument(
        "--realistic",
        type=Path,
        action="append",
        help="a folder of realistic documents with questions.jsonl and a checker that splits them"
        " (repeatable; default: bench/office and bench/devdocs)",
    )
    parser.add_argument("--english", type=Path, default=REPO / "bench" / "korquad_english.jsonl")
    parser.add_argument("--work", type=Path, default=REPO / ".cache" / "calibration")
    parser.add_argument("--examples", type=Path, default=None, help="collected questions (default: WORK/reader.pkl)")
    parser.add_argument("--out", type=Path, default=Path.home() / ".cache" / "aiqa" / "reader")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--pos-weight", type=float, default=2.0)
    parser.add_argument("--trainable-layers", type=int, default=6, help="top encoder layers trained (of 12)")
    parser.add_argument("--minutes", type=float, default=0, help="stop training after about this long (0: no limit)")
    parser.add_argument("--limit", type=int, default=0, help="train on the first N pairs only (a trial)")
    args = parser.parse_args()
    args.examples = args.examples or args.work / "reader.pkl"
    args.realistic = args.realistic or [REPO / "bench" / "office", REPO / "bench" / "devdocs"]
    {"collect": collect_all, "train": train, "export": export}[args.stage](args)


if __name__ == "__main__":
    main()
