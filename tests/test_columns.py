"""Tables laid out with spaces (aiqa.text.columns): found where every row leaves the same columns blank."""

from __future__ import annotations

import pytest

from aiqa.contract import ask_json
from aiqa.text.columns import aligned_tables, unspaced
from aiqa.text.layout import code_kinds, line_kind, split_lines

from .conftest import REPO, engine_over, report_index

ALLOWANCES = """[별표 1] 출장 수당 (제4조 관련)

  구    분          국    내          국    외          비    고
  --------------------------------------------------------------
  일    비          20,000원           미화 50달러         하루당
  숙    박          80,000원           미화 200달러        실비 한도
  교    통             -               실비                항공은 일반석

※ 임원은 위 금액의 1.5배로 한다.
"""


def tables(text: str) -> list[list[tuple[str, ...]]]:
    lines = split_lines(text)
    kinds = code_kinds(lines, [line_kind(line.text) for line in lines])
    return [[row.cells for row in rows] for _, rows in aligned_tables(lines, kinds).values()]


def test_a_table_of_spaces_has_its_header_its_rows_and_empty_cells():
    (table,) = tables(ALLOWANCES)
    assert table[0] == ("구분", "국내", "국외", "비고")  # letter-spaced headers read as words
    assert table[1] == ("일비", "20,000원", "미화 50달러", "하루당")
    assert table[3] == ("교통", "", "실비", "항공은 일반석")  # a lone dash is an empty cell
    assert len(table) == 4  # the note under the table is not a row


def test_a_cell_wrapped_onto_a_second_line_joins_its_row():
    text = (
        "  단계        산출물                    기한\n"
        "  착수        수행계획서                5월 14일\n"
        "  중간        화면 시안,                8월 11일\n"
        "              관리자 화면\n"
        "  완료        전체 산출물               10월 22일\n"
    )
    (table,) = tables(text)
    assert table[2] == ("중간", "화면 시안, 관리자 화면", "8월 11일")
    assert [row[0] for row in table] == ["단계", "착수", "중간", "완료"]


def test_prose_two_columns_and_code_are_no_tables():
    prose = (
        "회의는 오후 2시에 시작했다.  참석자는 모두 열두 명이었다.  안건은 셋이었다.\n"
        "첫 안건은 예산이었다.  두 번째는 일정이었다.  마지막은 인력이었다.\n"
        "결론은 다음 회의로 미뤘다.\n"
    )
    pairs = "  일시        7월 14일\n  장소        본사 8층\n  주관        기획팀\n"
    code = "```\nname      size   kind\napp.py    12k    file\nlib       -      dir\n```\n"
    assert tables(prose) == [] and tables(pairs) == [] and tables(code) == []


def test_letter_spaced_words_are_read_as_words_and_spaced_phrases_are_not():
    assert unspaced("숙    직     60,000원") == "숙직     60,000원"
    assert unspaced("그 중 한 명이 왔다") == "그 중 한 명이 왔다"  # one space: ordinary words


@pytest.fixture(scope="module")
def rates(tmp_path_factory, cache_dir, embedder):
    folder = REPO / "tests" / "data" / "tables"
    return engine_over(report_index(tmp_path_factory.mktemp("tables"), cache_dir, embedder, folder), embedder).load()


def test_a_question_on_a_table_of_spaces_is_answered_by_its_row_under_its_headers(rates):
    # [별표 1]: letter-spaced headers, a dashed rule, a lone "-" for an empty cell, a wrapped cell.
    result = ask_json(rates, "야간 근무를 휴일에 하면 시간당 얼마 받아?")
    assert not result["abstained"], result["answer"]
    (citation,) = result["citations"]
    assert "24,000원" in result["answer"] and "휴일" in result["answer"], result["answer"]
    assert "야간 근무" in citation["quote"] and "[별표 1]" in citation["section"]
    standby = ask_json(rates, "비상 대기는 휴일에 얼마 받아?")
    assert "하루 30,000원" in standby["answer"] and "연장 근무로 계산" in standby["answer"], standby["answer"]
