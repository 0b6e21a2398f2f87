"""Many users at once: start `aiqa serve`, fire concurrent /api/ask requests, print throughput and latency.

Usage: .venv/bin/python bench/http_load.py [--clients 1,4,16,64] [--configs batched,separate] [EVAL.jsonl]
Starts its own server on a free loopback port with the index in index/ (or $AIQA_INDEX), once per
configuration, and stops it. Configurations, side by side in one run:
  batched   questions that arrive together share one model call (the default, AIQA_BATCH_QUESTIONS=1)
  separate  each question embedded on its own, one torch thread per request (AIQA_BATCH_QUESTIONS=0)
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from aiqa.evaluate import percentile
from evalsets import DEV_SET, question_files, read_cases

CONFIGS = {"batched": {"AIQA_BATCH_QUESTIONS": "1"}, "separate": {"AIQA_BATCH_QUESTIONS": "0"}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(config: str, clients: list[int], questions: list[str], per_client: int) -> list[dict]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, **CONFIGS[config], "AIQA_RATE_LIMIT": ""}  # throughput, not the per-client limit
    server = subprocess.Popen(
        [sys.executable, "-m", "aiqa.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    rows = []
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            raise SystemExit("server did not start within 180 s")
        limits = httpx.Limits(max_connections=max(clients), max_keepalive_connections=max(clients))
        client = httpx.Client(timeout=120, limits=limits)  # keep-alive connections, as a browser would

        def one(i: int) -> tuple[float, int]:
            t = time.perf_counter()
            try:
                status = client.post(f"{url}/api/ask", json={"question": questions[i % len(questions)]}).status_code
            except httpx.HTTPError:
                status = 599
            return (time.perf_counter() - t) * 1000, status

        for i in range(4):
            one(i)  # warm-up
        for users in clients:
            requests = max(40, per_client * users)
            t = time.perf_counter()
            with ThreadPoolExecutor(users) as pool:
                results = list(pool.map(one, range(requests)))
            wall = time.perf_counter() - t
            times = [ms for ms, status in results if status == 200]
            rows.append(
                {
                    "config": config,
                    "clients": users,
                    "requests": requests,
                    "per_s": requests / wall,
                    "p50_ms": statistics.median(times) if times else None,
                    "p95_ms": percentile(times, 0.95) if times else None,
                    "errors": sum(1 for _, status in results if status != 200),
                }
            )
            r = rows[-1]
            print(
                f"{config:<9} {users:>7} {requests:>8} {r['per_s']:>7.1f} {r['p50_ms']:>8.0f} {r['p95_ms']:>8.0f} "
                f"{r['errors']:>6}",
                flush=True,
            )
    finally:
        server.terminate()
        server.wait(timeout=30)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("file", nargs="?", help=f"questions (default {DEV_SET})")
    parser.add_argument("--clients", default="1,4,16,64")
    parser.add_argument("--configs", default="batched,separate")
    parser.add_argument("--per-client", type=int, default=8, help="requests per client at each level")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()
    questions = [c.q for c in read_cases(question_files([args.file] if args.file else []))]
    clients = [int(c) for c in args.clients.split(",")]
    print(f"{'config':<9} {'clients':>7} {'requests':>8} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'errors':>6}")
    rows = [row for config in args.configs.split(",") for row in run(config, clients, questions, args.per_client)]
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
