"""The model's tokenizer for serving: XLM-R's unigram pieces in SentencePiece, written from tokenizer.json.

`tokenizers` holds the 250k-piece unigram vocabulary in a trie of hash maps: 280 MB resident in
every server. SentencePiece holds the same pieces and scores in a double array: 45 MB, and it
encodes about as fast. The text is normalized first by the tokenizer.json's own normalizer
(the per-code-point map and the collapse of space runs, a few hundred kilobytes in `tokenizers`),
then cut by SentencePiece with a dummy "▁" prefix and spaces as "▁", which is what tokenizer.json's
Metaspace step does: the ids are the same (tests/test_runtimes.py compares them on every text
the repository ships), and so are the pieces (an unknown one is its text, in both).

`write_model` runs where the model is exported (aiqa.embedders.export, a child process): reading
tokenizer.json's pieces costs memory the server should not keep.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_SEQ_LENGTH = 512  # positions of the model, <s> and </s> included
PIECES = "tokenizer.model"
NORMALIZER = "normalizer.json"
_NORMAL, _UNKNOWN, _USER_DEFINED = 1, 2, 4  # SentencePiece's piece types
_UNSET = (1 << 64) - 1  # -1 as a protobuf varint


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, value: int | float | bytes) -> bytes:
    """One protobuf field: an int as a varint, a float as 32 bits, bytes with their length."""
    if isinstance(value, bytes):
        return _varint(number << 3 | 2) + _varint(len(value)) + value
    if isinstance(value, float):
        return _varint(number << 3 | 5) + struct.pack("<f", value)
    return _varint(number << 3) + _varint(value)


def write_model(tokenizer_json: Path, model_out: Path, normalizer_out: Path) -> None:
    """Write the SentencePiece model (a ModelProto) and the normalizer of a unigram tokenizer.json."""
    spec = json.loads(Path(tokenizer_json).read_text(encoding="utf-8"))
    model = spec["model"]
    if model.get("type") != "Unigram":
        raise ValueError(f"{tokenizer_json} holds a {model.get('type')} model, not a unigram one")
    specials = {token["content"] for token in spec.get("added_tokens", [])}
    unk = model["unk_id"]
    pieces = b"".join(
        _field(
            1,
            _field(1, piece.encode())
            + _field(2, float(score))
            + _field(3, _UNKNOWN if i == unk else _USER_DEFINED if piece in specials else _NORMAL),
        )
        for i, (piece, score) in enumerate(model["vocab"])
    )
    # Unigram (model_type 1); <s> and </s> are added here, not by SentencePiece.
    trainer = _field(3, 1) + _field(40, unk) + _field(41, _UNSET) + _field(42, _UNSET) + _field(43, _UNSET)
    # No map of its own (the normalizer above ran): a "▁" before the text, spaces as "▁", runs kept.
    normalizer = _field(1, b"identity") + _field(3, 1) + _field(4, 0) + _field(5, 1)
    model_out.write_bytes(pieces + _field(2, trainer) + _field(3, normalizer))
    normalizer_out.write_text(json.dumps(spec["normalizer"]), encoding="utf-8")


@dataclass(frozen=True)
class Encoding:
    """A text's token ids (with <s> and </s>) and its pieces (the text itself for an unknown one)."""

    ids: list[int]
    tokens: list[str]


class Pieces:
    """Encode texts as the exported model reads them, truncated to MAX_SEQ_LENGTH."""

    def __init__(self, model_file: Path, normalizer_file: Path):
        import sentencepiece

        self._sp = sentencepiece.SentencePieceProcessor(model_file=str(model_file))
        self._normalizer = _normalizer_from(Path(normalizer_file).read_text(encoding="utf-8"))
        self.bos, self.eos, self.pad = (self._sp.piece_to_id(p) for p in ("<s>", "</s>", "<pad>"))
        self.unk = self._sp.unk_id()

    def pieces(self, text: str) -> list[tuple[int, str]]:
        """The (id, piece) of a text without <s> and </s>, untruncated."""
        proto = self._sp.encode(self._normalizer.normalize_str(text), out_type="immutable_proto")
        return [(p.id, p.surface if p.id == self.unk else p.piece) for p in proto.pieces]

    def encode(self, text: str) -> Encoding:
        body = self.pieces(text)[: MAX_SEQ_LENGTH - 2]
        return Encoding([self.bos, *(i for i, _ in body), self.eos], ["<s>", *(piece for _, piece in body), "</s>"])

    def encode_batch(self, texts: list[str]) -> list[Encoding]:
        return [self.encode(text) for text in texts]

    def encode_spans(self, text: str, spans: list[tuple[int, int]]) -> tuple[Encoding, list[list[int]]]:
        """Encode a text, and tell which of its tokens cover each character span (a, b) of it.

        A token belongs to a span when its characters overlap it, its leading "▁" aside; a span past
        the truncation has no token.
        """
        normal = self._normalizer.normalize_str(text)
        proto = self._sp.encode(normal, out_type="immutable_proto")
        found = [(p.id, p.surface if p.id == self.unk else p.piece, p.begin, p.end) for p in proto.pieces]
        body = found[: MAX_SEQ_LENGTH - 2]
        encoding = Encoding([self.bos, *(f[0] for f in body), self.eos], ["<s>", *(f[1] for f in body), "</s>"])
        # Offsets are into the normalized text: map each span's ends there (the map is applied left to right).
        ends = [
            (len(self._normalizer.normalize_str(text[:a])), len(self._normalizer.normalize_str(text[:b])))
            for a, b in spans
        ]
        tokens = [
            [at + 1 for at, (_, piece, begin, end) in enumerate(body) if begin < b and end > a and piece != "▁"]
            for a, b in ends
        ]
        return encoding, tokens


def _normalizer_from(spec: str) -> Any:
    """The normalizer a tokenizer.json describes, alone (the rest of the tokenizer is not loaded)."""
    from tokenizers import Tokenizer

    # `tokenizers` reads a normalizer only as part of a tokenizer: one with an empty vocabulary.
    shell = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [],
        "normalizer": json.loads(spec),
        "pre_tokenizer": None,
        "post_processor": None,
        "decoder": None,
        "model": {"type": "WordLevel", "vocab": {"<unk>": 0}, "unk_token": "<unk>"},
    }
    return Tokenizer.from_str(json.dumps(shell)).normalizer
