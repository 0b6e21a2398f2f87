"""Soak: many clients ask while the index is rebuilt, a flood and an oversized history are refused.

Usage: .venv/bin/python bench/soak.py [--clients 50] [--questions 2000] [--rebuilds 5] [--flood 500]

Starts `aiqa serve` on a free loopback port over a copy of corpus/ in a temporary folder, with a
read and an admin token. Then, at the same time:

- `--clients` normal users ask `--questions` questions in all (bench/questions.jsonl, round robin),
  each from its own address (X-Forwarded-For from a proxy on loopback, trusted through AIQA_TRUSTED_PROXIES);
- the index is rebuilt `--rebuilds` times, alternately adding a document (POST /api/documents)
  and removing it again (deleting the file, then POST /api/index);
- one client floods `--flood` questions as fast as it can: past AIQA_RATE_LIMIT it gets 429;
- one client sends questions with a history over the caps: 400 (or 413 for a huge body);
- a probe user asks one question a second: the "normal user" whose p95 should stay under 2 s.

Prints a table; exits non-zero if a normal request failed or came back empty. Only 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from aiqa.evaluate import load_cases, percentile

ROOT = Path(__file__).resolve().parents[1]
READ, ADMIN = "soak-read", "soak-admin"
EXTRA = "# 재택근무 규정\n\n재택근무는 주 2회까지 허용되며, 팀장의 사전 승인이 필요합니다.\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def headers(client: str, token: str = READ) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "X-Forwarded-For": client}


class Tally:
    """Status codes and latencies of one kind of traffic, shared by its threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.codes: Counter[int] = Counter()
        self.ms: list[float] = []
        self.empty = 0

    def add(self, code: int, ms: float, empty: bool = False) -> None:
        with self.lock:
            self.codes[code] += 1
            self.ms.append(ms)
            self.empty += empty

    def row(self, name: str) -> str:
        codes = " ".join(f"{c}:{n}" for c, n in sorted(self.codes.items()))
        p50, p95 = percentile(self.ms, 0.5), percentile(self.ms, 0.95)
        return f"{name:<10} {sum(self.codes.values()):>6}  {codes:<28} {p50:>7.0f} {p95:>7.0f} {self.empty:>6}"


def ask(http: httpx.Client, url: str, tally: Tally, question: str, client: str, history=None) -> None:
    t = time.perf_counter()
    body = {"question": question, "history": history or []}
    r = http.post(f"{url}/api/ask", json=body, headers=headers(client))
    empty = r.status_code == 200 and not r.json().get("answer", "").strip()
    tally.add(r.status_code, (time.perf_counter() - t) * 1000, empty)


def rebuilds(url: str, corpus: Path, n: int, stop: threading.Event, tally: Tally) -> None:
    admin = headers("10.9.0.1", ADMIN)
    with httpx.Client(timeout=600) as http:
        for i in range(n):
            t = time.perf_counter()
            if i % 2 == 0:
                files = [("files", ("soak-extra.md", EXTRA.encode()))]
                r = http.post(f"{url}/api/documents", files=files, headers=admin)
            else:
                (corpus / "soak-extra.md").unlink(missing_ok=True)
                r = http.post(f"{url}/api/index", headers=admin)
            tally.add(r.status_code, (time.perf_counter() - t) * 1000)
            if stop.wait(1):
                return


def start_server(work: Path, port: int, rate: str) -> subprocess.Popen:
    shutil.copytree(ROOT / "corpus", work / "corpus")
    env = {
        **os.environ,
        "AIQA_CORPUS": str(work / "corpus"),
        "AIQA_INDEX": str(work / "index"),
        "AIQA_API_TOKEN": READ,
        "AIQA_ADMIN_TOKEN": ADMIN,
        "AIQA_RATE_LIMIT": rate,
        # The clients stand behind a proxy on loopback: the server believes X-Forwarded-For from there only.
        "AIQA_TRUSTED_PROXIES": "127.0.0.1",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "aiqa.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(work / "server.log", "w"),  # noqa: SIM115 - closed with the process
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"server exited: see {work / 'server.log'}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit("server did not start within 300 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--questions", type=int, default=2000)
    parser.add_argument("--rebuilds", type=int, default=5)
    parser.add_argument("--flood", type=int, default=500)
    parser.add_argument("--rate", default="120/minute", help="AIQA_RATE_LIMIT of the server")
    args = parser.parse_args()
    questions = [c.q for c in load_cases(ROOT / "bench" / "questions.jsonl")]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="aiqa-soak-") as tmp:
        work = Path(tmp)
        server = start_server(work, port, args.rate)
        normal, probe, flood, history, builds = Tally(), Tally(), Tally(), Tally(), Tally()
        stop = threading.Event()
        try:
            http = httpx.Client(timeout=120, limits=httpx.Limits(max_connections=args.clients + 8))
            builder = threading.Thread(target=rebuilds, args=(url, work / "corpus", args.rebuilds, stop, builds))

            def user(i: int) -> None:
                ask(http, url, normal, questions[i % len(questions)], f"10.1.{i % args.clients // 250}.{i % 250}")

            def flooder() -> None:
                for i in range(args.flood):
                    ask(http, url, flood, questions[i % len(questions)], "10.6.6.6")

            def oversized() -> None:
                for n in (21, 200):
                    ask(http, url, history, questions[0], "10.7.7.7", [questions[1]] * n)
                ask(http, url, history, questions[0], "10.7.7.7", ["가" * 9000])
                ask(http, url, history, questions[0], "10.7.7.7", ["가" * 1_000_000])

            def prober() -> None:
                i = 0
                while not stop.is_set():
                    ask(http, url, probe, questions[i % len(questions)], "10.8.8.8")
                    i += 1
                    stop.wait(1)

            side = [threading.Thread(target=f) for f in (flooder, oversized, prober)]
            started = time.perf_counter()
            builder.start()
            for t in side:
                t.start()
            with ThreadPoolExecutor(args.clients) as pool:
                list(pool.map(user, range(args.questions)))
            wall = time.perf_counter() - started
            stop.set()
            for t in [builder, *side]:
                t.join()
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(f"{args.clients} clients, {args.questions} questions in {wall:.0f} s, {args.rebuilds} rebuilds\n")
    print(f"{'traffic':<10} {'count':>6}  {'status codes':<28} {'p50 ms':>7} {'p95 ms':>7} {'empty':>6}")
    for name, tally in (("normal", normal), ("probe", probe), ("flood", flood), ("history", history)):
        print(tally.row(name))
    print(builds.row("rebuilds"))
    failed = sum(n for c, n in normal.codes.items() if c != 200) + normal.empty + probe.empty
    failed += sum(n for c, n in probe.codes.items() if c != 200) + sum(n for c, n in builds.codes.items() if c != 200)
    refused = flood.codes.get(429, 0) > 0 and set(history.codes) <= {400, 413}
    print(f"\nerrors or empty answers: {failed}; flood got 429: {flood.codes.get(429, 0) > 0}; ", end="")
    print(
        f"history refused: {set(history.codes) <= {400, 413}}; probe p95 under 2 s: {percentile(probe.ms, 0.95) < 2000}"
    )
    sys.exit(0 if failed == 0 and refused else 1)


if __name__ == "__main__":
    main()
