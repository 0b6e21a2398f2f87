"""A small deterministic stand-in for the embedding model, for unit tests of pure logic.

It is no model: texts that share character n-grams get close vectors, which is enough to test
the plumbing around embeddings (index files, fusion, the answer contract, request checks) in
milliseconds. Every behaviour that depends on the real model keeps a test with the real one.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np


class FakeEmbedder:
    """Hashed character 2- and 3-grams of the lowercased text -> an L2-normalised float32 vector."""

    name = "fake/char-ngrams"

    def __init__(self, dim: int = 64):
        self.dim = dim
        self.calls: list[list[str]] = []  # every batch it was asked to embed, in order

    def embed_passages(self, texts: Sequence[str], *, batch_size: int = 32, progress: bool = False) -> np.ndarray:
        return self._embed(texts)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts)

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("pass a list of texts, not a single string")
        self.calls.append(list(texts))
        matrix = np.zeros((len(texts), self.dim), np.float32)
        for row, text in enumerate(texts):
            padded = f" {' '.join(text.lower().split())} "
            for n in (2, 3):
                for i in range(len(padded) - n + 1):
                    # crc32, not hash(): Python salts str hashes per process, and tests compare runs.
                    matrix[row, zlib.crc32(padded[i : i + n].encode()) % self.dim] += 1.0
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        matrix[:, 0] += (norms[:, 0] == 0).astype(np.float32)  # an empty text still gets a unit vector
        return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
