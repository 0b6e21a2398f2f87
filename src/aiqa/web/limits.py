"""Every limit of the web server in one place: how much runs at once, how large a body, how slow a client.

guard.py, bodies.py, server.py and ui.py take their numbers from one `Limits`; `serve()` and the
tests start uvicorn with `uvicorn_options()`, so both run the same connection rules.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from aiqa.config import Settings

# Most files one upload may carry (HTTP API, admin tab and Gradio's upload route alike).
MAX_FILES = 20


@dataclass(frozen=True)
class Limits:
    # Engine calls over HTTP at once, and chat questions answered at once: one question costs
    # 0.1-0.6 s of CPU and torch already spreads one over both cores of the 2-core box, so more
    # parallel calls only slow each other down; at most 4 questions run at once.
    api_concurrency: int = 2
    chat_concurrency: int = 2
    # Uploads and rebuilds from the admin tab, one at a time (the index builder takes a lock anyway).
    admin_concurrency: int = 1
    # Answers being written by the LLM server at once (AIQA_LLM_CONCURRENCY); more wait.
    llm_writers: int = 4
    # Questions waiting, in the chat's queue and in the API's line each (AIQA_QUEUE_SIZE).
    queue_size: int = 64
    # Largest /api/ask body: a question of 1,000 characters and a capped history fit many times over.
    ask_bytes: int = 256_000
    # Largest body of any other route but uploads: the chat's queue/join carries the whole chat
    # history the page holds (replies as HTML), a few hundred KB for a long chat.
    other_bytes: int = 4_000_000
    # One upload: MAX_FILES files of AIQA_MAX_FILE_MB each, plus the multipart framing.
    file_bytes: int = 50_000_000
    upload_files: int = MAX_FILES
    # Per client and hour, for uploads through Gradio's route: five full uploads.
    upload_files_per_hour: int = 5 * MAX_FILES
    # Open connections (uvicorn's limit_concurrency): past it, 503 at once. Each chat user holds
    # one event stream while waiting, so this sits well above the queue.
    connections: int = 256
    # A client must send its request line and headers within this many seconds (uvicorn has no
    # such timeout of its own; slow-header clients would hold connections for ever).
    header_timeout_s: float = 10.0
    keep_alive_s: float = 5.0

    @classmethod
    def from_settings(cls, settings: Settings, **changes: Any) -> Limits:
        return cls(
            llm_writers=settings.llm_concurrency,
            queue_size=settings.queue_size,
            file_bytes=settings.max_file_mb * 1_000_000,
            **changes,
        )

    @property
    def upload_bytes(self) -> int:
        """Largest body of one upload request."""
        return self.file_bytes * self.upload_files + 1_000_000

    @property
    def upload_bytes_per_hour(self) -> int:
        return self.upload_bytes * 5

    def uvicorn_options(self) -> dict[str, Any]:
        """uvicorn.run/Config keywords: the connection limits, and no proxy handling of uvicorn's own."""
        timeout = self.header_timeout_s

        class Protocol(HeaderDeadline):
            header_timeout_s = timeout

        return {
            # aiqa decides alone whom to believe, on the real connecting address and from
            # AIQA_TRUSTED_PROXIES (guard.py): uvicorn's own rewriting of the client address from
            # X-Forwarded-For would run first and make that check judge the wrong address.
            "proxy_headers": False,
            "forwarded_allow_ips": "",
            "limit_concurrency": self.connections,
            "timeout_keep_alive": self.keep_alive_s,
            "http": Protocol,
        }


class HeaderDeadline(H11Protocol):
    """uvicorn's HTTP/1.1 protocol that closes a connection whose request headers do not arrive in time."""

    header_timeout_s = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()

    def _arm(self) -> None:
        # A new request replaces self.cycle once its headers are complete; until then the clock runs.
        self.loop.call_later(self.header_timeout_s, self._expire, self.cycle)

    def _expire(self, cycle: Any) -> None:
        # A connection upgraded to a websocket belongs to another protocol now: not ours to close.
        mine = self.transport.get_protocol() is self
        if mine and self.cycle is cycle and not self.transport.is_closing():
            self.transport.close()
