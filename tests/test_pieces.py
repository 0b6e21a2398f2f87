"""The serving tokenizer (SentencePiece, aiqa.embedders.pieces) against the converted model's tokenizer.json.

Every text file the repository ships, cut into passages and lines, every question of its question
sets and a few odd strings: the same token ids as `tokenizers` gives from tokenizer.json, and the
same pieces (an unknown one as its text, in both).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aiqa.embedders.pieces import MAX_SEQ_LENGTH, NORMALIZER, PIECES, Pieces, write_model

REPO = Path(__file__).resolve().parents[1]
ODD = [
    "",
    "   ",
    "a  b",
    " lead",
    "trail ",
    "tab\there\r\n",
    "x\n\n\ny",
    "<s> literal </s> <mask>",
    "ＡＢＣ　全角 ｶﾀｶﾅ",
    "emoji 😀 ok 🧭",
    "e\u0301 combining, ﬁ ligature, \u200b zero width",
    "가" * 2000,
]


def _texts() -> list[str]:
    texts = list(ODD)
    for path in sorted([*REPO.glob("corpus/*"), *REPO.glob("tests/data/**/*"), *REPO.glob("bench/**/*")]):
        if path.suffix not in {".txt", ".md", ".jsonl"} or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix == ".jsonl":
            for line in text.splitlines():
                item = json.loads(line) if line.strip() else ""
                texts.append(item if isinstance(item, str) else str(item.get("q", "")))
        else:
            texts += [text[i : i + 700] for i in range(0, len(text), 350)] + text.splitlines()
    return texts


@pytest.fixture(scope="module")
def both(real_model: Path, tmp_path_factory):
    from tokenizers import Tokenizer

    folder = tmp_path_factory.mktemp("pieces")
    write_model(real_model / "tokenizer.json", folder / PIECES, folder / NORMALIZER)
    reference = Tokenizer.from_file(str(real_model / "tokenizer.json"))
    reference.no_padding()
    reference.enable_truncation(MAX_SEQ_LENGTH)
    return Pieces(folder / PIECES, folder / NORMALIZER), reference


def test_same_ids_and_pieces_as_tokenizer_json(both, real_model: Path):
    """The same cut as tokenizer.json's on every text the repository ships, except where two cuts score
    exactly the same ("-----" as "----" + "-" or "-" + "----"): the two libraries break such a tie
    differently; both cuts are then best, hold the same text, and are rare."""
    pieces, reference = both
    score = {i: s for i, (_, s) in enumerate(json.loads((real_model / "tokenizer.json").read_text())["model"]["vocab"])}
    texts = _texts()
    assert len(texts) > 3000  # the repository's texts were found
    unknown = ties = 0
    for prefix in ("query: ", "passage: "):
        for text in texts:
            ours, theirs = pieces.encode(prefix + text), reference.encode(prefix + text)
            if ours.ids != theirs.ids:
                ties += 1
                assert "".join(ours.tokens) == "".join(theirs.tokens), text[:80]
                assert sum(score[i] for i in ours.ids) == pytest.approx(sum(score[i] for i in theirs.ids)), text[:80]
                continue
            assert ours.tokens == theirs.tokens, text[:80]
            unknown += ours.ids.count(pieces.unk)
    assert unknown > 0  # the emoji and rare syllables: an unknown piece gives its text
    assert ties * 100 <= 2 * len(texts), ties  # at most 1 % of the encodings
    assert len(pieces.encode("가" * 2000).ids) == MAX_SEQ_LENGTH


def test_write_model_refuses_another_kind_of_tokenizer(tmp_path: Path):
    spec = tmp_path / "tokenizer.json"
    spec.write_text(json.dumps({"model": {"type": "BPE"}, "normalizer": None}), encoding="utf-8")
    with pytest.raises(ValueError, match="not a unigram"):
        write_model(spec, tmp_path / PIECES, tmp_path / NORMALIZER)
