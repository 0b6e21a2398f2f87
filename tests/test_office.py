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


def test_attachments_signatures_and_lead_ins_are_never_an_answer_alone():
    from aiqa.answer.candidates import OPENS_ONLY

    for text in ("붙임 1. 좌석 배치도 1부.  끝.", "대표이사 ○ ○ ○ (인)", "신청 방법은 다음과 같다.", "보낼 서류:"):
        assert OPENS_ONLY.search(text), text
    for text in ("사본 2부를 인사팀에 제출한다.", "신청은 그룹웨어에서 한다.", "상담원은 10명이다."):
        assert not OPENS_ONLY.search(text), text
