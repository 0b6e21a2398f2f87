"""The default feedback store: SQLite in a file beside the index, WAL mode, each write committed before it is
acknowledged."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from aiqa.errors import BadRequest, BadSetting
from aiqa.feedback.base import Shown, answer_row, shown_row

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
