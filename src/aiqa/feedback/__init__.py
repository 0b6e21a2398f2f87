"""What users tell us: every answer the server gives is kept with its id, and 👍 / 👎 (with a comment) point at one.

The server records each answer it sends (question, answer, citations, index version, the decision's
confidence, whether it refused, the reader's groups) under a random id that the reply carries as
`answer_id`; feedback names that id. So a rating is tied to exactly what was shown, a client cannot
attach text of its own making to it, and the store never holds a document's text for a user who
could not read it: it holds what that user's own view of the index answered.

The store is an interface (`FeedbackStore`, base.py) with two implementations: SQLite in a file
beside the index (`<index>/feedback.sqlite3`, sqlite.py), in WAL mode with full synchronous commits,
so an answer id or a rating the server acknowledged survives a crash or a kill -9; and PostgreSQL
(postgres.py) for AIQA_FEEDBACK_URL=postgresql://... Records older than AIQA_FEEDBACK_DAYS are
dropped as new ones arrive.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiqa.errors import BadSetting
from aiqa.feedback.base import FeedbackStore, Shown, new_answer_id, read_rating
from aiqa.feedback.sqlite import SqliteFeedback

__all__ = ["FeedbackStore", "Shown", "SqliteFeedback", "new_answer_id", "open_feedback", "read_rating"]


def open_feedback(settings: Any) -> FeedbackStore:
    """The store settings name: AIQA_FEEDBACK_URL (postgresql://... or sqlite:///...), else SQLite beside the index."""
    url = settings.feedback_url
    if url and url.split("://")[0] in ("postgresql", "postgres"):
        from aiqa.feedback.postgres import PostgresFeedback

        return PostgresFeedback(url, settings.feedback_days)
    if url and not url.startswith("sqlite:///"):
        raise BadSetting(
            f"AIQA_FEEDBACK_URL={url.split('://')[0]}://... is not a store this aiqa can use: "
            "give postgresql://user:password@host/db or sqlite:///path/to/feedback.sqlite3, or unset it"
        )
    path = Path(url.removeprefix("sqlite:///")) if url else settings.index_dir / "feedback.sqlite3"
    return SqliteFeedback(path, settings.feedback_days)
