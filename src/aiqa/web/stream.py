"""The chat's reply as it forms: the quoted answer at once, the model's text while it writes, then the final answer.

Gradio sends every value a handler yields to the page, so the model's tokens are gathered and
shown at most every `every` seconds: one redraw per token would send the whole reply again for
each of hundreds of tokens.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator
from typing import Any

from aiqa.errors import AiqaError
from aiqa.web.render import render_result, writing_html

# Often enough to look live, rarely enough that a long answer is not resent a few hundred times.
EVERY_S = 0.1


def reply_views(
    extractive: dict[str, Any],
    stream: Generator[tuple[str, dict[str, Any]], None, None] | None,
    lang: str,
    every: float = EVERY_S,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[str]:
    """The chat views of one reply: the extractive answer, then (when the LLM server writes: `stream`
    holds aiqa.contract.events) the growing text, then the final answer. The model's reply is dropped
    when the chat stops reading."""
    yield render_result(extractive, lang)
    if stream is None:
        return
    try:
        next(stream, None)  # the extractive answer, shown already
        text, shown, last = "", "", clock()
        for kind, data in stream:
            if kind == "token":
                text += data.get("text", "")
                if text != shown and clock() - last >= every:
                    shown, last = text, clock()
                    yield writing_html(text, extractive, lang)
            elif kind == "answer":
                yield render_result(data, lang)
                return
    except AiqaError:
        pass  # the written answer is lost; the quoted one below is still right
    finally:
        stream.close()
    yield render_result(extractive, lang)  # the model's text is unchecked: never leave it on screen
