"""Chunking time against text size: it should grow in step with the size, not with its square.

Usage: .venv/bin/python bench/chunking.py [--mb 0.25 0.5 1 2]

Generates Korean-like text of short sentences, one a line (the shape that made 1 MB take minutes
when each chunk's locator counted line breaks from the start of the text), and prints the time
and the time per MB for each size.
"""

from __future__ import annotations

import argparse
import random
import time

from aiqa.chunk import chunk_document
from aiqa.records import Document
from aiqa.text.tokens import count_tokens

WORDS = "미국 중국 인공지능 반도체 경쟁 정책 투자 기술 모델 데이터 수출 규제 the AI chip".split()


def text_of(mb: float, seed: int = 1) -> str:
    rng = random.Random(seed)
    lines, size = [], 0
    while size < mb * 1_000_000:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 15))) + "다."
        lines.append(line)
        size += len(line.encode()) + 1
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, nargs="+", default=[0.25, 0.5, 1.0, 2.0])
    args = parser.parse_args()
    count_tokens("warm-up")  # loads the tiktoken table once, outside the timings
    print(f"{'MB':>5} {'chunks':>8} {'seconds':>8} {'s per MB':>9}")
    for mb in args.mb:
        doc = Document("generated.txt", text_of(mb), "0")
        t = time.perf_counter()
        chunks = chunk_document(doc, count_tokens, 256)
        seconds = time.perf_counter() - t
        print(f"{mb:>5g} {len(chunks):>8} {seconds:>8.2f} {seconds / mb:>9.2f}")


if __name__ == "__main__":
    main()
