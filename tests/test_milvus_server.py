"""Two `aiqa serve` replicas on one real Milvus server: a rebuild by `aiqa index` reaches both, an outage is a 503.

The server is the `milvus` package's embedded standalone Milvus (2.3, `milvus-server --data DIR`),
started here; without it the test is skipped with the reason. Milvus 2.3 has no sparse vectors,
so these collections hold no keyword vectors and each replica scores keywords with aiqa's own
BM25+ postings (aiqa.stores.milvus_layout).

The replicas reach the server through the service address a cluster gives it (`Address`, a TCP
forwarder the test owns). The outage kills the server's processes; it comes back on the same data
and new ports behind that address, so the test need not wait out the minute a killed server's
port stays in TIME_WAIT.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from .conftest import CORPUS, Background, free_port

pytest.importorskip("pymilvus", reason="pymilvus is not installed: pip install -e '.[test]'")
pytestmark = pytest.mark.long  # a Milvus server's start, a crash and its recovery: over a minute
SERVER = Path(sys.executable).with_name("milvus-server")
NEW_DOC = (
    "# 오로라 프로젝트\n\n오로라 프로젝트는 2027년 3월에 시작하는 사내 위성 통신 과제이다.\n\n"
    "오로라 프로젝트의 예산은 37억 원이며, 책임자는 한빛 연구소의 김서연 박사이다.\n"
)


class MilvusServer:
    """`milvus-server --data DIR` on free ports, started and stopped by the test."""

    def __init__(self, data: Path):
        self.data, self.port, self.etcd = data, free_port(), free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 180) -> None:
        # milvus-server refuses a port it cannot bind yet: a restart takes fresh ones (the test's
        # Address keeps the one the replicas know).
        if self.proc is not None:
            self.port, self.etcd = free_port(), free_port()
            self.uri = f"http://127.0.0.1:{self.port}"
        command = [str(SERVER), "--data", str(self.data), "--proxy-port", str(self.port), "--etcd-port", str(self.etcd)]
        log = (self.data.parent / "milvus-server.log").open("a")
        # A session of its own: the wrapper starts the milvus binary as its child, and both are stopped.
        self.proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"milvus-server exited with status {self.proc.returncode}: {self.log_tail()}")
            if self.answers():
                return
            time.sleep(1)
        self.stop()
        raise RuntimeError(f"milvus-server did not answer on {self.uri} within {timeout:.0f} s: {self.log_tail()}")

    def answers(self) -> bool:
        from pymilvus import MilvusClient

        try:
            MilvusClient(uri=self.uri, timeout=3).list_collections()
            return True
        except Exception:
            return False

    def stop(self, graceful: bool = True) -> None:
        """Stop the server: SIGTERM and up to a minute for it to finish, or a kill (a crash) at once."""
        if self.proc is None:
            return
        group = self.proc.pid
        for sig, wait in ((signal.SIGTERM, 60), (signal.SIGKILL, 10))[0 if graceful else 1 :]:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, sig)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and _group_alive(group):
                self.proc.poll()  # reaps the wrapper once it exits
                time.sleep(0.5)
            if not _group_alive(group):
                break
        self.proc.wait(10)

    def log_tail(self) -> str:
        path = self.data.parent / "milvus-server.log"
        return " | ".join(path.read_text(errors="replace").splitlines()[-5:]) if path.exists() else "no log"


class Address:
    """A fixed address that forwards each TCP connection to the server's current port."""

    def __init__(self, target: MilvusServer):
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.uri = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target.port), timeout=3)
            except OSError:
                client.close()  # nothing listens behind the address: the connection is refused
                continue
            upstream.settimeout(None)
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(src, dst), daemon=True).start()

    def close(self) -> None:
        self.listener.close()


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    for sock in (src, dst):  # one side gone: both connections end
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _group_alive(group: int) -> bool:
    """Whether a process of the group still runs (a killed one stays a zombie until it is reaped)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            # pid (comm) state ppid pgrp ...: comm may hold spaces, so read after its closing bracket
            state, _, pgrp = stat.read_text().rsplit(")", 1)[1].split()[:3]
            if int(pgrp) == group and state != "Z":
                return True
    return False


@pytest.fixture(scope="module")
def milvus_server(tmp_path_factory):
    if not SERVER.exists():
        pytest.skip("the milvus package is not installed (pip install milvus==2.3.5): no Milvus server to start")
    root = tmp_path_factory.mktemp("milvus-server")
    server = MilvusServer(root / "data")
    try:
        server.start()
    except RuntimeError as exc:
        pytest.skip(f"the Milvus server could not start here: {exc}")
    yield server
    server.stop(graceful=False)  # its data is not needed again


def _wait(check, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise AssertionError(f"{what} within {timeout:.0f} s")


def _health(url: str) -> dict | None:
    try:
        response = httpx.get(f"{url}/api/health", timeout=10)
    except httpx.HTTPError:
        return None
    return response.json() if response.status_code == 200 else None


def _ask(url: str, question: str) -> httpx.Response:
    return httpx.post(f"{url}/api/ask", json={"question": question}, timeout=120)


@pytest.fixture(scope="module")
def replicas(milvus_server, real_model, cache_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("replicas")
    address = Address(milvus_server)
    shutil.copytree(CORPUS, root / "corpus")
    env = {
        "AIQA_CACHE_DIR": str(cache_dir),
        "AIQA_CORPUS": str(root / "corpus"),
        "AIQA_INDEX": str(root / "index"),
        "AIQA_STORE": "milvus",
        "AIQA_MILVUS_URI": address.uri,
        "AIQA_MILVUS_NAME": "replicated",
        "AIQA_RATE_LIMIT": "",
    }
    built = Background(root, "index", "--json", env=env).result()
    assert built.returncode == 0, built.stderr
    servers = []
    for name in ("a", "b"):
        (root / name).mkdir()
        port = free_port()
        servers.append((f"http://127.0.0.1:{port}", Background(root / name, "serve", "--port", str(port), env=env)))
    try:
        for url, process in servers:
            _wait(lambda url=url: _health(url) is not None, f"replica {url} did not come up")
            assert process.proc.poll() is None
        yield SimpleNamespace(root=root, env=env, urls=[url for url, _ in servers], server=milvus_server)
    finally:
        for _, process in servers:
            process.stop()
        address.close()


def test_two_replicas_follow_a_rebuild_and_outlive_an_outage(replicas):
    a, b = replicas.urls
    first = {_health(url)["index_version"] for url in (a, b)}  # type: ignore[index]
    assert len(first) == 1  # both serve the one live version
    for url in (a, b):
        reply = _ask(url, "중국이 개발한 AI 반도체는 무엇인가?")
        assert reply.status_code == 200 and "Ascend" in reply.text

    # A rebuild through the CLI: one document added. Neither replica restarts.
    (replicas.root / "corpus" / "aurora.md").write_text(NEW_DOC, encoding="utf-8")
    built = Background(replicas.root, "index", "--json", env=replicas.env).result()
    assert built.returncode == 0, built.stderr
    for url in (a, b):
        _wait(
            lambda url=url: (_health(url) or {}).get("index_version") not in first,
            f"{url} did not load the new version",
        )
        reply = _ask(url, "오로라 프로젝트의 예산은 얼마인가?")
        assert reply.status_code == 200
        assert "37억" in reply.json()["answer"] and "aurora.md" in reply.text

    # The Milvus server crashes: every question gets a 503 that says what is wrong.
    replicas.server.stop(graceful=False)
    for url in (a, b):
        for question in ("오로라 프로젝트의 예산은 얼마인가?", "미국 AI 내수 시장의 특징은?"):
            reply = _ask(url, question)
            assert reply.status_code == 503, reply.text
            assert "Milvus" in reply.json()["error"]

    # It comes back on the same data: both replicas answer again without a restart.
    replicas.server.start()
    budget = "오로라 프로젝트의 예산은 얼마인가?"
    for url in (a, b):
        _wait(lambda url=url: _ask(url, budget).status_code == 200, f"{url} did not recover")
        assert "37억" in _ask(url, budget).json()["answer"]
