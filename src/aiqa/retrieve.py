"""Question -> ranked Hits: dense (FAISS over e5 vectors) and Korean BM25, fused by weighted scores."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aiqa.chunk import Chunk
from aiqa.index import VIEWS, LoadedIndex
from aiqa.lang.ko import LatinNames, tokens

# Fusion chosen on the dev set (bench/fusion.py prints the comparison): min-max normalised dense
# and BM25 scores; the keyword side gets the rest of the weight, scaled in `fuse`.
DENSE_WEIGHT = 0.35


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
        from rank_bm25 import BM25Plus

        self.index = index
        self.embedder = embedder
        self.dense_weight = dense_weight
        self.chunks = index.chunks
        corpus_tokens = [tokens(c.context, phrases=True) for c in self.chunks]
        self.vocabulary = {t for toks in corpus_tokens for t in toks}
        self.latin_names = LatinNames(self.vocabulary)
        # BM25+ rather than Okapi: Okapi's idf turns zero or negative for terms in half the chunks
        # or more, which in a small corpus (a few documents, a few chunks) is most terms.
        self.bm25 = BM25Plus([toks or ["<empty>"] for toks in corpus_tokens])

    def encode(self, question: str) -> np.ndarray:
        return self.embedder.embed_queries([question])[0]

    def signals(self, question: str, depth: int = 100, query_vector: np.ndarray | None = None):
        """Score every chunk for a question: dense cosines, normalised BM25, and how known its words are.

        Returns (dense, keyword, known) where `known` is the share of the question's words that
        occur in the corpus at all.
        """
        n = len(self.chunks)
        vector = self.encode(question) if query_vector is None else query_vector
        dense = np.full(n, np.nan, dtype=np.float32)
        # Each chunk has VIEWS vectors (see Chunk.views); its dense score is the best of them.
        total = self.index.vectors.ntotal
        scores, ids = self.index.vectors.search(vector.reshape(1, -1).astype(np.float32), min(total, VIEWS * depth))
        np.fmax.at(dense, ids[0] // VIEWS, scores[0])
        terms = self.latin_names.normalize(tokens(question, phrases=True))
        keyword = np.asarray(self.bm25.get_scores(terms), dtype=np.float32)
        keyword = keyword / keyword.max() if keyword.max() > 0 else np.zeros(n, dtype=np.float32)
        unigrams = [t for t in terms if "_" not in t]
        known = sum(1 for t in unigrams if t in self.vocabulary) / len(unigrams) if unigrams else 0.0
        return dense, keyword, known

    def search(self, question: str, k: int = 5, *, query_vector: np.ndarray | None = None) -> list[Hit]:
        """Return the k best chunks for a question, best first."""
        if not self.chunks:
            return []
        dense, keyword, known = self.signals(question, max(100, 4 * k), query_vector)
        fused = fuse(dense, keyword, known, self.dense_weight)
        order = np.argsort(-fused, kind="stable")[:k]
        return [
            Hit(
                self.chunks[i],
                int(i),
                float(fused[i]),
                float(np.nan_to_num(dense[i], nan=-1.0)),
                float(keyword[i]),
                rank,
            )
            for rank, i in enumerate(order, start=1)
        ]


def fuse(dense: np.ndarray, keyword: np.ndarray, known: float, dense_weight: float = DENSE_WEIGHT) -> np.ndarray:
    """Mix min-max scaled dense scores with BM25, trusting keywords as far as the words are known.

    An English question over Korean text shares few words with it; then the dense score decides.
    """
    keyword_weight = (1 - dense_weight) * known
    return (1 - keyword_weight) * _minmax(dense) + keyword_weight * keyword


def _minmax(scores: np.ndarray) -> np.ndarray:
    """Scale the scored (non-NaN) entries to 0..1; chunks beyond the dense search depth get 0."""
    out = np.zeros_like(scores)
    scored = ~np.isnan(scores)
    low, high = float(np.min(scores[scored])), float(np.max(scores[scored]))
    out[scored] = (scores[scored] - low) / (high - low) if high > low else 1.0
    return out
