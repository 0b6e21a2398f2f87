"""A small OpenAI-compatible chat server of the tests' own: it writes what the test tells it to.

`FakeLlm(reply)` serves POST /v1/chat/completions as an event stream of the text `reply(passages)`
returns, where `passages` are the numbered passages of the prompt (what a document put in front of
the model); `FakeLlm(status=500, body=...)` answers with that error instead.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.conftest import free_port

_PASSAGE = re.compile(r"^\[(\d+)\] (.*?)(?=\n\n\[\d+\] |\n\nQuestion: |\Z)", re.S | re.M)


def passages(prompt: str) -> dict[int, str]:
    """The prompt's passages by number (generate/prompt.py writes them as "[n] text")."""
    return {int(n): text for n, text in _PASSAGE.findall(prompt)}


class FakeLlm:
    def __init__(self, reply: Callable[[dict[int, str]], str] | None = None, status: int = 200, body: str = ""):
        self.reply, self.status, self.body = reply, status, body
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.prompts: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                prompt = request["messages"][-1]["content"]
                fake.prompts.append(prompt)
                if fake.status != 200:
                    data = fake.body.encode()
                    self.send_response(fake.status)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                text = fake.reply(passages(prompt)) if fake.reply else ""
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                for piece in re.findall(r"\S+\s*", text):
                    event = {"choices": [{"delta": {"content": piece}, "finish_reason": None}]}
                    self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                done = {"choices": [{"delta": {}, "finish_reason": "stop"}]}
                self.wfile.write(f"data: {json.dumps(done)}\n\ndata: [DONE]\n\n".encode())

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)

    def __enter__(self) -> FakeLlm:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
