"""An idle server stays idle: Gradio's queue polls slowly, and a real `aiqa serve` with no client uses
almost no CPU (bench/idle.py measures it over a minute, before and after)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import httpx
import pytest

from aiqa.web.idle import EVENT_POLL_S, PROGRESS_POLL_S

from .conftest import Background, free_port

TICK = os.sysconf("SC_CLK_TCK")


def test_the_chat_queue_polls_at_the_quiet_intervals(fake_engine):
    from aiqa.web.ui import create_ui

    queue = create_ui(fake_engine)._queue  # where Gradio keeps it; a Gradio that moved it fails here
    assert queue.sleep_when_free == EVENT_POLL_S
    assert queue.progress_update_sleep_when_free == PROGRESS_POLL_S


def _cpu_ticks(pid: int) -> int:
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total


@pytest.mark.long  # a server's start, then its CPU time over windows of seconds
def test_an_idle_server_uses_under_two_percent_of_a_core(report_settings, tmp_path):
    shutil.copytree(report_settings.corpus_dir, tmp_path / "corpus")
    shutil.copytree(report_settings.index_dir, tmp_path / "index")
    port = free_port()
    env = {
        "AIQA_CACHE_DIR": str(report_settings.cache_dir),
        "AIQA_CORPUS": str(tmp_path / "corpus"),
        "AIQA_INDEX": str(tmp_path / "index"),
    }
    server = Background(tmp_path, "serve", "--port", str(port), env=env)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            raise AssertionError(f"the server did not start: {server.stderr()[-800:]}")
        time.sleep(2)
        before = _cpu_ticks(server.proc.pid)
        time.sleep(15)
        used = (_cpu_ticks(server.proc.pid) - before) / TICK
        # Polling every millisecond, as Gradio does by default, cost 6-8 % of a core here.
        assert used / 15 < 0.02, f"{used:.2f} CPU seconds in 15 s of idling"
    finally:
        server.stop()
