"""The embedding model behind one small interface: texts in, L2-normalized float32 vectors out.

`Embedder` is that interface; indexing and retrieval need nothing else of a model. Its
implementations live beside it, one module per runtime (torch, onnx), and aiqa.embedders.registry
loads the one a setting names; this module imports none of them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Protocol

import numpy as np


class Embedder(Protocol):
    """What indexing and retrieval ask of an embedding model."""

    name: str
    dim: int

    def embed_passages(self, texts: Sequence[str], *, batch_size: int = 32, progress: bool = False) -> np.ndarray:
        """Embed documents: float32 array (len(texts), dim), rows L2-normalized."""
        ...

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed questions: float32 array (len(texts), dim), rows L2-normalized."""
        ...


# An Embedder may also offer `embed_spans(texts, spans, *, batch_size, progress) -> (vectors, pooled)`:
# each text embedded as a passage, as embed_passages would, and in the same pass, for each of its
# character spans, the L2-normalized mean of the (normalized) states of the tokens in that span,
# read in the context of the whole text (zeros for a span with no token). A build then embeds a
# chunk's statements with its context in one pass (aiqa.index.views).


def pool(states: np.ndarray, spans: Sequence[Sequence[int]], dim: int) -> np.ndarray:
    """One L2-normalized mean of `states` rows per list of token positions; zeros where a list is empty."""
    out = np.zeros((len(spans), dim), np.float32)
    for row, tokens in enumerate(spans):
        if tokens:
            mean = states[list(tokens)].mean(axis=0)
            out[row] = mean / max(float(np.linalg.norm(mean)), 1e-12)
    return out


# The token states of one text: its word pieces and one L2-normalized vector per piece (the encoder's
# last layer, before pooling), prefix and special tokens left out. An Embedder may also offer
# `embed_tokens(texts, *, query) -> list[TokenStates]`; the answer layer aligns a question with a
# statement through them (aiqa.answer.align) and does without where a runtime has none.
TokenStates = tuple[list[str], np.ndarray]
# Pieces of a text kept for its token states: statements are sentences, bullets and table rows.
MAX_TOKEN_STATES = 128


@contextmanager
def no_loading_bars() -> Iterator[None]:
    """Silence transformers' "Loading weights" bar; only the CLI draws progress."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    if enabled:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()
