"""The reader: a cross-encoder that reads the question and one candidate statement together.

The selection features are word overlap and cosines of the question and a statement encoded
apart; the reader reads both in one pass of an e5-small encoder fine-tuned on the calibration
questions (scripts/train_reader.py) and says how likely the statement answers the question. It
runs with onnxruntime (int8) on the best few candidates only, and its probability is one more
feature of the selection and the answer decision. Its files sit in the cache (`reader/`), built by
scripts/train_reader.py; onnxruntime and tokenizers are imported only when it is first used.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from aiqa.errors import ModelUnavailable

# Tokens of one question and statement pair the reader reads (the statement is cut to fit).
MAX_TOKENS = 128
MODEL = "reader-int8.onnx"
TOKENIZER = "tokenizer.json"
PAD_ID = 1  # XLM-R's <pad>


def query_text(question: str) -> str:
    """The question as the reader reads it (e5's query prefix)."""
    return f"query: {' '.join(question.split())}"


def passage_text(statement: str, section: str) -> str:
    """A candidate as the reader reads it: its section label, then the statement (e5's passage prefix)."""
    statement, section = " ".join(statement.split()), " ".join(section.split())
    return f"passage: {section}: {statement}" if section else f"passage: {statement}"


def reader_dir(cache_dir: Path) -> Path:
    return Path(cache_dir) / "reader"


class Reader:
    """The exported reader: `scores(question, passages)` gives each passage's chance to answer it."""

    def __init__(self, folder: Path, threads: int = 2):
        self.folder = Path(folder)
        self.threads = threads
        self._session: Any = None
        self._tokenizer: Any = None

    @property
    def available(self) -> bool:
        return (self.folder / MODEL).is_file() and (self.folder / TOKENIZER).is_file()

    def _load(self) -> None:
        if not self.available:
            raise ModelUnavailable(
                f"no reader model in {self.folder}: build it with `scripts/train_reader.py` or leave the reader off"
            )
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise ModelUnavailable(f"the reader needs onnxruntime and tokenizers ({exc})") from exc
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(self.folder / MODEL), options, providers=["CPUExecutionProvider"])
        tokenizer = Tokenizer.from_file(str(self.folder / TOKENIZER))
        tokenizer.enable_truncation(MAX_TOKENS, strategy="only_second")
        tokenizer.enable_padding(pad_id=PAD_ID, pad_token="<pad>")
        self._tokenizer = tokenizer

    def scores(self, question: str, passages: list[str]) -> list[float]:
        if not passages:
            return []
        if self._session is None:
            self._load()
        import numpy as np

        encoded = self._tokenizer.encode_batch([(query_text(question), p) for p in passages])
        ids = np.array([e.ids for e in encoded], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
        (logits,) = self._session.run(None, {"input_ids": ids, "attention_mask": mask})
        return [1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, float(z))))) for z in logits]
