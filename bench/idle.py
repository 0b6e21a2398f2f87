"""What an idle `aiqa serve` costs: CPU seconds of all its threads, resident memory and the start-up peak.

Usage: .venv/bin/python bench/idle.py [--before REV] [--idle 60] [--json bench/results/idle.json]

For each side, the source of git revision REV (default: main) and this checkout's src/, side by
side in one run, on the bundled corpus/ with an empty model cache of its own:
  first start   `aiqa serve` on an empty cache: it converts and exports the model (the export in a
                child process) and builds the index, then idles
  after a burst the same server after 30 questions over /api/ask and 3 through the chat's queue
  later start   a second `aiqa serve` on the same cache and index, idle, then after one question
                (the first question loads Kiwi, which a start with nothing to build does not)
and for each: the CPU seconds of every thread of the server over --idle seconds with no client
(sum of user and system time from /proc/PID/task/*/stat, and the busiest thread), the server's
resident memory then (VmRSS), its own peak (VmHWM), the peak of the server and its children
together (sampled every 0.1 s while it starts), and whether libtorch is mapped in it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from evalsets import REPO

TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def tree(pid: int) -> list[int]:
    """The process and all its descendants."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            parents.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += parents.get(p, [])
    return out


def threads(pid: int) -> dict[str, tuple[str, int]]:
    """Every thread's name and CPU ticks (user + system)."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        out[task.name] = (stat[stat.index("(") + 1 : stat.rindex(")")], int(fields[11]) + int(fields[12]))
    return out


def idle_cpu(pid: int, seconds: float) -> dict[str, Any]:
    before = threads(pid)
    time.sleep(seconds)
    after = threads(pid)
    used = {t: (name, ticks - before.get(t, (name, 0))[1]) for t, (name, ticks) in after.items()}
    total = sum(ticks for _, ticks in used.values()) / TICK
    busiest = max(used.values(), key=lambda v: v[1])
    return {
        "cpu_s": round(total, 2),
        "core_pct": round(100 * total / seconds, 2),
        "busiest_thread": f"{busiest[0]} ({busiest[1] / TICK:.2f} s)",
        "threads": len(after),
    }


def start(src: Path, env: dict[str, str], port: int) -> tuple[subprocess.Popen, float, float]:
    """Start a server; return it, its start-up time and the peak RSS (MB) of it and its children together."""
    server = subprocess.Popen(
        [sys.executable, "-m", "aiqa.cli", "serve", "--port", str(port)],
        env={**env, "PYTHONPATH": str(src)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    t0, peak = time.monotonic(), 0
    while time.monotonic() - t0 < 900:
        peak = max(peak, sum(status_kb(p, "VmRSS") for p in tree(server.pid) if Path(f"/proc/{p}").exists()))
        if server.poll() is not None:
            raise SystemExit(f"the server stopped: {server.stderr.read() if server.stderr else ''}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).status_code == 200:
                return server, time.monotonic() - t0, peak / 1024
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.kill()
    raise SystemExit("the server did not answer within 900 s")


def burst(port: int, questions: list[str], chat: bool) -> None:
    url = f"http://127.0.0.1:{port}"
    with httpx.Client(timeout=120) as client:
        for q in questions:
            client.post(f"{url}/api/ask", json={"question": q}).raise_for_status()
    if not chat:
        return
    from gradio_client import Client

    chat = Client(url + "/", verbose=False)
    for q in questions[:3]:
        chat.predict(q, api_name="/ask")
    chat.close()


def measure(server: subprocess.Popen, seconds: float, **extra: Any) -> dict[str, Any]:
    time.sleep(3)  # let start-up work (the first page's assets, logging) settle
    row = {**extra, **idle_cpu(server.pid, seconds)}
    row["rss_mb"] = round(status_kb(server.pid, "VmRSS") / 1024)
    row["server_peak_mb"] = round(status_kb(server.pid, "VmHWM") / 1024)
    row["torch_mapped"] = "libtorch" in Path(f"/proc/{server.pid}/maps").read_text()
    return row


def stop(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def side(label: str, src: Path, seconds: float, questions: list[str]) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="aiqa-idle-") as tmp:
        root = Path(tmp)
        shutil.copytree(REPO / "corpus", root / "corpus")
        env = {
            **os.environ,
            "AIQA_CORPUS": str(root / "corpus"),
            "AIQA_INDEX": str(root / "index"),
            "AIQA_CACHE_DIR": str(root / "cache"),
            "AIQA_RATE_LIMIT": "",
        }
        for phase in ("first start", "later start"):
            port = free_port()
            server, took, peak = start(src, env, port)
            try:
                common = {"code": label, "start_s": round(took, 1), "start_peak_mb": round(peak)}
                rows.append(measure(server, seconds, phase=phase, **common))
                print(rows[-1], flush=True)
                after = "after a burst" if phase == "first start" else "later start, after one question"
                burst(port, questions if phase == "first start" else questions[:1], chat=phase == "first start")
                rows.append(measure(server, seconds, phase=after, **common))
                print(rows[-1], flush=True)
            finally:
                stop(server)
    return rows


def checkout(rev: str, into: Path) -> Path:
    """The src/ folder of git revision `rev`, unpacked into `into`."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "src"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into / "src"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", default="main", help="git revision to compare with (default: main)")
    parser.add_argument("--idle", type=float, default=60.0, help="seconds of idling measured (default: 60)")
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args()
    lines = (REPO / "bench" / "questions.jsonl").read_text(encoding="utf-8").splitlines()
    questions = [json.loads(line)["q"] for line in lines if line.strip()][:30]
    with tempfile.TemporaryDirectory(prefix="aiqa-before-") as tmp:
        rev = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", args.before], capture_output=True, text=True, check=True
        ).stdout.strip()
        rows = side(f"before ({rev})", checkout(args.before, Path(tmp)), args.idle, questions)
    rows += side("after", REPO / "src", args.idle, questions)
    columns = ["code", "phase", "core_pct", "cpu_s", "busiest_thread", "rss_mb", "server_peak_mb", "start_peak_mb"]
    print(" | ".join(columns))
    for r in rows:
        print(" | ".join(str(r[c]) for c in columns) + f" | torch {r['torch_mapped']} | start {r['start_s']} s")
    if args.json:
        result = {"idle_s": args.idle, "command": " ".join(["bench/idle.py", *sys.argv[1:]]), "rows": rows}
        Path(args.json).write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
