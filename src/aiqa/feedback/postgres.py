"""The feedback store on PostgreSQL (AIQA_FEEDBACK_URL=postgresql://user:password@host/db): the same two tables.

For a company that keeps such records in its own database, or runs several app replicas that
must share one store. Each write is its own committed transaction (PostgreSQL's default
synchronous commit), so an acknowledged answer id or rating is on the server's disk. psycopg is
imported only when this store is chosen (the `postgres` extra).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from aiqa.errors import BadRequest, BadSetting
from aiqa.feedback.base import Shown, answer_row, shown_row

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS aiqa_answers (
        id TEXT PRIMARY KEY, at DOUBLE PRECISION NOT NULL, question TEXT NOT NULL, answer TEXT NOT NULL,
        citations TEXT NOT NULL, passages TEXT NOT NULL, index_version TEXT NOT NULL,
        confidence DOUBLE PRECISION NOT NULL, abstained INTEGER NOT NULL, groups TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS aiqa_feedback (
        id BIGSERIAL PRIMARY KEY, answer_id TEXT NOT NULL REFERENCES aiqa_answers(id) ON DELETE CASCADE,
        at DOUBLE PRECISION NOT NULL, rating INTEGER NOT NULL, comment TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS aiqa_answers_at ON aiqa_answers(at)",
    "CREATE INDEX IF NOT EXISTS aiqa_feedback_answer ON aiqa_feedback(answer_id)",
)


class PostgresFeedback:
    """Answers and ratings in two tables of a PostgreSQL database; one connection per thread."""

    def __init__(self, url: str, retention_days: int = 90):
        self.url = url
        self.retention_s = retention_days * 86400.0
        self._local = threading.local()
        self._writes = 0
        db = self._db()
        for statement in _SCHEMA:
            db.execute(statement)

    def _db(self) -> Any:
        db = getattr(self._local, "db", None)
        if db is None or db.closed:
            try:
                import psycopg
            except ImportError:
                raise BadSetting(
                    "AIQA_FEEDBACK_URL=postgresql://... needs psycopg: install aiqa with the postgres extra "
                    "(pip install 'aiqa[postgres]')"
                ) from None
            try:
                db = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
            except psycopg.Error as exc:
                host = self.url.rsplit("@", 1)[-1]
                raise BadSetting(
                    f"cannot reach the feedback database at {host} ({exc}): check AIQA_FEEDBACK_URL"
                ) from None
            self._local.db = db
        return db

    def record(self, ident: str, answer: dict[str, Any], groups: frozenset[str] | None) -> None:
        self._db().execute(
            "INSERT INTO aiqa_answers VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            answer_row(ident, answer, groups),
        )
        self._writes += 1
        if self._writes % 1000 == 1:
            self.prune()

    def rate(self, answer_id: str, rating: int, comment: str = "") -> int:
        db = self._db()
        if db.execute("SELECT 1 FROM aiqa_answers WHERE id = %s", (answer_id,)).fetchone() is None:
            raise BadRequest(f"no answer {answer_id[:40]!r} to rate: send the answer_id of a reply of this server")
        row = db.execute(
            "INSERT INTO aiqa_feedback (answer_id, at, rating, comment) VALUES (%s, %s, %s, %s) RETURNING id",
            (answer_id, time.time(), rating, comment),
        ).fetchone()
        return int(row[0])

    def prune(self) -> None:
        self._db().execute("DELETE FROM aiqa_answers WHERE at < %s", (time.time() - self.retention_s,))

    def answers(self, since: float = 0.0) -> list[Shown]:
        db = self._db()
        ratings: dict[str, list[tuple[int, str]]] = {}
        for answer_id, rating, comment in db.execute(
            "SELECT answer_id, rating, comment FROM aiqa_feedback WHERE at >= %s ORDER BY id", (since,)
        ):
            ratings.setdefault(answer_id, []).append((rating, comment))
        rows = db.execute("SELECT * FROM aiqa_answers WHERE at >= %s ORDER BY at", (since,)).fetchall()
        return [shown_row(r, ratings) for r in rows]
