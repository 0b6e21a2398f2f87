"""The server's side of feedback: every answer sent is kept under its `answer_id`; POST /api/feedback rates one.

The store (aiqa.feedback) is opened on first use; when it cannot be (a read-only index volume),
answers are still given, without an id, and the server log says why once.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Generator
from typing import Any

import anyio
import regex
from fastapi import Depends, FastAPI, Request

from aiqa.errors import AiqaError
from aiqa.feedback import FeedbackStore, new_answer_id, open_feedback, read_rating
from aiqa.web.tokens import ApiAccess

log = logging.getLogger("aiqa.web.ratings")


ANSWER_ID = regex.compile(r'data-answer-id=\\?"([0-9a-f]{32})')  # in the HTML, or in its JSON (quotes escaped)


def rate_liked(recorder: Recorder, value: Any, liked: Any) -> int | None:
    """Rate the chat reply a user liked or disliked (Gradio's like event): its answer_id is in its HTML."""
    found = ANSWER_ID.search(value if isinstance(value, str) else json.dumps(value))
    store = recorder.store
    if found is None or store is None or liked is None:
        return None
    rating, comment = (1, "") if liked is True else (-1, "") if liked is False else (-1, str(liked)[:200])
    try:
        return store.rate(found.group(1), rating, comment)
    except AiqaError as exc:
        log.info("chat feedback not kept: %s", exc)
        return None


class Recorder:
    """Keeps the answers the server sends, so that feedback can name them."""

    def __init__(self, settings: Any, version: Any):
        self.settings = settings
        self.version = version  # () -> the live index version
        self.failed: str | None = None

    @functools.cached_property
    def store(self) -> FeedbackStore | None:
        try:
            return open_feedback(self.settings)
        except AiqaError as exc:
            self.failed = str(exc)
            log.warning("answers are given without an answer_id (no feedback): %s", exc)
            return None

    def keep(self, ident: str, answer: dict[str, Any], groups: frozenset[str] | None) -> dict[str, Any]:
        """Record an answer (in a worker thread); return it with its answer_id, or as it is when no store."""
        store = self.store
        if store is None:
            return answer
        try:
            store.record(ident, {**answer, "index_version": self.version()}, groups)
        except Exception:  # a full disk must not lose the answer itself
            log.exception("could not record answer %s", ident)
            return answer
        return {**answer, "answer_id": ident}

    def events(
        self, events: Generator[tuple[str, dict[str, Any]]], groups: frozenset[str] | None, ident: str | None = None
    ) -> Generator[tuple[str, dict[str, Any]]]:
        """An answer's event stream with the answer_id in each event; the final answer is the one recorded."""
        ident = ident or new_answer_id()
        try:
            for kind, data in events:
                if kind == "answer":
                    yield kind, self.keep(ident, data, groups)
                elif kind == "extractive" and self.store is not None:
                    yield kind, {**data, "answer_id": ident}
                else:
                    yield kind, data
        finally:
            events.close()


def add_feedback_route(app: FastAPI, access: ApiAccess, recorder: Recorder) -> None:
    @app.post("/api/feedback", dependencies=[Depends(access.read)], tags=["ask"])
    async def feedback(request: Request) -> dict[str, Any]:
        """Rate an answer: {"answer_id": from the reply, "rating": "up" | "down", "comment": optional text}."""
        try:
            body = await request.json()
        except ValueError:
            body = None
        answer_id, rating, comment = read_rating(body)
        store = recorder.store
        if store is None:
            raise AiqaError(f"feedback is off on this server: {recorder.failed}")
        ident = await anyio.to_thread.run_sync(store.rate, answer_id, rating, comment)
        return {"ok": True, "id": ident}
