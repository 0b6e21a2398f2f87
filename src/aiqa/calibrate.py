"""Fit the answer decision on labelled questions: collect features, fit both models, place the threshold.

Used by `aiqa calibrate` (a user's own labelled questions over their own index) and by
`scripts/fit_decision.py` (the bundled decision file). Answerable questions teach which
statement holds the answer (it contains a gold string) and what an answerable question looks
like; unanswerable ones (questions about documents left out of the index, off-topic questions)
teach when to refuse.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from aiqa.answer.candidates import (
    SELECTION_FEATURES,
    Candidate,
    Question,
    answered_by_structure,
    candidates,
    ordered,
)
from aiqa.answer.decision import ANSWER_FEATURES, Decision, answer_features, fit_model
from aiqa.engine import Engine
from aiqa.errors import BadRequest
from aiqa.evaluate import Case, contains, is_answerable
from aiqa.pipeline import MIN_DEPTH
from aiqa.records import Hit
from aiqa.retrieve import CorpusStats
from aiqa.text.korean import analyse

# Share of answerable questions the fitted threshold may refuse (on the questions it is fitted on).
TARGET_FALSE_ABSTENTIONS = 0.02


@dataclass
class Example:
    """One labelled question with what the answer layer sees of it."""

    case: Case
    answerable: bool
    question: Question
    hits: list[Hit]
    candidates: list[Candidate]
    labels: list[int]  # 1 where the candidate holds a gold string
    stats: CorpusStats
    weight: float = 1.0


def collect(
    engine: Engine, cases: list[Case], weight: float = 1.0, vectors: dict[str, Any] | None = None
) -> list[Example]:
    """Retrieve for every case on the engine's index and describe its candidates.

    `vectors` maps question texts to query vectors already computed (by the same model); the
    questions missing from it are encoded in batches, which is much faster than one by one.
    """
    pipeline = engine.pipeline()
    retriever, composer = pipeline.retriever, pipeline.composer
    vectors = dict(vectors or {})
    missing = [c.q for c in cases if c.q not in vectors]
    if missing:
        vectors.update(zip(missing, engine.embedder.embed_queries(missing), strict=True))
    sources = set(retriever.index.documents)
    out = []
    for case in cases:
        analysis = analyse(case.q)
        question = Question.read(analysis, retriever.stats)
        # the passages an answer reads (aiqa.pipeline.Pipeline.run), so the models learn what they will see
        retrieved = retriever.search(
            analysis, k=MIN_DEPTH, query_vector=vectors[case.q], also=composer.wanted(question)
        )
        hits = composer.rerank(question, retrieved)
        found = candidates(question, hits, composer.statements, composer.aligner)
        labels = [int(any(contains(c.quote, g) for g in case.gold)) for c in found]
        out.append(Example(case, is_answerable(case, sources), question, hits, found, labels, retriever.stats, weight))
    return out


def best_candidates(examples: list[Example], decision: Decision) -> list[Candidate | None]:
    """The most likely answering candidate of each example under a decision's selection model."""
    out: list[Candidate | None] = []
    for ex in examples:
        scored = ordered(ex.candidates, decision.selection)
        out.append(scored[0] if scored else None)
    return out


def fit(
    examples: list[Example],
    target: float = TARGET_FALSE_ABSTENTIONS,
    about: dict | None = None,
    selection_only: Sequence[Example] = (),
) -> Decision:
    """Fit the selection and answer models and place the answer threshold; raise BadRequest if the
    examples cannot teach them (no answerable or no unanswerable question, no gold found).

    `selection_only` examples teach the selection model only (which statement answers), not whether
    to answer: questions whose answerable and unanswerable kinds would pull the threshold of all.
    """
    taught = [ex for ex in [*examples, *selection_only] if ex.answerable and any(ex.labels)]
    if not taught:
        raise BadRequest("no answerable question has a gold string in its retrieved passages: check the gold strings")
    if all(ex.answerable for ex in examples) or not any(ex.answerable for ex in examples):
        raise BadRequest("calibration needs both answerable and unanswerable questions")
    rows = [f for ex in taught for f in (c.features for c in ex.candidates)]
    labels = [y for ex in taught for y in ex.labels]
    weights = [ex.weight for ex in taught for _ in ex.candidates]
    selection = fit_model(rows, labels, SELECTION_FEATURES, weights=weights)
    draft = Decision(selection, selection)  # the answer model is not needed to pick candidates
    usable = [(ex, b) for ex, b in zip(examples, best_candidates(examples, draft), strict=True) if b is not None]
    answer_rows = [answer_features(ex.question, b, ex.hits, ex.stats, ex.candidates) for ex, b in usable]
    answer = fit_model(
        answer_rows, [int(ex.answerable) for ex, _ in usable], ANSWER_FEATURES, weights=[ex.weight for ex, _ in usable]
    )
    answerable = sorted(answer.probability(r) for r, (ex, _) in zip(answer_rows, usable, strict=True) if ex.answerable)
    threshold = answerable[int(target * len(answerable))] if answerable else 0.5
    return Decision(selection, replace(answer, threshold=round(threshold, 6)), about or {})


def measure(examples: list[Example], decision: Decision) -> dict[str, Any]:
    """How a decision does on examples: answer hits, false abstentions, refusals, selection accuracy."""
    answerable = [0, 0, 0, 0]  # questions, answered with a gold string shown, refused, best holds gold
    unanswerable = [0, 0]  # questions, refused
    for ex, best in zip(examples, best_candidates(examples, decision), strict=True):
        features = answer_features(ex.question, best, ex.hits, ex.stats, ex.candidates) if best else None
        p = decision.answer.probability(features) if features else 0.0
        refused = p < decision.answer.threshold and not (best is not None and answered_by_structure(best))
        if ex.answerable:
            holds = best is not None and any(contains(best.quote, g) for g in ex.case.gold)
            answerable[0] += 1
            answerable[1] += holds and not refused
            answerable[2] += refused
            answerable[3] += holds
        else:
            unanswerable[0] += 1
            unanswerable[1] += refused

    def share(a: int, b: int) -> float:
        return round(a / b, 4) if b else 0.0

    return {
        "answerable": answerable[0],
        "unanswerable": unanswerable[0],
        "answer_hit": share(answerable[1], answerable[0]),
        "false_abstentions": share(answerable[2], answerable[0]),
        "refusals": share(unanswerable[1], unanswerable[0]),
        "selection": share(answerable[3], answerable[0]),
    }
