"""Korean BM25+ over a sparse term matrix: built with each index version, stored beside it, memory-mapped.

The chunks' Kiwi tokens (see `aiqa.text.korean.analyse`) become a term-frequency matrix once per build.
Scoring a question then touches only the columns of its own words, so a query costs what those
words' postings cost, not a pass over every chunk; the arrays are memory-mapped, so a large index
does not have to fit in RAM.

Two layouts of the same matrix are stored: by term (CSC: each term's chunks with their BM25+
weights, for scoring) and by chunk (CSR: each chunk's terms with their counts, for the answer layer
and for reusing unchanged chunks in the next build).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# BM25+ (Lv & Zhai 2011) with the usual constants. BM25+ rather than Okapi: Okapi's idf turns zero
# or negative for terms in half the chunks or more, which in a small corpus is most terms.
K1, B, DELTA = 1.5, 0.75, 1.0

# The files of one keyword index inside a version folder.
FILES = (
    "keywords.terms.json",
    "keywords.doc_len.npy",
    "keywords.by_term.indptr.npy",
    "keywords.by_term.chunks.npy",
    "keywords.by_term.weights.npy",
    "keywords.by_chunk.indptr.npy",
    "keywords.by_chunk.terms.npy",
    "keywords.by_chunk.counts.npy",
)


@dataclass
class KeywordIndex:
    """The BM25+ postings of one index version."""

    terms: list[str]  # column -> term
    doc_len: np.ndarray  # tokens per chunk (at least 1)
    term_ptr: np.ndarray  # CSC: term j's postings are term_chunks/term_weights[term_ptr[j]:term_ptr[j+1]]
    term_chunks: np.ndarray
    term_weights: np.ndarray
    chunk_ptr: np.ndarray  # CSR: chunk i's terms are chunk_terms/chunk_counts[chunk_ptr[i]:chunk_ptr[i+1]]
    chunk_terms: np.ndarray
    chunk_counts: np.ndarray

    def __post_init__(self) -> None:
        self.column = {t: j for j, t in enumerate(self.terms)}
        n = len(self.doc_len)
        df = np.diff(self.term_ptr)
        self.idf = np.log((n + 1) / np.maximum(df, 1)).astype(np.float32)  # BM25+'s idf, always > 0

    def __len__(self) -> int:
        return len(self.doc_len)

    def document_frequency(self, term: str) -> int:
        j = self.column.get(term)
        return 0 if j is None else int(self.term_ptr[j + 1] - self.term_ptr[j])

    def scores(self, query: Sequence[str]) -> np.ndarray:
        """BM25+ score of every chunk for the query's tokens (a repeated token counts again)."""
        out = np.zeros(len(self), dtype=np.float32)
        constant = 0.0
        for term in query:
            j = self.column.get(term)
            if j is None:
                continue
            # BM25+ gives every chunk delta * idf for each query word, containing it or not.
            constant += DELTA * float(self.idf[j])
            start, end = int(self.term_ptr[j]), int(self.term_ptr[j + 1])
            out[self.term_chunks[start:end]] += self.term_weights[start:end]  # a column lists a chunk once
        return out + np.float32(constant)

    def chunk_counts_of(self, chunk: int) -> dict[str, int]:
        """The terms of one chunk with how often each occurs."""
        start, end = int(self.chunk_ptr[chunk]), int(self.chunk_ptr[chunk + 1])
        return {
            self.terms[j]: int(c)
            for j, c in zip(self.chunk_terms[start:end], self.chunk_counts[start:end], strict=True)
        }

    def save(self, folder: Path) -> list[str]:
        """Write the index into `folder`; return the file names written."""
        (folder / FILES[0]).write_text(json.dumps(self.terms, ensure_ascii=False), encoding="utf-8")
        arrays = (
            self.doc_len,
            self.term_ptr,
            self.term_chunks,
            self.term_weights,
            self.chunk_ptr,
            self.chunk_terms,
            self.chunk_counts,
        )
        for name, array in zip(FILES[1:], arrays, strict=True):
            np.save(folder / name, np.ascontiguousarray(array))
        return list(FILES)

    @classmethod
    def load(cls, folder: Path) -> KeywordIndex:
        """Read an index written by `save`, with its arrays memory-mapped."""
        terms = json.loads((folder / FILES[0]).read_text(encoding="utf-8"))
        arrays = [np.load(folder / name, mmap_mode="r") for name in FILES[1:]]
        return cls(terms, *arrays)


def build_keywords(counts: Iterable[dict[str, int]]) -> KeywordIndex:
    """Build the postings from each chunk's term counts (chunk order is kept)."""
    column: dict[str, int] = {}
    ptr: list[int] = [0]
    cols: list[int] = []
    tfs: list[int] = []
    for chunk in counts:
        for term, c in chunk.items():
            cols.append(column.setdefault(term, len(column)))
            tfs.append(c)
        ptr.append(len(cols))
    chunk_ptr = np.asarray(ptr, dtype=np.int64)
    return keywords_from_rows(
        list(column), chunk_ptr, np.asarray(cols, dtype=np.int32), np.asarray(tfs, dtype=np.int32)
    )


def keywords_from_rows(
    terms: list[str], chunk_ptr: np.ndarray, chunk_terms: np.ndarray, chunk_counts: np.ndarray
) -> KeywordIndex:
    """Build the postings from the by-chunk layout (CSR: each chunk's term columns and counts)."""
    n = len(chunk_ptr) - 1
    rows = np.repeat(np.arange(n, dtype=np.int32), np.diff(chunk_ptr))
    doc_len = np.maximum(1, np.bincount(rows, weights=chunk_counts, minlength=n)).astype(np.int32)

    # Regroup the same entries by term (a stable sort keeps chunks ascending within a term).
    order = np.argsort(chunk_terms, kind="stable")
    term_chunks = rows[order]
    tf = chunk_counts[order].astype(np.float32)
    term_ptr = np.zeros(len(terms) + 1, dtype=np.int64)
    np.cumsum(np.bincount(chunk_terms, minlength=len(terms)), out=term_ptr[1:])
    df = np.diff(term_ptr)
    idf = np.log((n + 1) / np.maximum(df, 1)).astype(np.float32)
    avgdl = float(doc_len.mean()) if n else 1.0
    norm = K1 * (1 - B + B * doc_len[term_chunks] / avgdl)
    weights = np.repeat(idf, df) * tf * (K1 + 1) / (norm + tf)
    return KeywordIndex(
        terms, doc_len, term_ptr, term_chunks, weights.astype(np.float32), chunk_ptr, chunk_terms, chunk_counts
    )


def token_counts(tokens: Iterable[str]) -> dict[str, int]:
    return dict(Counter(tokens))


def idf_of(df: int, n: int) -> float:
    """The idf the answer layer weighs words by: BM25's, kept positive."""
    return math.log((n - df + 0.5) / (df + 0.5) + 1)
