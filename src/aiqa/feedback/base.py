"""What users tell us: the records of answers and ratings, and the interface every feedback store implements.

See aiqa.feedback (the package) for the design; aiqa.feedback.sqlite and aiqa.feedback.postgres are the stores.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiqa.errors import BadRequest

MAX_COMMENT = 2000


@dataclass(frozen=True)
class Shown:
    """One answer as the server sent it, with its feedback (+1 / -1 and comments), newest last."""

    id: str
    at: float
    question: str
    answer: str
    citations: list[dict[str, Any]]
    passages: list[dict[str, Any]]
    index_version: str
    confidence: float
    abstained: bool
    groups: list[str] | None
    ratings: list[tuple[int, str]] = field(default_factory=list)

    @property
    def disliked(self) -> bool:
        return any(r < 0 for r, _ in self.ratings)

    @property
    def liked(self) -> bool:
        return any(r > 0 for r, _ in self.ratings) and not self.disliked


class FeedbackStore(Protocol):
    """Where answers and their ratings are kept (SQLite by default)."""

    def record(self, ident: str, answer: dict[str, Any], groups: frozenset[str] | None) -> None:
        """Keep one answer JSON as sent (aiqa.contract) under its id (new_answer_id)."""
        ...

    def rate(self, answer_id: str, rating: int, comment: str = "") -> int:
        """Add a rating (+1 or -1) to a recorded answer; raise BadRequest for an unknown id."""
        ...

    def answers(self, since: float = 0.0) -> list[Shown]:
        """Every recorded answer since a time, with its ratings, oldest first."""
        ...


def new_answer_id() -> str:
    """A random id an answer is kept under: knowing it means having been shown the answer."""
    return uuid.uuid4().hex


def read_rating(body: Any) -> tuple[str, int, str]:
    """(answer_id, +1 or -1, comment) of a feedback body; raise BadRequest saying what is wrong."""
    shape = 'send JSON like {"answer_id": "...", "rating": "up" or "down", "comment": "..."}'
    if not isinstance(body, dict) or not isinstance(body.get("answer_id"), str):
        raise BadRequest(f"feedback needs the answer_id of the answer it rates: {shape}")
    rating = {"up": 1, "down": -1, 1: 1, -1: -1}.get(body.get("rating"))
    if rating is None or isinstance(body.get("rating"), bool):
        raise BadRequest(f'rating must be "up" or "down" (or 1 / -1): {shape}')
    comment = body.get("comment") or ""
    if not isinstance(comment, str) or len(comment) > MAX_COMMENT:
        raise BadRequest(f"comment must be text of at most {MAX_COMMENT} characters")
    return body["answer_id"], rating, comment.strip()


def shown_row(r: Any, ratings: dict[str, list[tuple[int, str]]]) -> Shown:
    """An answers row (in the schema's column order) as a Shown."""
    data = (r[0], r[1], r[2], r[3], json.loads(r[4]), json.loads(r[5]), r[6], r[7], bool(r[8]), json.loads(r[9]))
    return Shown(*data, ratings.get(r[0], []))


def answer_row(ident: str, answer: dict[str, Any], groups: frozenset[str] | None) -> tuple:
    """What one answer JSON keeps, in the schema's column order (passages without their scores)."""
    passages = [{"source": p["source"], "locator": p["locator"], "text": p["text"]} for p in answer["passages"]]
    return (
        ident,
        time.time(),
        answer["question"],
        answer["answer"],
        json.dumps(answer["citations"], ensure_ascii=False),
        json.dumps(passages, ensure_ascii=False),
        answer.get("index_version", ""),
        float(answer.get("confidence", 0.0)),
        int(bool(answer["abstained"])),
        json.dumps(None if groups is None else sorted(groups)),
    )
