"""The PyTorch runtimes: any sentence-transformers model, in float32 or with int8 linear layers.

sentence-transformers and torch are imported only when a model is loaded.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from aiqa.config import BUNDLED_MODEL
from aiqa.embedders.base import MAX_TOKEN_STATES, TokenStates, no_loading_bars, pool
from aiqa.errors import ModelUnavailable

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

# The model's position limit; longer inputs are truncated (chunks are sized well below it).
MAX_SEQ_LENGTH = 512


class SentenceEmbedder:
    """A loaded sentence-transformers model with the query/passage conventions of its family."""

    def __init__(self, name: str, model: SentenceTransformer, runtime: str = "torch"):
        self.name = name
        self.runtime = runtime
        self._model = model
        # The e5 family was trained with these prefixes; without them retrieval gets worse.
        e5 = "e5" in name.lower()
        self._query_prefix = "query: " if e5 else ""
        self._passage_prefix = "passage: " if e5 else ""
        dim = model.get_embedding_dimension()
        self.dim = int(dim) if dim else int(self._encode(["dim"], self._query_prefix, 1, False).shape[1])

    def __repr__(self) -> str:
        return f"SentenceEmbedder(name={self.name!r}, dim={self.dim}, runtime={self.runtime!r})"

    def embed_passages(self, texts: Sequence[str], *, batch_size: int = 32, progress: bool = False) -> np.ndarray:
        """Embed documents: float32 array (len(texts), dim), rows L2-normalized."""
        return self._encode(texts, self._passage_prefix, batch_size, progress)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed questions: float32 array (len(texts), dim), rows L2-normalized."""
        return self._encode(texts, self._query_prefix, 32, False)

    def embed_tokens(self, texts: Sequence[str], *, query: bool) -> list[TokenStates]:
        """The token states of each text (see TokenStates), as a question or as a passage."""
        import torch

        prefix = self._query_prefix if query else self._passage_prefix
        tokenizer = self._model.tokenizer
        encoder: Any = self._model[0].auto_model  # the transformers model inside the first module
        skip = len(tokenizer(prefix.strip(), add_special_tokens=False)["input_ids"]) if prefix else 0
        out: list[TokenStates] = []
        for at in range(0, len(texts), 16):
            batch = [prefix + text for text in texts[at : at + 16]]
            encoded = tokenizer(batch, padding=True, truncation=True, max_length=MAX_TOKEN_STATES, return_tensors="pt")
            with torch.no_grad():
                hidden = encoder(**encoded).last_hidden_state
            hidden = torch.nn.functional.normalize(hidden, dim=-1).numpy()
            for row, mask in enumerate(encoded["attention_mask"].numpy().astype(bool)):
                ids = encoded["input_ids"][row].numpy()[mask]
                keep = list(range(1, len(ids) - 1))[skip:]  # past <s> and the prefix, before </s>
                pieces = tokenizer.convert_ids_to_tokens([int(ids[i]) for i in keep])
                out.append((pieces, np.ascontiguousarray(hidden[row][mask][keep], dtype=np.float32)))
        return out

    def embed_spans(
        self,
        texts: Sequence[str],
        spans: Sequence[Sequence[tuple[int, int]]],
        *,
        batch_size: int = 32,
        progress: bool = False,
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Embed passages in one pass each, and pool a vector for each character span of each (aiqa.embedders.base)."""
        import torch

        tokenizer = self._model.tokenizer
        encoder: Any = self._model[0].auto_model
        shift = len(self._passage_prefix)
        out = np.zeros((len(texts), self.dim), np.float32)
        pooled: list[np.ndarray] = [np.zeros((len(s), self.dim), np.float32) for s in spans]
        order = np.argsort([len(t) for t in texts], kind="stable")  # similar lengths together: little padding
        for at in range(0, len(order), batch_size):
            rows = order[at : at + batch_size]
            encoded = tokenizer(
                [self._passage_prefix + texts[i] for i in rows],
                padding=True,
                truncation=True,
                max_length=MAX_SEQ_LENGTH,
                return_tensors="pt",
                return_offsets_mapping=True,
            )
            offsets = encoded.pop("offset_mapping").numpy()
            with torch.no_grad():
                hidden = encoder(**encoded).last_hidden_state
            mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out[rows] = torch.nn.functional.normalize(mean, dim=-1).numpy()
            states = torch.nn.functional.normalize(hidden, dim=-1).numpy()
            for row, i in enumerate(rows):
                # Special tokens and padding have empty offsets; a token's leading space is not in its offsets.
                ranges = offsets[row]
                tokens = [
                    [t for t, (b, e) in enumerate(ranges) if e > b and b < end + shift and e > start + shift]
                    for start, end in spans[i]
                ]
                pooled[i][:] = pool(states[row], tokens, self.dim)
        return out, pooled

    def _encode(self, texts: Sequence[str], prefix: str, batch_size: int, progress: bool) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("pass a list of texts, not a single string")
        if not texts:
            return np.zeros((0, getattr(self, "dim", 0)), np.float32)
        vectors = self._model.encode(
            [prefix + text for text in texts],
            batch_size=batch_size,
            show_progress_bar=progress,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


def load(model: str, cache_dir: Path, runtime: str, threads: int | None = None) -> SentenceEmbedder:
    """The registry's entry point (aiqa.embedders.registry): "torch" or "torch-int8".

    The bundled model is converted into `cache_dir` on first use; `threads` is left to torch's own setting.
    """
    if model == BUNDLED_MODEL:
        from aiqa.embedders.convert import ensure_model

        folder = ensure_model(Path(cache_dir))
        st = _load(str(folder), local_files_only=True)
    else:
        st = _load(model, local_files_only=False)
    if st.max_seq_length is None or st.max_seq_length > MAX_SEQ_LENGTH:
        st.max_seq_length = MAX_SEQ_LENGTH
    if runtime == "torch-int8":
        _quantize_linear(st)
    return SentenceEmbedder(model, st, runtime)


def _quantize_linear(st: SentenceTransformer) -> None:
    """Swap the linear layers for PyTorch's dynamically quantized int8 ones, in place.

    The feed-forward output layers stay in float32: their inputs (GELU outputs) have outliers that
    8-bit activations flatten, which alone takes the vectors to cosine 0.98 of float32; without them
    the rest, per output channel, stays above 0.99.
    """
    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    names = {
        name
        for name, module in st.named_modules()
        if isinstance(module, torch.nn.Linear) and not (name.endswith("output.dense") and "attention" not in name)
    }
    with warnings.catch_warnings():
        # PyTorch announces that this API moves to the torchao package; it still works here.
        warnings.simplefilter("ignore")
        quantize_dynamic(st, dict.fromkeys(names, per_channel_dynamic_qconfig), dtype=torch.qint8, inplace=True)


def _load(name_or_path: str, *, local_files_only: bool) -> SentenceTransformer:
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise ModelUnavailable(
            f"sentence-transformers is not installed ({exc}): run `pip install sentence-transformers==6.2.0`"
        ) from exc
    try:
        with no_loading_bars():
            return SentenceTransformer(name_or_path, device="cpu", local_files_only=local_files_only)
    except Exception as exc:  # hub, file and config errors all mean the same to the user
        hint = (
            f"delete {name_or_path} and run again to rebuild it"
            if local_files_only
            else f"use a local sentence-transformers folder, or unset AIQA_EMBED_MODEL to use {BUNDLED_MODEL}"
        )
        raise ModelUnavailable(f"cannot load embedding model {name_or_path!r} ({exc}): {hint}") from exc
