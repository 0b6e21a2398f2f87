"""What users tell us: every answer the server gives is kept with its id, and 👍 / 👎 (with a comment) point at one.

The server records each answer it sends (question, answer, citations, index version, the decision's
confidence, whether it refused, the reader's groups) under a random id that the reply carries as
`answer_id`; feedback names that id. So a rating is tied to exactly what was shown, a client cannot
attach text of its own making to it, and the store never holds a document's text for a user who
could not read it: it holds what that user's own view of the index answered.

The store is an interface (`FeedbackStore`) with one implementation here: SQLite in a file beside
the index (`<index>/feedback.sqlite3`), in WAL mode with full synchronous commits, so an answer id
or a rating the server acknowledged survives a crash or a kill -9. Records older than
AIQA_FEEDBACK_DAYS are dropped as new ones arrive.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from aiqa.errors import BadRequest, BadSetting

MAX_COMMENT = 2000
_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    id TEXT PRIMARY KEY, at REAL NOT NULL, question TEXT NOT NULL, answer TEXT NOT NULL,
    citations TEXT NOT NULL, passages TEXT NOT NULL, index_version TEXT NOT NULL,
    confidence REAL NOT NULL, abstained INTEGER NOT NULL, groups TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT, answer_id TEXT NOT NULL REFERENCES answers(id),
    at REAL NOT NULL, rating INTEGER NOT NULL, comment TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS answers_at ON answers(at);
CREATE INDEX IF NOT EXISTS feedback_answer ON feedback(answer_id);
"""


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


class SqliteFeedback:
    """The default store: one SQLite file in WAL mode, each write committed before it is acknowledged."""

    def __init__(self, path: Path, retention_days: int = 90):
        self.path = path
        self.retention_s = retention_days * 86400.0
        self._local = threading.local()
        self._writes = 0
        with self._db() as db:
            db.executescript(_SCHEMA)

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            except (OSError, sqlite3.Error) as exc:
                raise BadSetting(
                    f"cannot open the feedback store {self.path} ({exc}): make its folder writable"
                ) from None
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")  # a commit is on disk before the server says "ok"
            db.execute("PRAGMA foreign_keys=ON")
            self._local.db = db
        return db

    def record(self, ident: str, answer: dict[str, Any], groups: frozenset[str] | None) -> None:
        row = answer_row(ident, answer, groups)
        with self._db() as db:
            db.execute("INSERT INTO answers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
        self._writes += 1
        if self._writes % 1000 == 1:
            self.prune()

    def rate(self, answer_id: str, rating: int, comment: str = "") -> int:
        with self._db() as db:
            if db.execute("SELECT 1 FROM answers WHERE id = ?", (answer_id,)).fetchone() is None:
                raise BadRequest(f"no answer {answer_id[:40]!r} to rate: send the answer_id of a reply of this server")
            cursor = db.execute(
                "INSERT INTO feedback (answer_id, at, rating, comment) VALUES (?, ?, ?, ?)",
                (answer_id, time.time(), rating, comment),
            )
        return int(cursor.lastrowid or 0)

    def prune(self) -> None:
        cutoff = time.time() - self.retention_s
        with self._db() as db:
            db.execute("DELETE FROM feedback WHERE answer_id IN (SELECT id FROM answers WHERE at < ?)", (cutoff,))
            db.execute("DELETE FROM answers WHERE at < ?", (cutoff,))

    def answers(self, since: float = 0.0) -> list[Shown]:
        db = self._db()
        ratings: dict[str, list[tuple[int, str]]] = {}
        for answer_id, rating, comment in db.execute(
            "SELECT answer_id, rating, comment FROM feedback WHERE at >= ? ORDER BY id", (since,)
        ):
            ratings.setdefault(answer_id, []).append((rating, comment))
        rows = db.execute("SELECT * FROM answers WHERE at >= ? ORDER BY at", (since,))
        return [shown_row(r, ratings) for r in rows]


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


def open_feedback(settings: Any) -> FeedbackStore:
    """The store settings name: AIQA_FEEDBACK_URL (postgresql://... or sqlite:///...), else SQLite beside the index."""
    url = settings.feedback_url
    if url and url.split("://")[0] in ("postgresql", "postgres"):
        from aiqa.feedback_pg import PostgresFeedback

        return PostgresFeedback(url, settings.feedback_days)
    if url and not url.startswith("sqlite:///"):
        raise BadSetting(
            f"AIQA_FEEDBACK_URL={url.split('://')[0]}://... is not a store this aiqa can use: "
            "give postgresql://user:password@host/db or sqlite:///path/to/feedback.sqlite3, or unset it"
        )
    path = Path(url.removeprefix("sqlite:///")) if url else settings.index_dir / "feedback.sqlite3"
    return SqliteFeedback(path, settings.feedback_days)
