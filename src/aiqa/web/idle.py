"""Keep an idle server idle: slow down the polling loops of Gradio's queue.

Gradio's queue looks for new chat events every millisecond and for progress to send every 10 ms
(on Linux; on Windows Gradio itself uses 50 ms and 100 ms). With no client connected that alone
kept the event-loop thread at 2-8 % of a core (bench/idle.py). At 50 ms and 100 ms an idle
server is near zero, and a chat question waits on average 25 ms more to start, next to the
hundreds of milliseconds it takes to answer. The JSON API does not go through this queue.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("aiqa.web.idle")
EVENT_POLL_S = 0.05  # how often an idle queue looks for a new chat event
PROGRESS_POLL_S = 0.1  # how often it looks for progress to send


def quiet_queue(demo: Any) -> None:
    """Set the polling intervals of a Blocks' queue (after `demo.queue(...)`)."""
    # Gradio keeps the queue as `Blocks._queue` and offers no setting for these intervals; a
    # Gradio without these attributes is left as it is (tests/test_idle.py measures the result).
    queue = getattr(demo, "_queue", None)
    if queue is None or not hasattr(queue, "sleep_when_free"):
        log.warning("aiqa: this Gradio's queue has no polling interval to set; an idle server may use more CPU")
        return
    queue.sleep_when_free = max(queue.sleep_when_free, EVENT_POLL_S)
    queue.progress_update_sleep_when_free = max(getattr(queue, "progress_update_sleep_when_free", 0), PROGRESS_POLL_S)


# Seconds after the last request at which freed memory goes back to the system.
GIVE_BACK_AFTER_S = 2.0


def give_back_memory() -> None:
    """Return the C heap's free pages to the system (glibc's malloc_trim); elsewhere, nothing."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        trim = getattr(libc, "malloc_trim", None)
    except OSError:
        trim = None
    if trim is not None:
        trim(0)


class GiveBackWhenIdle:
    """ASGI middleware: once no request has come for GIVE_BACK_AFTER_S, give the heap's free pages back.

    A question's work (Kiwi's analysis, the encoder's activations, the answer's candidates) leaves
    freed memory that glibc keeps for the next one: tens of megabytes an idle server holds for
    nothing. One timer, restarted by each request, so an idle server wakes up once and then sleeps.
    """

    def __init__(self, app: Any, after_s: float = GIVE_BACK_AFTER_S):
        import threading

        self.app = app
        self.after_s = after_s
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            if scope.get("type") == "http":
                self._restart()

    def _restart(self) -> None:
        import threading

        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(self.after_s, give_back_memory)
            self._timer.daemon = True
            self._timer.start()
