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
