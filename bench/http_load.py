"""Several users at once: start `aiqa serve`, fire concurrent /api/ask requests, print latency.

Usage: .venv/bin/python bench/http_load.py [--users 4] [--requests 40] [EVAL.jsonl]
Starts its own server on a free loopback port with the index in index/ (or $AIQA_INDEX), and stops it.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from aiqa.evaluate import percentile
from evalsets import DEV_SET, question_files, read_cases


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("file", nargs="?", help=f"questions (default {DEV_SET})")
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--requests", type=int, default=40)
    args = parser.parse_args()
    questions = [c.q for c in read_cases(question_files([args.file] if args.file else []))]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "aiqa.cli", "serve", "--port", str(port)],
        env={**os.environ, "AIQA_RATE_LIMIT": ""},  # throughput is measured here, not the per-client limit
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            raise SystemExit("server did not start within 120 s")

        client = httpx.Client(timeout=60)  # keep-alive connections, as a real client would

        def one(i: int) -> float:
            t = time.perf_counter()
            r = client.post(f"{url}/api/ask", json={"question": questions[i % len(questions)]})
            r.raise_for_status()
            return (time.perf_counter() - t) * 1000

        one(0)  # warm-up
        for users in sorted({1, args.users}):
            t = time.perf_counter()
            with ThreadPoolExecutor(users) as pool:
                times = list(pool.map(one, range(args.requests)))
            wall = time.perf_counter() - t
            p95 = percentile(times, 0.95)
            print(
                f"{users} concurrent users: {args.requests} requests in {wall:.1f} s "
                f"({args.requests / wall:.1f}/s); latency p50 {statistics.median(times):.0f} ms, p95 {p95:.0f} ms"
            )
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
