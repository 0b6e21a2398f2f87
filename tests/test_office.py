"""Documents as organisations keep them (tests/data/office): a rule with chapters, articles and clauses, a
proposal as its text comes out of a PDF (hard wraps inside words, page numbers, a letter-spaced header),
a notice with a deadline beside an event. Each failure kind of such documents, as a regression test."""

from __future__ import annotations

import pytest

from aiqa.contract import ask_json

from .conftest import REPO, engine_over, report_index
from .test_languages import answered_and_refused

DATA = REPO / "tests" / "data"


@pytest.fixture(scope="module")
def office(tmp_path_factory, cache_dir, embedder):
    folder = DATA / "office"
    return engine_over(report_index(tmp_path_factory.mktemp("office"), cache_dir, embedder, folder), embedder).load()


def ask(engine, question: str) -> dict:
    result = ask_json(engine, question)
    assert not result["abstained"], (question, result["answer"])
    return result


def test_an_article_named_by_its_number_is_answered_with_the_whole_article(office):
    result = ask(office, "근태관리 규정 제7조는 무슨 내용이야?")
    (citation,) = result["citations"]
    assert "제7조(유연근무)" in citation["section"]
    for clause in ("오전 7시부터 오전 10시 사이", "전월 25일까지", "3개월이 지나야"):
        assert clause in citation["quote"], citation["quote"]


def test_a_list_question_gets_the_items_with_the_sentence_that_opens_them(office):
    result = ask(office, "경조휴가는 어떤 경우들에 받을 수 있어?")
    quote = " ".join(c["quote"] for c in result["citations"])
    for item in ("본인 결혼", "자녀 결혼", "배우자 출산", "부모 사망"):
        assert item in quote, quote
    assert "다음 각 호" in quote  # the lead-in says what the items are


def test_a_why_question_is_answered_from_the_section_that_gives_the_reason(office):
    result = ask(office, "교육 지원 제도를 바꾸려는 이유가 뭐야?")
    quote = " ".join(c["quote"] for c in result["citations"])
    assert "비용 부담" in quote, quote
    assert all(c["section"].endswith("제안이유") for c in result["citations"])


def test_a_hard_wrapped_proposal_is_quoted_in_whole_words_without_page_numbers(office):
    result = ask(office, "외부 교육비는 한 사람당 일 년에 얼마까지 지원돼?")
    quote = result["citations"][0]["quote"]
    assert "200만원" in quote and "- 2 -" not in quote and "\n" not in quote.strip(), quote


def test_who_wrote_a_document_is_read_from_its_letter_spaced_header_field(office):
    result = ask(office, "교육 지원 개선안은 어느 팀이 만들었어?")
    assert "인재개발팀" in result["answer"].replace(" ", ""), result["answer"]


def test_who_wrote_a_document_is_its_writers_field_in_any_words(office):
    """ "정리했어", "올린 거야": whoever the text names elsewhere, the writer is the header's 작성자 field."""
    for question in ("교육 지원 개선안은 누가 정리했어?", "교육 지원 개선안 누가 올린 거야?"):
        result = ask(office, question)
        assert not result["abstained"], (question, result["answer"])
        assert [c["quote"].replace(" ", "") for c in result["citations"]] == ["작성자:인재개발팀"], result["answer"]
    # a document the corpus does not hold is not written by the writer of one it does
    assert "인재개발팀" not in ask(office, "2029년 예산 편성안은 누가 작성했어?")["answer"].replace(" ", "")


def test_when_and_where_an_event_happens_is_not_answered_by_the_deadline_beside_it(office):
    result = ask(office, "보안 교육은 언제 어디서 해?")
    quote = " ".join(c["quote"] for c in result["citations"])
    assert "3월 29일" in quote or "5층 대회의실" in quote, quote


def test_the_office_questions_are_answered(office):
    right, _ = answered_and_refused(office, DATA / "office_questions.jsonl")
    assert right >= 8, right  # of 9


@pytest.mark.xfail(
    strict=True,
    reason="known gap: a fact the documents do not state, beside one they do (조부모 beside 부모), is answered "
    "with the neighbour; the answer decision reads word overlap, not whether the statement answers",
)
def test_absent_facts_beside_stated_ones_are_refused(office):
    _, refused = answered_and_refused(office, DATA / "office_questions.jsonl")
    assert refused >= 2, refused  # of 3


def test_an_article_named_by_number_is_answered_from_it_though_another_document_names_the_rules(office):
    # The notice names 근태관리 규정 (with the article's own words, 지각과 조퇴); the article itself answers.
    result = ask(office, "근태관리 규정 제6조는 뭘 정하고 있어?")
    assert "제6조(지각과 조퇴)" in result["citations"][0]["section"], result["citations"]
    assert "연차휴가 반나절" in result["citations"][0]["quote"]


def test_a_line_that_only_opens_what_follows_is_not_the_answer(office):
    result = ask(office, "백신 미설치로 지적받으면 언제까지 조치해야 돼?")
    assert "퇴근 전까지" in result["answer"], result["answer"]
    assert not result["answer"].rstrip(" [1]").endswith(":"), result["answer"]


def test_a_sentence_that_only_says_what_follows_below_is_not_the_answer(office):
    """ "…을 아래와 같이 실시합니다." opens the notice; it answers no question about what the notice says."""
    result = ask(office, "정보보안 점검 전에 미리 뭘 해 둬야 해?")
    assert "최신 버전으로 업데이트" in result["answer"], result["answer"]
    assert "아래와 같이" not in result["answer"], result["answer"]


def test_a_what_question_answered_by_an_item_of_a_list_gets_the_list(office):
    result = ask(office, "점검 전에 직원이 해야 하는 사전 조치는 뭐야?")
    quote = " ".join(c["quote"] for c in result["citations"])
    assert "최신 버전으로 업데이트" in quote and "화면 보호기" in quote, quote
    assert len(result["citations"]) == 1  # one span of one section, cited once


def test_an_hour_or_a_head_count_the_notice_does_not_give_is_refused(office):
    """The notice gives dates, a deadline in days and a fee per person; none of them says what hour or how many."""
    absent = ("점검은 몇 시에 시작해?", "보안 교육은 몇 명까지 들을 수 있어?", "대회의실은 몇 시까지 쓸 수 있어?")
    for question in absent:
        result = ask_json(office, question)
        assert result["abstained"], (question, result["answer"])
    assert not ask_json(office, "보안 교육은 몇 시에 끝나?")["abstained"]


def test_a_question_whether_a_rule_also_covers_something_is_answered_only_where_it_is_named(office):
    """ "X도 돼?" asks whether what the documents say holds for X too: the statement beside it, which does not
    name X, is no answer; one that names X is."""
    for question in ("개인 노트북도 점검 대상이야?", "외부 교육 교통비도 지원해 줘?"):
        result = ask_json(office, question)
        assert result["abstained"], (question, result["answer"])
    assert "지사" in ask(office, "지사 PC도 점검받아?")["answer"]
    assert "구독료" in ask(office, "온라인 강의 구독료도 회사가 지원해 줘?")["answer"]


def test_attachments_signatures_and_lead_ins_are_never_an_answer_alone():
    from aiqa.answer.candidates import OPENS_ONLY

    for text in ("붙임 1. 좌석 배치도 1부.  끝.", "대표이사 ○ ○ ○ (인)", "신청 방법은 다음과 같다.", "보낼 서류:"):
        assert OPENS_ONLY.search(text), text
    for text in ("사본 2부를 인사팀에 제출한다.", "신청은 그룹웨어에서 한다.", "상담원은 10명이다."):
        assert not OPENS_ONLY.search(text), text


QUARTER = """# 2028년 1분기 영업 보고

## 1. 팀별 매출

(단위 : 백만원)

| 팀 | 2027년 1분기 | 2028년 1분기 | 증감 |
|---|---|---|---|
| 영업1팀 | 3,120 | 3,540 | +13.5% |
| 영업2팀 | 2,980 | 2,410 | -19.1% |
| 해외영업팀 | 1,450 | 1,610 | +11.0% |

## 2. 팀별 분석

영업1팀은 신규 거래처 12곳을 확보하며 매출이 늘었다.

작년 말 주력 거래처였던 유통사와의 공급 계약이 끝났으나 영업2팀은 새 거래처를 찾지 못해 실적이 나빠졌다.
남은 인력 일부는 해외영업팀으로 옮겼다.

해외영업팀은 베트남과 태국에 현지 대리점을 새로 열어 수출이 늘면서 매출이 올랐다.
"""


def test_a_why_question_is_answered_by_a_sentence_not_by_a_row_of_figures(tmp_path, cache_dir, embedder):
    """A table row states how much, not why: the reason comes from the sentence about the same team, not
    from its row nor from another team's reason."""
    from dataclasses import replace

    from aiqa.answer.candidates import Candidate, Question, Statement
    from aiqa.records import Chunk, Hit
    from aiqa.text.korean import analyse

    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "1분기영업보고.md").write_text(QUARTER, encoding="utf-8")
    engine = engine_over(report_index(tmp_path / "built", cache_dir, embedder, folder), embedder).load()
    result = ask(engine, "영업2팀 매출이 줄어든 까닭은?")
    assert "새 거래처를 찾지 못해" in result["citations"][0]["quote"], result["answer"]
    # The selection model scores the overseas team's own sentence low ("올랐다" for "늘어난"); whatever it
    # then decides, it never gives the first team's reason for the overseas team's growth.
    result = ask_json(engine, "해외영업팀 매출이 늘어난 이유가 뭐야?")
    assert result["abstained"] or "해외영업팀" in result["citations"][0]["quote"], result["answer"]

    # the rule itself: a table whose columns give reasons still answers why; another team's sentence does not
    from aiqa.answer.candidates import reason_tier

    why = Question.read(analyse("해외영업팀 매출이 왜 늘었어?"), engine.pipeline().retriever.stats)
    row = Chunk("a.md", "1. 팀별 매출", "table_row", 0, 1, "x", "x", "", cells=(("팀", "해외영업팀"), ("증감", "+11%")))

    def tier(chunk: Chunk, quote: str = "x", foreign: bool = False) -> int:
        return reason_tier(
            why,
            Candidate(Hit(chunk, 0, 1.0, 1.0, 1.0, 1), Statement(0, 1, *[frozenset()] * 3, False, False), quote, {}),
            foreign,
        )

    assert tier(row) == 1
    assert tier(replace(row, cells=(("팀", "해외영업팀"), ("증가 사유", "대리점 개설")))) == 0
    # a row of words can state the reason ("| 전략 일관성 | 정부교체 영향 큼 | 장기 계획 지속 |")
    assert tier(replace(row, cells=(("항목", "해외 판로"), ("평가", "현지 대리점 개설로 확대")))) == 0
    prose = replace(row, kind="paragraph", cells=())
    assert tier(prose, "해외영업팀은 대리점을 새로 열었다.") == 0
    assert tier(replace(prose, section="2. 팀별 분석 > 해외영업팀"), "대리점을 새로 열었다.") == 0
    assert tier(prose, "영업1팀은 신규 거래처를 확보했다.") == 1
    # a question in another language spells its names its own way ("Sales team 2"): no sentence has them
    assert tier(prose, "영업1팀은 신규 거래처를 확보했다.", foreign=True) == 0
    assert tier(row, foreign=True) == 1


PROCEDURE = """비품 구매 절차서

1. 목적
  이 절차서는 부서가 쓰는 사무 비품을 사는 과정을 정한다.

2. 업무 절차

【1단계】 구매 요청          (담당 : 요청 부서 서무 담당자)
  ① 그룹웨어의 비품 요청 화면에 품목, 수량, 쓰임새를 적어 올린다.
  ② 한 번에 50만원이 넘는 요청에는 견적서 두 장을 붙인다.

【2단계】 검토와 발주          (담당 : 총무팀 구매 담당)
  ① 요청 내용을 확인하고 같은 품목의 재고가 있는지 본다.
  ② 재고가 없으면 거래처에 발주하고 도착 예정일을 요청 부서에 알린다.
"""


def test_a_who_question_answered_by_a_step_gets_the_heading_that_names_who_does_it(tmp_path, cache_dir, embedder):
    """In a procedure the step's heading says who does it; its steps say what is done. Asked who, the
    answer shows the heading with the step that matches."""
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "비품구매절차서.txt").write_text(PROCEDURE, encoding="utf-8")
    engine = engine_over(report_index(tmp_path / "built", cache_dir, embedder, folder), embedder).load()
    result = ask(engine, "비품 요청은 누가 그룹웨어에 올려?")
    assert "서무 담당자" in result["answer"], result["answer"]
    assert any(c["quote"].startswith("【1단계】") for c in result["citations"]), result["citations"]
    # not asked who: the step alone
    result = ask(engine, "50만원 넘게 요청하면 뭘 붙여야 해?")
    assert "견적서" in result["answer"] and "【1단계】" not in result["answer"], result["answer"]


MINUTES = """# 제3차 안전보건위원회 회의록

| 항목 | 내용 |
|---|---|
| 일시 | 2029년 4월 10일(화) 14:00 |
| 장소 | 본관 3층 회의실 |

## 결정사항

1. 지게차 통로에 바닥 표시를 새로 칠한다.
2. 신규 입사자 안전교육을 입사 첫 주 안에 마친다.
"""

REPORT = """# 2029년 상반기 물류센터 운영 보고

## 1. 요약

상반기 물류센터 출고 건수는 41만 건으로 지난해 같은 기간보다 8% 늘었다.
"""


def test_a_question_about_another_round_or_half_than_the_document_is_about_is_refused(tmp_path, cache_dir, embedder):
    """Minutes of the 3rd meeting do not say what the 4th decided; a report on the first half does not give the
    second half's figures. Asked about the round or half they are about, they answer."""
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "안전보건위원회_3차회의록.md").write_text(MINUTES, encoding="utf-8")
    (folder / "물류센터_상반기보고.md").write_text(REPORT, encoding="utf-8")
    engine = engine_over(report_index(tmp_path / "built", cache_dir, embedder, folder), embedder).load()
    for question in ("4차 안전보건위원회에서는 뭘 결정했어?", "물류센터 하반기 출고 건수는 몇 건이야?"):
        result = ask_json(engine, question)
        assert result["abstained"], (question, result["answer"])
    assert "바닥 표시" in ask(engine, "3차 안전보건위원회에서는 뭘 결정했어?")["answer"]
    assert "41만 건" in ask(engine, "물류센터 상반기 출고 건수는 몇 건이야?")["answer"]
