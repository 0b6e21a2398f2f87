"""The answer decision: two small fitted models over general features, shipped as a versioned file.

- The selection model scores each candidate statement: the chance that it holds the answer.
- The answer model reads the best candidate and the question as a whole: the chance that the
  documents answer the question at all. Below its threshold aiqa says it cannot find the answer.

Both are logistic regressions over standardised features, fitted by `scripts/fit_decision.py`
(or `aiqa calibrate` on a user's own labelled questions) and stored as JSON, so running them
needs nothing but arithmetic.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aiqa.answer.candidates import DEPTH, SELECTION_FEATURES, Candidate, Question
from aiqa.errors import BadSetting
from aiqa.records import Hit
from aiqa.retrieve import CorpusStats

FORMAT = 1
DEFAULT_PATH = Path(__file__).with_name("decision.json")

ANSWER_FEATURES = (
    "selection",  # the best candidate's chance to hold the answer
    "coverage_context",  # of the best candidate (see SELECTION_FEATURES)
    "coverage_chunk",
    "phrases",
    "names",
    "novelty",
    "type_miss",
    "type_absent",  # asks for an amount/date/person and no candidate statement holds one
    "dense_top",  # best cosine of question and passage
    "dense_spread",  # how far the best passage stands out from the next ones
    "known",  # IDF-weighted share of the question's terms the corpus uses at all
    "names_known",  # share of the question's names some statement of the corpus uses, in any spelling
    "unknown_names",  # IDF-weighted share of the whole question made of names the corpus never mentions
    # The question is in its passages' language (see candidates.crosses): the name is historical, from when
    # every corpus was Korean. A question in another language shares few words with them.
    "korean",
    "dense_foreign",  # dense_top again for a question in another language (0 otherwise): there it is the main signal
    "statement_foreign",  # the best statement's own cosine, likewise
    "terms",  # log of the number of the question's terms
    "align_best",  # the best candidate's token alignment with a question in another language (0 otherwise)
    "align_top",  # the best alignment among all candidates (0 for a question in the passages' language)
)


_FROM_BEST = ("coverage_context", "coverage_chunk", "phrases", "names", "novelty", "type_miss")


@dataclass(frozen=True)
class Model:
    """A logistic regression over named, standardised features."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    threshold: float = 0.5

    def probability(self, values: dict[str, float]) -> float:
        z = self.intercept + sum(
            c * (values[f] - m) / s for f, m, s, c in zip(self.features, self.mean, self.scale, self.coef, strict=True)
        )
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Model:
        return cls(
            tuple(data["features"]),
            tuple(map(float, data["mean"])),
            tuple(map(float, data["scale"])),
            tuple(map(float, data["coef"])),
            float(data["intercept"]),
            float(data.get("threshold", 0.5)),
        )


@dataclass(frozen=True)
class Decision:
    selection: Model
    answer: Model
    about: dict[str, Any] = field(default_factory=dict)  # what it was fitted on, for people

    def as_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "selection": asdict(self.selection), "answer": asdict(self.answer), **self.about}


def load_decision(path: Path | None = None) -> Decision:
    """Read a decision file (the bundled one by default); raise BadSetting saying what is wrong."""
    path = path or DEFAULT_PATH
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT:
            raise ValueError(f"format {data.get('format')!r}, expected {FORMAT}")
        selection, answer = Model.from_json(data["selection"]), Model.from_json(data["answer"])
        # A file fitted before a feature was added still works without it; one naming features this
        # version does not compute cannot.
        unknown = (set(selection.features) - set(SELECTION_FEATURES)) | (set(answer.features) - set(ANSWER_FEATURES))
        if unknown:
            raise ValueError(f"it uses features this version does not compute: {sorted(unknown)}")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BadSetting(
            f"cannot use the answer decision file {path}: {exc}; refit it with `aiqa calibrate` or unset AIQA_DECISION"
        ) from None
    about = {k: v for k, v in data.items() if k not in ("format", "selection", "answer")}
    return Decision(selection, answer, about)


def answer_features(
    question: Question, best: Candidate, hits: list[Hit], stats: CorpusStats, ranked: list[Candidate] | None = None
) -> dict[str, float]:
    """The question-level features of the answer model, given the best candidate (and all of them)."""
    dense = [h.dense for h in hits[:DEPTH]]
    rest = dense[1:]
    q = question.terms
    foreign = bool(best.features.get("foreign"))  # see candidates.crosses
    return {
        "selection": best.score,
        **{
            k: best.features[k]
            for k in ("coverage_context", "coverage_chunk", "phrases", "names", "novelty", "type_miss")
        },
        "type_absent": float(all(c.features["type_miss"] for c in ranked or [best])),
        "dense_top": max(dense),
        "dense_spread": max(dense) - (sum(rest) / len(rest) if rest else max(dense)),
        "known": stats.coverage(q, {t for t in q if stats.known(t)}),
        "names_known": stats.coverage(question.names, {n for n in question.names if stats.stated_about(n)})
        if question.names
        else 1.0,
        "unknown_names": stats.coverage(q | question.names, {n for n in question.names if not stats.stated_about(n)}),
        "korean": float(not foreign),
        "dense_foreign": max(dense) if foreign else 0.0,
        "statement_foreign": best.features["statement_dense"] if foreign else 0.0,
        "terms": math.log1p(len(q)),
        "align_best": best.features["align"],
        "align_top": max(c.features["align"] for c in ranked or [best]),
    }


def fit_model(
    rows: list[dict[str, float]],
    labels: list[int],
    features: tuple[str, ...],
    *,
    weights: list[float] | None = None,
    c: float = 1.0,
) -> Model:
    """Fit a logistic regression on feature rows (scikit-learn, imported only here)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    x = np.array([[row[f] for f in features] for row in rows], dtype=float)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(C=c, max_iter=5000).fit((x - mean) / scale, np.array(labels), sample_weight=weights)
    return Model(
        features,
        tuple(round(float(v), 6) for v in mean),
        tuple(round(float(v), 6) for v in scale),
        tuple(round(float(v), 6) for v in model.coef_[0]),
        round(float(model.intercept_[0]), 6),
    )
