"""The knowledge manager's view (`aiqa report`): which questions the documents fail, and labels for `aiqa calibrate`.

From the answers the server kept (aiqa.feedback): those refused, answered with low confidence or
disliked, grouped by similar question (their e5 embeddings, cosine at least SIMILAR to a group's
first question), most frequent first, each with the passages found; a count of answered, refused
and disliked per day; and the rated answers as labelled question lines that `aiqa calibrate`
reads: a liked answer is answerable with its first quote as gold, a disliked one is unanswerable
from the documents until someone adds the right gold string to its line.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aiqa.feedback import Shown

SIMILAR = 0.9  # e5: two phrasings of one question score 0.95+, two questions of one corpus below 0.88
LOW_CONFIDENCE = 0.5


@dataclass
class Group:
    questions: list[str] = field(default_factory=list)
    why: Counter = field(default_factory=Counter)  # refused | low confidence | disliked
    sources: Counter = field(default_factory=Counter)
    comments: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "count": len(self.questions),
            "question": self.questions[0],
            "also": sorted(set(self.questions[1:]) - {self.questions[0]}),
            "why": dict(self.why),
            "passages_from": [s for s, _ in self.sources.most_common(5)],
            "comments": self.comments[:5],
        }


def reasons(shown: Shown, low: float = LOW_CONFIDENCE) -> list[str]:
    out = []
    if shown.abstained:
        out.append("refused")
    elif shown.confidence < low:
        out.append("low confidence")
    if shown.disliked:
        out.append("disliked")
    return out


def grouped(answers: list[Shown], embed: Any, low: float = LOW_CONFIDENCE) -> list[Group]:
    """The flagged answers grouped by similar question, the largest group first."""
    flagged = [(a, why) for a in answers if (why := reasons(a, low))]
    if not flagged:
        return []
    vectors = np.asarray(embed([a.question for a, _ in flagged]), dtype=np.float32)
    heads: list[int] = []
    groups: list[Group] = []
    for i, (answer, why) in enumerate(flagged):
        scores = [float(vectors[h] @ vectors[i]) for h in heads]
        best = int(np.argmax(scores)) if scores else -1
        if best < 0 or scores[best] < SIMILAR:
            heads.append(i)
            groups.append(Group())
            best = len(groups) - 1
        group = groups[best]
        group.questions.append(answer.question)
        group.why.update(why)
        group.sources.update(p["source"] for p in answer.passages)
        group.comments.extend(c for r, c in answer.ratings if c)
    return sorted(groups, key=lambda g: -len(g.questions))


def per_day(answers: list[Shown]) -> list[dict[str, Any]]:
    """Answered, refused and disliked answers per day (UTC), oldest first."""
    days: dict[str, Counter] = {}
    for a in answers:
        day = time.strftime("%Y-%m-%d", time.gmtime(a.at))
        days.setdefault(day, Counter())["refused" if a.abstained else "answered"] += 1
        days[day]["disliked"] += int(a.disliked)
    return [{"day": d, **{k: c[k] for k in ("answered", "refused", "disliked")}} for d, c in sorted(days.items())]


def labelled(answers: list[Shown]) -> list[dict[str, Any]]:
    """The rated answers as `aiqa calibrate` lines: liked -> answerable with its quote, disliked -> not."""
    lines = []
    for a in answers:
        if a.disliked:
            lines.append(
                {"id": f"fb-{a.id[:12]}", "q": a.question, "gold": [], "answerable": False, "from": "disliked"}
            )
        elif a.liked and a.citations and not a.abstained:
            quote = a.citations[0]["quote"]
            lines.append(
                {"id": f"fb-{a.id[:12]}", "q": a.question, "gold": [quote], "answerable": True, "from": "liked"}
            )
    return lines
