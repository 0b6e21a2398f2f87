"""Cited extractive answers, tables, English, abstention and follow-ups on the real index."""

from __future__ import annotations

import re

import pytest

from aiqa.contract import ask_json
from aiqa.evaluate import squash

from .conftest import REPORT

CORPUS_TEXT = squash(REPORT.read_text(encoding="utf-8"))


def markers(answer: str) -> list[int]:
    return [int(n) for n in re.findall(r"\[(\d+)\]", answer)]


def check_cited(result: dict) -> None:
    """Every statement line ends with a marker, every marker has a source, every quote is verbatim."""
    assert not result["abstained"]
    numbers = {c["n"] for c in result["citations"]}
    assert set(markers(result["answer"])) == numbers
    statements = [
        line
        for line in result["answer"].splitlines()
        if line.strip() and not line.startswith(("|---", "From the documents")) and not line.startswith("| 항목")
    ]
    for line in statements:
        assert re.search(r"\[\d+\]\s*\|?\s*$", line), f"statement without a citation: {line}"
    for c in result["citations"]:
        assert squash(c["quote"]) in CORPUS_TEXT
        assert squash(c["quote"]) in squash(c["passage"])


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("미국 쪽 AI 칩으로는 무엇이 있나?", "NVIDIA A100"),
        ("해외로 나간 인재를 중국이 귀국시키는 제도는?", "천인계획"),
        ("미국이 리쇼어링이 아니라 택해야 할 것은?", "혁신 기반 확대"),
        ("중국이 기술 이전을 요구하는 방식은?", "합작법인"),
    ],
)
def test_answers_cite_exact_source_text(engine, question, expected):
    result = ask_json(engine, question)
    check_cited(result)
    assert expected in result["answer"]
    assert any(expected in c["quote"] for c in result["citations"])
    assert len(result["citations"]) <= 2  # the best one or two units, not a dump of the top five


def test_table_row_is_framed_with_its_headers(engine):
    result = ask_json(engine, "장기 계획을 이어가는 힘에서 어느 나라가 유리한가?")
    check_cited(result)
    assert "**전략 일관성** (항목)" in result["answer"] and "중국: 장기 계획 지속 가능" in result["answer"]
    assert result["citations"][0]["locator"] == "line 34, table 3, row 4"


def test_comparison_is_answered_with_a_table(engine):
    result = ask_json(engine, "미국과 중국의 AI 반도체를 비교해줘")
    check_cited(result)
    lines = result["answer"].splitlines()
    assert lines[0] == "| 항목 | 미국 | 중국 | 평가 | 출처 |"
    assert any("NVIDIA A100" in line and "Huawei Ascend 910B" in line and "[1]" in line for line in lines)


def test_whole_table_request_lists_every_row(engine):
    result = ask_json(engine, "중장기 전망을 항목별로 표로 정리해줘")
    rows = [line for line in result["answer"].splitlines() if re.search(r"\[\d+\] \|$", line)]
    assert len(rows) == 5 and len(result["citations"]) == 5


def test_english_question_gets_english_framing_and_korean_quotes(engine):
    result = ask_json(engine, "What chips did China develop after Nvidia GPU export limits?")
    check_cited(result)
    assert result["answer"].startswith("From the documents")
    assert any("국산 칩 개발에 집중" in c["quote"] for c in result["citations"])


@pytest.mark.parametrize(
    ("question", "message"),
    [
        ("그럼 대한민국은?", "문서에서 답을 찾을 수 없습니다"),  # raised, never answered
        ("NVIDIA H100의 가격은 얼마인가?", "문서에서 답을 찾을 수 없습니다"),  # a fact it does not state
        ("일본의 AI 반도체 전략은?", "문서에서 답을 찾을 수 없습니다"),  # a country it does not discuss
        ("김치찌개 끓이는 법을 알려줘", "문서에서 답을 찾을 수 없습니다"),  # off-topic
        ("What is the capital of France?", "The documents do not answer this"),
    ],
)
def test_abstains_honestly(engine, question, message):
    result = ask_json(engine, question)
    assert result["abstained"] is True
    assert result["answer"].startswith(message)
    assert result["citations"] == []
    assert result["passages"], "the closest passages are still listed"
    assert len(result["related"]) == 3 and all(p["source"] == "us-china-ai-race.txt" for p in result["related"])


def test_transliterated_name_is_known(engine):
    result = ask_json(engine, "화웨이의 AI 반도체는?")  # the report writes "Huawei"
    assert not result["abstained"] and "Huawei" in result["answer"]
    result = ask_json(engine, "바이두, 알리바바는 무엇을 구현했나?")  # "Baidu, Alibaba"
    assert not result["abstained"] and "GPT-3.5 수준 모델 일부 구현" in result["citations"][0]["quote"]


def test_follow_up_is_resolved_from_history(engine):
    first = ask_json(engine, "미국의 AI 반도체는?")
    assert "NVIDIA" in first["answer"]
    history = [
        {"role": "user", "content": "미국의 AI 반도체는?"},
        {"role": "assistant", "content": first["answer"]},
    ]
    follow = ask_json(engine, "중국은?", history=history)
    assert not follow["abstained"]
    assert "Huawei Ascend 910B" in follow["answer"]
    assert "반도체" in follow["resolved_question"]
    alone = ask_json(engine, "중국은?")
    assert "반도체" not in alone["resolved_question"]


def test_follow_up_that_switches_the_name_finds_that_names_row(engine):
    follow = ask_json(engine, "그럼 미국 기업은?", history=["관세 인상이 중국의 자립에 주는 영향은?"])
    assert not follow["abstained"]
    assert "중국 매출 비중 높은 기업들 타격" in follow["citations"][0]["quote"]


def test_full_question_is_not_rewritten_by_history(engine):
    result = ask_json(engine, "중국은 원자재를 어디서 조달하나?", history=["미국의 AI 반도체는?"])
    assert result["resolved_question"] == "중국은 원자재를 어디서 조달하나?"
    assert "희토류" in result["answer"]


def test_a_chain_of_follow_ups_keeps_its_topic():
    from aiqa.pipeline import resolve_follow_up

    assert resolve_follow_up("중국은?", ["미국의 AI 반도체는?"]).split()[1:] == ["반도체", "ai"]
    chained = resolve_follow_up("일본은?", ["미국의 AI 반도체는?", "중국은?"])
    assert "반도체" in chained and "중국" not in chained and "미국" not in chained
    assert (
        resolve_follow_up("중국은 원자재를 어디서 조달하나?", ["미국의 AI 반도체는?"])
        == "중국은 원자재를 어디서 조달하나?"
    )


def test_follow_up_about_a_name_the_documents_lack_abstains(engine):
    result = ask_json(engine, "일본은?", history=["미국의 AI 반도체는?", "중국은?"])
    assert result["abstained"] is True


def test_a_heading_alone_is_never_a_hit(engine):
    # A heading or title with nothing under it in its passage (the text after it is another section or a
    # table) states nothing: asked in its very words, the search returns passages that state something.
    retriever = engine.pipeline().retriever
    chunks = retriever.chunks
    alone = [g for g in retriever.passages if not any(chunks[i].statements for i in g)]
    assert len(alone) >= 3
    for group in alone[:8]:
        hits = retriever.search(chunks[group[0]].text, k=5)
        assert len(hits) == 5
        assert all(any(u.chunk.statements for u in h.passage_units) for h in hits), chunks[group[0]].text
