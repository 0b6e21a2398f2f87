"""A separate process that parses files, stopped when one takes too long: `python -m aiqa.ingest.worker`.

A hostile or broken file (a zip bomb, a PDF that sends the parser in circles) then costs that
process its time, not the server's interpreter, and it can be killed. The worker is a plain
child process reading length-prefixed pickles on stdin and answering on stdout, not
multiprocessing: that would re-run the parent's main script in the child.
"""

from __future__ import annotations

import os
import pickle
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aiqa.errors import UnreadableDocument
from aiqa.ingest import read_document
from aiqa.records import Document

_SIZE = struct.Struct(">Q")


def _send(stream, obj: Any) -> None:
    data = pickle.dumps(obj)
    stream.write(_SIZE.pack(len(data)) + data)
    stream.flush()


def _read_exact(fd: int, n: int, deadline: float | None) -> bytes:
    out = bytearray()
    while len(out) < n:
        wait = None if deadline is None else max(0.0, deadline - time.monotonic())
        if not select.select([fd], [], [], wait)[0]:
            raise TimeoutError
        block = os.read(fd, n - len(out))
        if not block:
            raise EOFError
        out += block
    return bytes(out)


def _receive(fd: int, deadline: float | None = None) -> Any:
    (size,) = _SIZE.unpack(_read_exact(fd, _SIZE.size, deadline))
    return pickle.loads(_read_exact(fd, size, deadline))


class Worker:
    """Parse files in one child process, started on first use and replaced after a timeout."""

    def __init__(self, timeout: float):
        self.timeout = timeout
        self.proc: subprocess.Popen | None = None
        self.tmp: str | None = None

    def read(self, path: Path, root: Path, data: bytes, caps: dict[str, int]) -> Document:
        """Read one file like read_document; raise UnreadableDocument, also when it takes too long."""
        if self.proc is None:
            # Its own process group and temp folder: stopping it also stops the programs it runs
            # (Tesseract for OCR) and removes the files they leave.
            self.tmp = tempfile.mkdtemp(prefix="aiqa-read-")
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "aiqa.ingest.worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                start_new_session=True,
                env={**os.environ, "TMPDIR": self.tmp},
            )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            _send(self.proc.stdin, (path, root, data, caps))
            ok, result = _receive(self.proc.stdout.fileno(), time.monotonic() + self.timeout)
        except TimeoutError:
            self.close()
            raise UnreadableDocument(
                f"took longer than {self.timeout:g} s to read: stopped (raise AIQA_READ_TIMEOUT)"
            ) from None
        except (EOFError, OSError):  # the worker died: out of memory, killed
            self.close()
            raise UnreadableDocument("the reader process stopped while reading this file (out of memory?)") from None
        if not ok:
            raise UnreadableDocument(result)
        return result

    def close(self) -> None:
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.proc.kill()
            self.proc.wait()
            self.proc = None
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None


def main() -> None:
    """Serve read requests until stdin closes."""
    # Answers go out on a private copy of stdout; anything a parser library prints goes to stderr.
    stdout = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    stdin = sys.stdin.buffer.fileno()
    while True:
        try:
            path, root, data, caps = _receive(stdin)
        except EOFError:
            return
        try:
            _send(stdout, (True, read_document(path, root, data=data, **caps)))
        except UnreadableDocument as exc:
            _send(stdout, (False, str(exc)))


if __name__ == "__main__":
    main()
