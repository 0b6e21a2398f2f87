"""Question -> ranked Hits: dense (FAISS over e5 vectors) and Korean BM25, fused by weighted scores."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aiqa.chunk import Chunk
from aiqa.index import LoadedIndex
from aiqa.korean import tokens

# Fusion chosen on the dev set (bench/fusion.py prints the comparison): min-max normalised dense
# and BM25 scores, mixed with these weights.
DENSE_WEIGHT = 0.6
BM25_WEIGHT = 1.0 - DENSE_WEIGHT


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk with its fused score and the two signals behind it."""

    chunk: Chunk
    id: int
    score: float
    dense: float  # cosine similarity of question and chunk
    keyword: float  # BM25 score, normalised to the best keyword score of this question (0..1)
    rank: int


class Retriever:
    """Everything per-index is built here once; `search` only scores one question."""

    def __init__(self, index: LoadedIndex, embedder, *, dense_weight: float = DENSE_WEIGHT):
        from rank_bm25 import BM25Okapi

        self.index = index
        self.embedder = embedder
        self.dense_weight = dense_weight
        self.chunks = index.chunks
        corpus_tokens = [tokens(c.context) for c in self.chunks]
        self.vocabulary = {t for toks in corpus_tokens for t in toks}
        # BM25Okapi gives terms in over half the chunks a negative idf; a floor keeps them harmless.
        self.bm25 = BM25Okapi([toks or ["<empty>"] for toks in corpus_tokens], epsilon=0.25)

    def encode(self, question: str) -> np.ndarray:
        return self.embedder.embed_queries([question])[0]

    def search(self, question: str, k: int = 5, *, query_vector: np.ndarray | None = None) -> list[Hit]:
        """Return the k best chunks for a question, best first."""
        n = len(self.chunks)
        if n == 0:
            return []
        vector = self.encode(question) if query_vector is None else query_vector
        dense = np.full(n, -1.0, dtype=np.float32)
        depth = min(n, max(100, 4 * k))
        scores, ids = self.index.vectors.search(vector.reshape(1, -1).astype(np.float32), depth)
        dense[ids[0]] = scores[0]
        keyword = np.asarray(self.bm25.get_scores(tokens(question)), dtype=np.float32)
        keyword_norm = keyword / keyword.max() if keyword.max() > 0 else np.zeros(n, dtype=np.float32)
        fused = self.dense_weight * _minmax(dense, ids[0]) + (1 - self.dense_weight) * keyword_norm
        order = np.argsort(-fused, kind="stable")[:k]
        return [
            Hit(self.chunks[i], int(i), float(fused[i]), float(dense[i]), float(keyword_norm[i]), rank)
            for rank, i in enumerate(order, start=1)
        ]


def _minmax(scores: np.ndarray, considered: np.ndarray) -> np.ndarray:
    """Scale the dense scores of the considered chunks to 0..1; unconsidered chunks get 0."""
    out = np.zeros_like(scores)
    values = scores[considered]
    low, high = float(values.min()), float(values.max())
    out[considered] = (values - low) / (high - low) if high > low else 1.0
    return out
