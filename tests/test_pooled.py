"""Statement vectors pooled from their chunk's encoder pass (aiqa.index.views), with the real model and FAISS."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from aiqa.build import build_index
from aiqa.chunk import chunk_views
from aiqa.errors import IndexMismatch
from aiqa.index.format import FORMAT_VERSION, view_offsets
from aiqa.index.views import embed_views, locate
from aiqa.stores.registry import load_index
from aiqa.stores.versions import current_version

from .conftest import report_index

FIRST = "출장비는 출장 종료 후 7일 이내에 경비 시스템으로 정산해야 한다."
SECOND = "해외 출장은 출발 2주 전까지 본부장의 승인을 받아야 한다."
CONTEXT = f"[출장 규정 > 정산] {FIRST} {SECOND}"


def test_locate_finds_each_text_in_order_and_says_when_one_is_missing():
    assert locate("a b a c", ("a", "a", "c", "z")) == [(0, 1), (4, 5), (6, 7), None]
    assert locate("abc", ("",)) == [None]


@pytest.mark.model  # the model is asked for by name below, which the automatic marker cannot see
@pytest.mark.parametrize("which", ["embedder", "reference"])
def test_pooled_statement_is_close_to_its_own_vector_but_not_the_same(which, request):
    model = request.getfixturevalue(which)  # the default runtime (onnx-int8), then torch
    spans = locate(CONTEXT, (FIRST, SECOND))
    contexts, pooled = model.embed_spans([CONTEXT], [spans])
    apart = model.embed_passages([CONTEXT, FIRST, SECOND])
    # The text's own vector is what embed_passages gives.
    assert float(contexts[0] @ apart[0]) > 0.99
    cos = (pooled[0] * apart[1:]).sum(axis=1)
    assert np.all(cos > 0.85), cos
    assert np.all(cos < 0.995), cos  # read with its neighbours: not the sentence alone
    assert np.allclose(np.linalg.norm(pooled[0], axis=1), 1.0, atol=1e-5)
    # Each pooled vector is nearer its own sentence than the other one.
    assert cos[0] > float(pooled[0][0] @ apart[2]) and cos[1] > float(pooled[0][1] @ apart[1])


def test_pooled_vectors_agree_between_runtimes(embedder, reference):
    spans = locate(CONTEXT, (FIRST, SECOND))
    onnx = embedder.embed_spans([CONTEXT], [spans])[1][0]
    torch = reference.embed_spans([CONTEXT], [spans])[1][0]
    assert np.all((onnx * torch).sum(axis=1) > 0.97)


def test_a_question_finds_its_sentence_through_the_pooled_vector(embedder):
    _, pooled = embedder.embed_spans([CONTEXT], [locate(CONTEXT, (FIRST, SECOND))])
    query = embedder.embed_queries(["해외 출장 승인은 언제까지 받아야 하나요?"])[0]
    assert float(pooled[0][1] @ query) > float(pooled[0][0] @ query)


def test_a_span_past_the_encoders_limit_has_no_tokens(embedder):
    long = "가나다 " * 600
    _, pooled = embedder.embed_spans([long + FIRST], [[(len(long), len(long) + len(FIRST))]])
    assert not pooled[0].any()  # so the build embeds it apart (embed_views)


def test_index_round_trip_with_pooled_statements_then_separate_ones(tmp_path, cache_dir, embedder):
    settings = replace(report_index(tmp_path / "first", cache_dir, embedder), statement_vectors="pooled")
    build_index(settings, embedder_factory=lambda: embedder)  # the default's index, made again pooled
    index = load_index(settings)
    assert index.manifest["statement_vectors"] == "pooled"
    assert index.manifest["format_version"] == FORMAT_VERSION
    stored = index.search.all_rows()
    assert stored.shape[0] == int(view_offsets(index.chunks)[-1])
    again = embed_views(embedder, index.chunks, "pooled")
    assert np.all((stored * again).sum(axis=1) > 0.999)  # what was written is what is read
    apart = embedder.embed_passages([v for c in index.chunks for v in chunk_views(c)])
    cos = (stored * apart).sum(axis=1)
    starts = index.offsets[:-1]
    assert np.all(cos[starts] > 0.995)  # the contexts are embedded the same way (int8 varies with the batch)
    assert np.median(cos) > 0.9 and cos.min() > 0.7
    # Switching the setting makes every vector again: none is reused across the two ways.
    separate = replace(settings, statement_vectors="separate")
    report = build_index(separate, embedder_factory=lambda: embedder)
    assert report.embedded_chunks == report.chunks == len(index.chunks)
    rebuilt = load_index(separate)
    assert rebuilt.manifest["statement_vectors"] == "separate"
    assert np.all((rebuilt.search.all_rows() * apart).sum(axis=1) > 0.995)


def test_an_index_of_the_previous_format_says_to_rebuild(tmp_path, cache_dir, embedder):
    settings = report_index(tmp_path, cache_dir, embedder)
    manifest_file = settings.index_dir / current_version(settings.index_dir) / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    manifest["format_version"] = 4
    manifest_file.write_text(json.dumps(manifest))
    with pytest.raises(IndexMismatch, match=r"format 4, this aiqa reads format 5: run `aiqa index`"):
        load_index(settings)
