"""Request bodies counted as they arrive, and cut off at their route's cap: chunked bodies too.

A Content-Length over the cap gets 413 before a byte is read; a body without one (chunked) is
counted while the app reads it, and the moment it passes the cap the client gets 413 and the app
a disconnect, so no body larger than its cap is ever held in memory. Uploads (the API's and
Gradio's) also count their files as the multipart parts arrive, and Gradio's upload route, open to
anyone signed in with the admin token (guard.py), has a budget of files and bytes per client and hour.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

from python_multipart.multipart import MultipartParseError, MultipartParser, parse_options_header
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aiqa.web.access import reply
from aiqa.web.limits import Limits

log = logging.getLogger("aiqa.web.bodies")
GRADIO_UPLOAD = "/gradio_api/upload"
UPLOAD_ROUTES = ("/api/documents", GRADIO_UPLOAD)


class _Parts:
    """Counts the parts of a multipart body fed to it piece by piece (python-multipart's parser)."""

    def __init__(self, content_type: str):
        self.count = 0
        kind, options = parse_options_header(content_type)
        boundary = options.get(b"boundary")
        self.parser: MultipartParser | None = None
        if kind == b"multipart/form-data" and boundary:
            self.parser = MultipartParser(boundary, {"on_part_begin": self._begin})

    def _begin(self) -> None:
        self.count += 1

    def feed(self, data: bytes) -> None:
        if self.parser is not None and data:
            try:
                self.parser.write(data)
            except MultipartParseError:
                self.parser = None  # malformed: the route's own parser says so


class BodyLimit:
    """Pure ASGI middleware: 413 past a route's body cap, before or while the body is read."""

    def __init__(self, app: ASGIApp, limits: Limits, client: Callable[[Scope], str], upload_budget):
        self.app = app
        self.limits = limits
        self.client = client
        self.budget = upload_budget  # Throttle.upload_wait(key, files, nbytes) -> seconds to wait, or 0

    def cap(self, path: str) -> tuple[int, str]:
        """The route's largest body, and what to tell a client that sends more."""
        lim = self.limits
        if path.rstrip("/") in ("/api/ask", "/api/feedback", "/v1/chat/completions"):
            return lim.ask_bytes, "send a shorter question or history"
        if path.rstrip("/").endswith(UPLOAD_ROUTES):
            return lim.upload_bytes, f"send fewer or smaller files (at most {lim.upload_files}, AIQA_MAX_FILE_MB each)"
        return lim.other_bytes, "send a smaller request"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        headers = Headers(scope=scope)
        cap, advice = self.cap(path)
        over = (413, {"error": f"request body is over {_size(cap)}: {advice}"})
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > cap:
            await reply(send, *over)
            return
        upload = path.rstrip("/").endswith(UPLOAD_ROUTES)
        parts = _Parts(headers.get("content-type", "")) if upload else None
        gradio_upload = path.rstrip("/").endswith(GRADIO_UPLOAD)
        key = self.client(scope)
        if gradio_upload and (wait := self.budget(key, 1, 0, spend=False)):
            await _too_many(send, key, wait)
            return
        read = 0
        refused = False

        async def counted() -> Message:
            nonlocal read, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] != "http.request":
                return message
            body = message.get("body", b"")
            read += len(body)
            problem: tuple[int, dict] | None = over if read > cap else None
            if parts is not None and problem is None:
                parts.feed(body)
                if parts.count > self.limits.upload_files:
                    text = f"more than {self.limits.upload_files} files in one upload: send at most that many at once"
                    problem = (413, {"error": text})
            done = problem is None and gradio_upload and not message.get("more_body", False)
            if done and (wait := self.budget(key, parts.count if parts else 1, read, spend=True)):
                refused = True
                await _too_many(send, key, wait)
                return {"type": "http.disconnect"}
            if problem is not None:
                refused = True
                log.warning("body cut off: %s on %s after %d bytes", key, path, read)
                await reply(send, *problem)
                return {"type": "http.disconnect"}
            return message

        async def quiet(message: Message) -> None:
            if not refused:  # the client has its answer: nothing the app says after the cut-off goes out
                await send(message)

        try:
            await self.app(scope, counted, quiet)
        except Exception:
            if not refused:
                raise  # the app's own failure; after a cut-off, the app only learnt that the client left


async def _too_many(send: Send, key: str, wait: int) -> None:
    message = f"too many uploads from {key} this hour: wait {wait} s, or upload through POST /api/documents"
    await reply(send, 429, {"error": message}, {"retry-after": str(wait)})


def _size(n: int) -> str:
    return f"{math.ceil(n / 1_000_000)} MB" if n >= 1_000_000 else f"{math.ceil(n / 1000)} KB"
