"""The reader's runtime side: what it reads of a question and a statement, and a clear error without its files."""

from __future__ import annotations

import pytest

from aiqa.answer.reader import Reader, passage_text, query_text, reader_dir
from aiqa.errors import ModelUnavailable


def test_texts_carry_e5_prefixes_and_the_section_label():
    assert query_text("  재택근무는\n누가 할 수 있어? ") == "query: 재택근무는 누가 할 수 있어?"
    assert passage_text("가. 근속 1년 이상인\n직원", "제2조 대상") == "passage: 제2조 대상: 가. 근속 1년 이상인 직원"
    assert passage_text("임기는 4년이다.", "") == "passage: 임기는 4년이다."


def test_missing_model_says_how_to_build_it(tmp_path):
    reader = Reader(reader_dir(tmp_path))
    assert not reader.available
    assert reader.scores("질문", []) == []  # nothing to read needs no model
    with pytest.raises(ModelUnavailable, match=r"train_reader\.py"):
        reader.scores("질문", [passage_text("문장", "")])
