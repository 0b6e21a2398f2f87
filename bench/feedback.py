"""Feedback writes per second under 50 concurrent clients, and none lost to a kill -9 of the server mid-run.

Usage: flock /tmp/aiqa-bench.lock .venv/bin/python bench/feedback.py [--clients 50] [--seconds 8]
       [--stores sqlite,postgres] [--json out.json]

For each store, side by side: index the bundled report, keep 1,000 answers in the store, start
`aiqa serve` (rate limit off) and let `--clients` clients POST /api/feedback as fast as the server
acknowledges, each rating naming one answer and carrying a comment unique to it. After `--seconds`
the server is killed with SIGKILL while the clients are still writing; then every acknowledged
rating is looked up in the store. PostgreSQL runs when Debian's server is installed (a cluster of
its own in a temporary folder, as tests/test_feedback.py starts it).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from aiqa.build import build_index
from aiqa.config import Settings
from aiqa.embedders.registry import load_embedder
from aiqa.feedback import open_feedback
from evalsets import REPO

ANSWERS = 1000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_postgres(root: Path) -> tuple[str, list[str]] | None:
    initdb = shutil.which("initdb") or next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))), None)
    if initdb is None:
        return None
    bin_dir, port = Path(initdb).resolve().parent, free_port()
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        import pwd

        account = pwd.getpwnam("postgres")
        os.chown(root, account.pw_uid, account.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data = root / "data"
    subprocess.run(
        [*as_user, str(bin_dir / "initdb"), "-D", str(data), "--auth=trust", "-U", "postgres"],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1"
    pg_ctl = [*as_user, str(bin_dir / "pg_ctl"), "-D", str(data)]
    subprocess.run([*pg_ctl, "-o", options, "-l", str(root / "log"), "-w", "start"], check=True, capture_output=True)
    return f"postgresql://postgres@127.0.0.1:{port}/postgres", [*pg_ctl, "-m", "immediate", "stop"]


def run(settings: Settings, env: dict[str, str], clients: int, seconds: float) -> dict:
    store = open_feedback(settings)
    ids = [os.urandom(16).hex() for _ in range(ANSWERS)]
    answer = {"question": "q", "answer": "a", "abstained": False, "confidence": 0.5, "citations": [], "passages": []}
    for ident in ids:
        store.record(ident, answer, None)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "aiqa.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"feedback: `aiqa serve` exited with {server.returncode} before it answered")
        try:
            if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    else:
        server.kill()
        raise SystemExit("feedback: `aiqa serve` did not answer /api/health within 180 s")
    acked: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(n: int) -> None:
        with httpx.Client(timeout=10) as http:
            i = 0
            while not stop.is_set():
                comment = f"c{n}-{i}"
                i += 1
                body = {"answer_id": random.choice(ids), "rating": random.choice(("up", "down")), "comment": comment}
                try:
                    r = http.post(f"{url}/api/feedback", json=body)
                except httpx.HTTPError:
                    return  # the server is gone
                if r.status_code == 200:
                    with lock:
                        acked.append(comment)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    started = time.monotonic()
    for t in threads:
        t.start()
    time.sleep(seconds)
    os.kill(server.pid, signal.SIGKILL)  # mid-run: the clients are still writing
    killed = time.monotonic()
    server.wait()
    stop.set()
    for t in threads:
        t.join()
    kept = {c for a in open_feedback(settings).answers() for _, c in a.ratings}
    lost = [c for c in acked if c not in kept]
    return {
        "acknowledged": len(acked),
        "rows": len(kept),
        "lost": len(lost),
        "writes_per_s": round(len(acked) / (killed - started), 1),
        "clients": clients,
        "seconds": round(killed - started, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    results = {}
    root = Path(tempfile.mkdtemp(prefix="aiqa-bench-feedback-"))
    os.chmod(root, 0o755)
    stop_pg: list[str] | None = None
    try:
        base = Settings(corpus_dir=root / "corpus", index_dir=root / "index")
        shutil.copytree(REPO / "corpus", base.corpus_dir)
        embedder = load_embedder(base.embed_model, base.cache_dir, base.encoder_runtime)
        build_index(base, embedder_factory=lambda: embedder)
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO / "src"),
            "AIQA_CORPUS": str(base.corpus_dir),
            "AIQA_INDEX": str(base.index_dir),
            "AIQA_RATE_LIMIT": "",
        }
        for store in args.stores.split(","):
            settings, store_env = base, dict(env)
            if store == "postgres":
                pg_root = root / "pg"
                pg_root.mkdir()
                started = start_postgres(pg_root)
                if started is None:
                    print("postgres: skipped (no PostgreSQL server here: apt-get install postgresql)")
                    continue
                url, stop_pg = started
                settings = Settings(corpus_dir=base.corpus_dir, index_dir=base.index_dir, feedback_url=url)
                store_env["AIQA_FEEDBACK_URL"] = url
            else:
                (base.index_dir / "feedback.sqlite3").unlink(missing_ok=True)
            results[store] = run(settings, store_env, args.clients, args.seconds)
            print(store, json.dumps(results[store]), flush=True)
    finally:
        if stop_pg:
            subprocess.run(stop_pg, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
    print(f"\n{'store':<10}{'clients':>8}{'writes/s':>10}{'acknowledged':>14}{'rows':>8}{'lost':>6}")
    for name, r in results.items():
        print(
            f"{name:<10}{r['clients']:>8}{r['writes_per_s']:>10.1f}{r['acknowledged']:>14}{r['rows']:>8}{r['lost']:>6}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
