"""Where an index build spends its time, against the bare encoder's throughput on the same texts.

Usage: .venv/bin/python bench/index_build.py [--corpus FOLDER] [--json out.json]

The corpus defaults to the 70 KorQuAD articles beside the repository (../shared/eval/korquad/corpus).
One process, side by side: a whole build (read, chunk, embed, keywords, write; the model loaded
once beforehand and timed apart), the bare encoder over exactly the texts the build embedded (the
limit a build can reach), then a build with nothing changed and one with one document changed.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import tempfile
import time
from pathlib import Path

from aiqa.build import build_index
from aiqa.chunk import chunk_views
from aiqa.config import Settings
from aiqa.embedders.registry import load_embedder
from aiqa.stores.registry import load_index
from evalsets import REPO

KORQUAD = REPO.parent / "shared" / "eval" / "korquad" / "corpus"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", default=str(KORQUAD))
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    source = Path(args.corpus)
    if not source.is_dir():
        raise SystemExit(f"index_build.py: {source} is not here (the KorQuAD set lives beside the repo): pass --corpus")
    root = Path(tempfile.mkdtemp(prefix="aiqa-bench-"))
    try:
        corpus = root / "corpus"
        shutil.copytree(source, corpus)
        settings = Settings(corpus_dir=corpus, index_dir=root / "index")
        t = time.perf_counter()
        embedder = load_embedder(settings.embed_model, settings.cache_dir)
        load_s = time.perf_counter() - t

        t = time.perf_counter()
        full = build_index(settings, embedder_factory=lambda: embedder)
        build_s = time.perf_counter() - t
        index = load_index(settings)
        texts = [v for c in index.chunks for v in chunk_views(c)]
        t = time.perf_counter()
        embedder.embed_passages(texts)
        bare_s = time.perf_counter() - t

        t = time.perf_counter()
        same = build_index(settings, embedder_factory=lambda: embedder)
        same_s = time.perf_counter() - t
        first = sorted(corpus.iterdir())[0]
        first.write_text(first.read_text(encoding="utf-8") + "\n추가 문단입니다.\n", encoding="utf-8")
        t = time.perf_counter()
        one = build_index(settings, embedder_factory=lambda: embedder)
        one_s = time.perf_counter() - t

        chunks = full.chunks
        files = len(list(corpus.iterdir()))
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{files} documents, {chunks} chunks, {len(texts)} vectors; model load {load_s:.1f} s; RSS {rss:.0f} MB")
        print(f"{'step':<34} {'seconds':>8} {'share':>6}")
        for step, seconds in full.steps.items():
            print(f"{'build: ' + step:<34} {seconds:8.2f} {seconds / build_s:6.1%}")
        print(f"{'build: whole':<34} {build_s:8.2f} {1:6.0%}")
        print(f"{'bare encoder, same texts':<34} {bare_s:8.2f}")
        ratio = bare_s / build_s
        print(
            f"whole build {chunks / build_s:.1f} chunks/s; bare encoder {chunks / bare_s:.1f} chunks/s "
            f"({len(texts) / bare_s:.1f} vectors/s): the build runs at {ratio:.2f}x the encoder's limit"
        )
        print(f"no change: {same_s:.2f} s; one document changed: {one_s:.2f} s ({one.embedded_chunks} chunks embedded)")
        if args.json:
            figures = {
                "documents": files,
                "chunks": chunks,
                "vectors": len(texts),
                "model_load_s": load_s,
                "steps": full.steps,
                "build_s": build_s,
                "bare_encoder_s": bare_s,
                "ratio_to_limit": ratio,
                "no_change_s": same_s,
                "one_changed_s": one_s,
                "no_change_embedded": same.embedded_chunks,
            }
            Path(args.json).write_text(json.dumps(figures, indent=1), encoding="utf-8")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
