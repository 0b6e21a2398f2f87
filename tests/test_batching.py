"""Questions from many threads share model calls, and each caller gets its own vectors back."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from aiqa.embedders.batching import SharedBatches

from .fakes import FakeEmbedder


class Slow(FakeEmbedder):
    """The fake model, holding each call until released, so that questions queue up behind it."""

    def __init__(self):
        super().__init__()
        self.release = threading.Event()
        self.holding = 0  # questions in the call that waits for `release`

    def embed_queries(self, texts):
        self.holding = len(texts)
        self.release.wait(5)
        if any("boom" in t for t in texts):
            raise ValueError("cannot embed boom")
        return super().embed_queries(texts)


@pytest.mark.model  # waits out the batching window several times: the slow tier.
def test_questions_waiting_together_go_in_one_call_and_come_back_in_order():
    slow = Slow()
    shared = SharedBatches(slow)
    questions = [f"질문 {i}번은 무엇인가" for i in range(12)]
    with ThreadPoolExecutor(12) as pool:
        futures = [pool.submit(shared.embed_queries, [q]) for q in questions]
        # The first question holds the model; the other eleven wait for it.
        for _ in range(500):
            if shared._waiting.qsize() == 11:
                break
            threading.Event().wait(0.01)
        slow.release.set()
    results = [f.result() for f in futures]
    expected = FakeEmbedder().embed_queries(questions)
    for got, want in zip(results, expected, strict=True):
        assert got.shape == (1, slow.dim) and np.array_equal(got[0], want)
    assert sum(len(c) for c in slow.calls) == 12
    # All that waited behind the first call shared the second (none is left when the first took all).
    assert len(slow.calls) == 1 + (len(slow.calls[0]) < 12)


def test_a_question_that_fails_fails_alone():
    slow = Slow()
    slow.release.set()
    shared = SharedBatches(slow)
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(shared.embed_queries, [f"question {i}" if i != 3 else "boom"]) for i in range(8)]
    for i, future in enumerate(futures):
        if i == 3:
            with pytest.raises(ValueError, match="boom"):
                future.result()
        else:
            assert future.result().shape == (1, slow.dim)
    assert shared.embed_queries(["after the failure"]).shape == (1, slow.dim)
