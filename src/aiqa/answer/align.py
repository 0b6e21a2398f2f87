"""How well a statement holds the words of a question asked in another language: token alignment.

An English question over Korean documents shares no word with them, so every keyword feature of
a candidate statement is blind, and the sentence vectors alone pick the answering statement
poorly. The encoder's contextual token states carry more: each content piece of the question is
matched to its most similar piece of the statement, and the similarities are averaged (a MaxSim
score, as late-interaction retrievers use). It costs one pass of the encoder over the candidate
statements not seen lately, so it is done only for questions that are not in Korean.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import regex

from aiqa.text.english import ENGLISH_STOPWORDS

_WORD = regex.compile(r"[\p{L}\p{N}]")
# Token states of recent statements kept per index version (float32, 384 dims: about 1,500 statements
# of 30 pieces).
STATE_CACHE_BYTES = 64 * 2**20


def content_pieces(pieces: list[str]) -> list[int]:
    """Positions of the pieces that carry content: not a stop word, not bare punctuation."""
    keep = [i for i, p in enumerate(pieces) if _WORD.search(p) and p.lstrip("▁").lower() not in ENGLISH_STOPWORDS]
    return keep or list(range(len(pieces)))


def maxsim(question: np.ndarray, statement: np.ndarray) -> float:
    """Mean over the question's pieces of their best cosine with a piece of the statement."""
    if not len(question) or not len(statement):
        return 0.0
    return float((question @ statement.T).max(axis=1).mean())


class Aligner:
    """Scores statements against a question through an embedder's token states, if it has them.

    Two caches spare the encoder: the token states of the last question (reranking the passages and
    picking the statement ask about the same question), and those of the statements seen lately, up
    to `cache_bytes` (the same passages answer many questions). An Aligner lives as
    long as its index version, so the states never outlive the text they were computed from.
    """

    def __init__(self, embedder, cache_bytes: int = STATE_CACHE_BYTES):
        self._tokens = getattr(embedder, "embed_tokens", None)
        self._last: tuple[str, np.ndarray] | None = None
        self._states: OrderedDict[str, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._cache_bytes = cache_bytes
        self._lock = threading.Lock()

    @property
    def available(self) -> bool:
        return self._tokens is not None

    def scores(self, question: str, statements: Sequence[str]) -> list[float] | None:
        """The alignment of each statement with the question; None when the embedder has no token states."""
        if self._tokens is None:
            return None
        if not statements:
            return []
        last = self._last  # one read: another thread may replace it meanwhile
        if last is not None and last[0] == question:
            asked = last[1]
        else:
            (pieces, states), *_ = self._tokens([question], query=True)
            asked = states[content_pieces(pieces)]
            self._last = (question, asked)
        found = self._statement_states(list(dict.fromkeys(statements)))
        return [maxsim(asked, found[text]) for text in statements]

    def _statement_states(self, texts: list[str]) -> dict[str, np.ndarray]:
        """The token states of each text, from the cache or from one encoder pass over the rest."""
        assert self._tokens is not None
        with self._lock:
            out = {t: self._states[t] for t in texts if t in self._states}
            for text in out:
                self._states.move_to_end(text)
        missing = [t for t in texts if t not in out]
        if missing:
            computed = {t: v for t, (_, v) in zip(missing, self._tokens(missing, query=False), strict=True)}
            out.update(computed)
            with self._lock:
                for text, states in computed.items():
                    if text not in self._states and states.nbytes <= self._cache_bytes:
                        self._states[text] = states
                        self._bytes += states.nbytes
                while self._bytes > self._cache_bytes:
                    _, dropped = self._states.popitem(last=False)
                    self._bytes -= dropped.nbytes
        return out
