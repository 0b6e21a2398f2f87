"""Compare the encoder runtimes side by side: passage throughput, question latency, retrieval hits; prints tables.

Usage: flock /tmp/aiqa-bench.lock .venv/bin/python bench/encoders.py [--index DIR] [--questions FILE]
           [--runtimes torch,onnx-int8,...] [--latency N] [--sample N]
Defaults: the KorQuAD calibration index and questions that scripts/fit_decision.py writes into
.cache/calibration/korquad/ (made from ../shared/eval/korquad, not shipped); absent, it says so and stops.

For each runtime, in this one process:
- passages: every view of every chunk (chunk_views(Chunk), one vector each, as the index stores them)
  embedded with 2 threads, and the views of a sample of chunks with 1 thread: model tokens/s and
  chunks/s (the tokens are counted once, with the converted model's tokenizer, prefix included);
- questions: one at a time over the first N calibration questions, p50/p95 in ms, with 1 and 2 threads;
- hit@1/@5 on the answerable questions (their `file` is indexed), with aiqa's retrieval (Retriever.search,
  dense + BM25 fused) over the views re-embedded by that runtime; "cross" queries the stored vectors
  (built by PyTorch float32) with that runtime's question vectors: an index built by one runtime and
  queried by another. A hit is a gold answer string in a retrieved chunk's text, as `aiqa eval` counts.
Then, once, with the stored vectors: hit@1/@5 with only each chunk's first view (its labelled context)
against all views, and the vectors each needs.
"""

from __future__ import annotations

import argparse
import copy
import gc
import sys
import time
from pathlib import Path

import numpy as np

from aiqa.chunk import chunk_views
from aiqa.config import BUNDLED_MODEL, ENCODER_RUNTIMES, Settings
from aiqa.embedders.registry import load_embedder
from aiqa.evaluate import contains, is_answerable, load_cases, percentile
from aiqa.retrieve import Retriever, fuse
from aiqa.stores.registry import load_index
from aiqa.text.korean import analyse

REPO = Path(__file__).resolve().parents[1]
CALIBRATION = REPO / ".cache" / "calibration" / "korquad"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--index", type=Path, default=CALIBRATION / "index")
    parser.add_argument("--questions", type=Path, default=CALIBRATION / "report.jsonl")
    parser.add_argument("--runtimes", default=",".join(ENCODER_RUNTIMES))
    parser.add_argument("--latency", type=int, default=100, help="questions timed one at a time (default 100)")
    parser.add_argument("--sample", type=int, default=150, help="chunks embedded with 1 thread (default 150)")
    args = parser.parse_args()
    for path in (args.index, args.questions):
        if not path.exists():
            print(f"encoders.py: {path} is not here: run scripts/fit_decision.py, or pass --index and --questions")
            raise SystemExit(0)
    runtimes = [r.strip() for r in args.runtimes.split(",") if r.strip()]
    if "torch" not in runtimes:
        runtimes.insert(0, "torch")  # the reference of every ratio

    settings = Settings(index_dir=args.index)
    index = load_index(settings)
    if index.model != BUNDLED_MODEL:
        raise SystemExit(f"encoders.py: {args.index} was built with {index.model}; the runtimes run {BUNDLED_MODEL}")
    chunks = index.chunks
    views = [v for c in chunks for v in chunk_views(c)]
    rng = np.random.default_rng(0)
    picked = np.sort(rng.choice(len(chunks), min(args.sample, len(chunks)), replace=False))
    sample = [v for i in picked for v in chunk_views(chunks[i])]
    tokens_all, tokens_sample = _count_tokens(settings.cache_dir, views), _count_tokens(settings.cache_dir, sample)
    cases = [c for c in load_cases(args.questions) if is_answerable(c, set(index.documents))]
    analyses = [analyse(c.q) for c in cases]
    timed = [c.q for c in load_cases(args.questions)[: args.latency]]
    base = Retriever(index, None)
    print(
        f"{len(chunks)} chunks, {len(views)} vectors ({tokens_all} model tokens); 1-thread sample: {len(picked)} "
        f"chunks ({tokens_sample} tokens); {len(cases)} answerable questions; {len(timed)} timed one at a time",
        flush=True,
    )

    rows, reference = [], None
    for runtime in runtimes:
        started = time.perf_counter()
        row, vectors = _measure(runtime, settings.cache_dir, views, sample, timed, base, cases, analyses)
        seconds_all, seconds_sample = row.pop("s 2t"), row.pop("s 1t")
        row["tok/s 2t"], row["chunks/s 2t"] = tokens_all / seconds_all, len(chunks) / seconds_all
        row["tok/s 1t"], row["chunks/s 1t"] = tokens_sample / seconds_sample, len(picked) / seconds_sample
        reference = vectors if reference is None else reference
        cos = (vectors * reference).sum(axis=1)
        row["cos min"], row["cos mean"] = float(cos.min()), float(cos.mean())
        rows.append(row)
        print(f"  {runtime}: done in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
        del vectors
        gc.collect()

    _print_runtimes(rows)
    _print_views(index, base, cases, analyses, rows[0]["query vectors"])


def _measure(runtime, cache_dir, views, sample, timed, base, cases, analyses):
    """Load one runtime and take all its figures; return them and its vectors of every view."""
    import faiss

    embedder = load_embedder(BUNDLED_MODEL, cache_dir, runtime)
    row: dict = {"runtime": runtime}
    _threads(embedder, 2)
    embedder.embed_passages(views[:64])  # warm-up: the first runs are slower
    t = time.perf_counter()
    vectors = embedder.embed_passages(views, batch_size=32)
    row["s 2t"] = time.perf_counter() - t
    _threads(embedder, 1)
    t = time.perf_counter()
    embedder.embed_passages(sample, batch_size=32)
    row["s 1t"] = time.perf_counter() - t
    for n in (1, 2):
        asker = _query_threads(embedder, runtime, cache_dir, n)
        asker.embed_queries(timed[:3])
        ms = []
        for q in timed:
            t = time.perf_counter()
            asker.embed_queries([q])
            ms.append((time.perf_counter() - t) * 1000)
        row[f"q{n} p50"], row[f"q{n} p95"] = percentile(ms, 0.5), percentile(ms, 0.95)
    _threads(embedder, 2)
    questions = embedder.embed_queries([c.q for c in cases])
    own = faiss.IndexFlatIP(vectors.shape[1])
    own.add(vectors)
    row["hit@1"], row["hit@5"] = _hits(_with_vectors(base, own, embedder), cases, analyses, questions)
    row["cross@1"], row["cross@5"] = _hits(base, cases, analyses, questions)
    row["query vectors"] = questions
    return row, vectors


def _threads(embedder, n: int) -> None:
    """Let a batch of passages use n threads."""
    if embedder.runtime.startswith("torch"):
        import torch

        torch.set_num_threads(n)
    else:
        embedder.threads = n


def _query_threads(embedder, runtime: str, cache_dir: Path, n: int):
    """The embedder with n threads per question (onnxruntime fixes that per session: a second one)."""
    if runtime.startswith("torch"):
        import torch

        torch.set_num_threads(n)
    elif runtime.startswith("onnx") and n != embedder.query_threads:
        from aiqa.embedders.onnx import load_onnx

        return load_onnx(BUNDLED_MODEL, cache_dir, int8=runtime == "onnx-int8", threads=1, query_threads=n)
    else:
        embedder.query_threads = n
    return embedder


def _with_vectors(base: Retriever, vectors, embedder) -> Retriever:
    """The calibration retriever (BM25 and all) with its dense vectors replaced."""
    retriever = copy.copy(base)
    retriever.index = copy.copy(base.index)
    retriever.index.vectors = vectors
    retriever.embedder = embedder
    return retriever


def _hits(retriever: Retriever, cases, analyses, questions) -> tuple[float, float]:
    ranks = []
    for case, analysis, vector in zip(cases, analyses, questions, strict=True):
        hits = retriever.search(analysis, k=5, query_vector=vector)
        ranks.append(next((h.rank for h in hits if any(contains(h.chunk.text, g) for g in case.gold)), 99))
    r = np.array(ranks)
    return float(np.mean(r == 1)), float(np.mean(r <= 5))


def _ranked_hits(retriever: Retriever, cases, analyses, questions) -> tuple[float, float]:
    """hit@1/@5 with `search`'s ranking (signals, fuse, top 5) without its per-statement cosines,
    which read the statement rows that a first-view-only index does not have."""
    ranks = []
    for case, analysis, vector in zip(cases, analyses, questions, strict=True):
        dense, keyword, known = retriever.signals(analysis, 100, vector)
        order = np.argsort(-fuse(dense, keyword, known, retriever.dense_weight), kind="stable")[:5]
        gold = [any(contains(retriever.chunks[i].text, g) for g in case.gold) for i in order]
        ranks.append(gold.index(True) + 1 if any(gold) else 99)
    r = np.array(ranks)
    return float(np.mean(r == 1)), float(np.mean(r <= 5))


def _print_views(index, base: Retriever, cases, analyses, questions) -> None:
    import faiss

    first = index.offsets[:-1]
    context = faiss.IndexFlatIP(index.vectors.d)
    context.add(np.vstack([index.vectors.reconstruct(int(i)) for i in first]))
    only = _with_vectors(base, context, base.embedder)
    n = len(index.chunks)
    only.index.__dict__["owners"] = np.arange(n)  # one row per chunk (LoadedIndex.owners is cached there)
    print(f"\nDense views, stored vectors, PyTorch float32 questions ({len(cases)} answerable questions)")
    print(f"{'views':<34} {'vectors':>8} {'hit@1':>6} {'hit@5':>6}")
    for name, retriever, count in (
        ("first view only (labelled context)", only, n),
        ("all views (context + statements)", base, index.vectors.ntotal),
    ):
        h1, h5 = _ranked_hits(retriever, cases, analyses, questions)
        print(f"{name:<34} {count:8d} {h1:6.3f} {h5:6.3f}")


def _print_runtimes(rows: list[dict]) -> None:
    ref = rows[0]
    print("\nPassages: 2 threads on every view, 1 thread on the sample. Questions: one at a time, ms.")
    print(
        f"{'runtime':<11} {'tok/s 2t':>8} {'×':>5} {'chunk/s':>7} {'tok/s 1t':>8} {'×':>5} "
        f"{'q 1t p50/p95':>13} {'×':>5} {'q 2t p50/p95':>13} {'hit@1':>6} {'hit@5':>6} {'Δ@5 pt':>6} "
        f"{'cross@5':>7} {'cos min/mean':>13}"
    )
    for r in rows:
        print(
            f"{r['runtime']:<11} {r['tok/s 2t']:8.0f} {r['tok/s 2t'] / ref['tok/s 2t']:5.2f} {r['chunks/s 2t']:7.1f} "
            f"{r['tok/s 1t']:8.0f} {r['tok/s 1t'] / ref['tok/s 1t']:5.2f} "
            f"{r['q1 p50']:6.1f}/{r['q1 p95']:6.1f} {ref['q1 p50'] / r['q1 p50']:5.2f} "
            f"{r['q2 p50']:6.1f}/{r['q2 p95']:6.1f} {r['hit@1']:6.3f} {r['hit@5']:6.3f} "
            f"{100 * (r['hit@5'] - ref['hit@5']):+6.1f} {r['cross@5']:7.3f} {r['cos min']:6.4f}/{r['cos mean']:6.4f}"
        )
    print("× : ratio to torch (throughput: higher is faster; question p50: torch's over this one's, higher is faster)")


def _count_tokens(cache_dir: Path, texts: list[str]) -> int:
    """Model tokens of the texts as passages, truncated at 512 as every runtime does."""
    from tokenizers import Tokenizer

    from aiqa.embedders.convert import ensure_model

    tokenizer = Tokenizer.from_file(str(ensure_model(cache_dir) / "tokenizer.json"))
    tokenizer.enable_truncation(512)
    return sum(len(e.ids) for e in tokenizer.encode_batch(["passage: " + t for t in texts]))


if __name__ == "__main__":
    main()
