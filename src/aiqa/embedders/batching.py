"""Questions asked at the same time are embedded together: one model call for all that are waiting.

On a CPU one forward pass over eight short questions costs little more than over one, while eight
passes side by side fight over the same cores. The server therefore hands every question's encoding
to one thread, which takes whatever has queued up while it was busy and embeds it as one batch; a
lone question goes through at once, so an idle server answers as fast as before.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future

import numpy as np

log = logging.getLogger("aiqa.embedders.batching")

MAX_BATCH = 32  # questions in one call; beyond this a batch's padding starts to cost


class SharedBatches:
    """An Embedder whose `embed_queries` calls, from any thread, are served in shared batches."""

    def __init__(self, inner, max_batch: int = MAX_BATCH):
        self.inner = inner
        self.name, self.dim = inner.name, inner.dim
        if hasattr(inner, "embed_tokens"):  # token states (aiqa.answer.align) are asked for one question at a time
            self.embed_tokens = inner.embed_tokens
        if hasattr(inner, "embed_spans"):  # a build's pooled statements (aiqa.index.views)
            self.embed_spans = inner.embed_spans
        self.max_batch = max_batch
        self._waiting: queue.SimpleQueue[tuple[list[str], Future[np.ndarray]]] = queue.SimpleQueue()
        self._worker: threading.Thread | None = None
        self._start = threading.Lock()

    def __repr__(self) -> str:
        return f"SharedBatches({self.inner!r})"

    def embed_passages(self, texts: Sequence[str], *, batch_size: int = 32, progress: bool = False) -> np.ndarray:
        return self.inner.embed_passages(texts, batch_size=batch_size, progress=progress)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("pass a list of texts, not a single string")
        done: Future[np.ndarray] = Future()
        self._ensure_worker()
        self._waiting.put((list(texts), done))
        return done.result()

    def _ensure_worker(self) -> None:
        if self._worker is None:
            with self._start:
                if self._worker is None:
                    self._worker = threading.Thread(target=self._serve, name="aiqa-question-batches", daemon=True)
                    self._worker.start()

    def _serve(self) -> None:
        while True:
            batch = [self._waiting.get()]
            count = len(batch[0][0])
            while count < self.max_batch:
                try:
                    batch.append(self._waiting.get_nowait())
                except queue.Empty:
                    break
                count += len(batch[-1][0])
            self._run(batch)

    def _run(self, batch: list[tuple[list[str], Future[np.ndarray]]]) -> None:
        texts = [text for texts, _ in batch for text in texts]
        try:
            vectors = self.inner.embed_queries(texts)
        except Exception as exc:
            if len(batch) > 1:  # one bad question must not fail the others: each again on its own
                for one in batch:
                    self._run([one])
                return
            log.warning("embedding a question failed: %s", exc)
            batch[0][1].set_exception(exc)
            return
        start = 0
        for texts, done in batch:
            done.set_result(vectors[start : start + len(texts)])
            start += len(texts)
