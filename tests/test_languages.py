"""Documents in another language than Korean, and questions in another language than their documents.

aiqa reads a question against the language of the passages it retrieves, not against Korean: an
English question over an English handbook is read word by word like a Korean one over a Korean
report, while a Korean question over English text (or an English one over Korean) is read by
meaning (token alignment). tests/data/handbook is an English document written for these tests.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from aiqa.answer.candidates import Question, crosses
from aiqa.contract import ask_json
from aiqa.evaluate import contains
from aiqa.text.cues import ASKS_CODE, ASKS_TIME, ASKS_WHERE, ASKS_WHO, DATE, QUANTITY, asked_unit, header_unit
from aiqa.text.korean import analyse
from aiqa.web.examples import examples

from .conftest import REPO, engine_over, report_index

DATA = Path(__file__).with_name("data")


def test_english_months_weekdays_and_clock_times_are_dates():
    for text in (
        "Reviews happen in June and December.",
        "The desk is closed on Sundays.",
        "Core hours start at 10:00.",
        "매주 월요일 오후 3시에 회의합니다.",
        "It opened in May 2020.",
    ):
        assert DATE.search(text), text
    for text in ("This may be late.", "The marching band played.", "Version 2.0 of the tool"):
        assert not DATE.search(text), text


def test_number_words_are_amounts():
    for text in ("Remote work is allowed up to three days a week.", "세 명이 참석했다.", "두 가지 방법이 있다."):
        assert QUANTITY.search(text), text
    assert not QUANTITY.search("No one knows.") and not QUANTITY.search("두 대국의 경쟁")


def test_a_question_crosses_only_into_another_language(handbook_engine, engine):
    for eng, question, expected in (
        (handbook_engine, "How long is parental leave?", False),
        (handbook_engine, "육아휴직은 얼마나 되나요?", True),
        (engine, "Which software frameworks does the US lead with?", True),
        (engine, "미국이 주도하는 소프트웨어는?", False),
    ):
        pipeline = eng.pipeline()
        retriever, composer = pipeline.retriever, pipeline.composer
        analysis = analyse(question)
        hits = retriever.search(analysis, k=5)
        assert crosses(Question.read(analysis, retriever.stats), hits, composer.statements) is expected, question


def test_an_english_question_over_an_english_document_is_answered_in_its_words(handbook_engine):
    result = ask_json(handbook_engine, "When are performance reviews held?")
    assert not result["abstained"], result["answer"]
    assert "June and December" in result["answer"]
    assert "quoted in their own language" not in result["answer"]
    assert result["citations"][0]["source"] == "handbook.md"


def test_a_korean_question_over_an_english_document_quotes_it_and_says_so(handbook_engine):
    result = ask_json(handbook_engine, "비밀번호는 몇 자 이상이어야 하나요?")
    assert not result["abstained"], result["answer"]
    assert "14 characters" in result["answer"]
    assert result["answer"].startswith("문서의 원문 그대로 인용합니다")


def answered_and_refused(engine, path: Path) -> tuple[int, int]:
    """How many answerable questions of a file get an answer holding a gold string, and how many others are refused."""
    cases = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    right = refused = 0
    for case in cases:
        result = ask_json(engine, case["q"])
        if case["answerable"]:
            right += not result["abstained"] and any(contains(result["answer"], g) for g in case["gold"])
        else:
            refused += result["abstained"]
    return right, refused


def test_the_handbook_questions_are_answered_and_the_others_refused(handbook_engine):
    right, refused = answered_and_refused(handbook_engine, DATA / "handbook_questions.jsonl")
    # Measured 13 of 14 and 5 of 6 when this test was written (one Korean question's passage ranks 9th).
    assert right >= 12, right
    assert refused >= 4, refused


def test_the_company_questions_are_answered_and_the_others_refused(company_engine):
    right, refused = answered_and_refused(company_engine, DATA / "company_questions.jsonl")
    # Measured 23 of 28 and 8 of 13 when this test was written: questions on a topic near the documents'
    # (a password the FAQ does not give, mileage the policy does not mention) are the weak spot.
    assert right >= 21, right
    assert refused >= 5, refused


def test_a_faq_answer_is_cited_with_its_question(company_engine):
    result = ask_json(company_engine, "비밀번호를 얼마나 자주 변경해야 하나요?")
    assert not result["abstained"], result["answer"]
    quote = result["citations"][0]["quote"]
    assert "90일마다" in quote and "바꿔야 하나요?" in quote


def test_an_english_question_for_a_sum_of_money_wants_a_currency():
    unit = asked_unit("How much does the R7 router cost?")
    assert unit is not None
    assert unit.search("It sells for $129.") and unit.search("연간 이용권은 1,500유로이다")
    assert not unit.search("It ships with a 1.5 metre cable.")
    assert asked_unit("Which side is more cost-efficient?") is None
    assert asked_unit("How much power does the panel supply?") is None


def test_a_deadline_is_asked_and_a_time_limit_answers_it():
    for question in ("경비 정산 기한은?", "보고서 마감 일정은?", "What is the deadline for claims?"):
        assert ASKS_TIME.search(question), question
    for text in ("출발 5영업일 전까지 제출한다.", "복귀 후 10일 이내에 정산한다.", "within 30 days of the expense"):
        assert DATE.search(text), text
    assert not DATE.search("참가자는 100명 이내로 한다.")


def test_a_counter_is_answered_by_one_that_counts_the_same():
    assert asked_unit("시험 응시료는 몇 번까지 지원하나요?").search("연 2회까지 지원한다")
    assert asked_unit("몇 회 열리나?").search("두 차례가 아니라 3번")
    assert asked_unit("몇 명이 모여야 하나?").search("5인 이상")
    assert not asked_unit("몇 명이 모여야 하나?").search("5개 이상")
    # a word ending in 인 before a year is no count of people, and "1인당" counts per person
    assert not asked_unit("몇 명을 새로 뽑아?").search("공사를 마친 뒤인 2029년 3월부터 시행한다")
    assert not asked_unit("몇 명까지 들을 수 있어?").search("1인당 연간 한도는 200만원")
    assert asked_unit("몇 달러야?").search("USD 20") and asked_unit("몇 달러야?").search("$5")
    assert asked_unit("상담 자리는 몇 개야?") is None  # any counter answers "몇 개": "12석", "3대"
    assert asked_unit("교육은 몇 주야?").search("교육은 4주 동안") and not asked_unit("몇 주야?").search("창립 3주년")
    assert asked_unit("모니터는 몇 인치야?").search("27인치") and not asked_unit("몇 인치야?").search("1인당 2대")


def test_a_korean_question_for_pay_or_a_cost_wants_a_sum_of_money_in_the_text_or_its_column_header():
    pay = asked_unit("야간 근무 수당은 얼마야?")
    assert pay.search("1회 5만 원을 지급한다") and not pay.search("밤 10시부터 다음 날 6시까지")
    assert asked_unit("비율은 얼마야?") is None and asked_unit("보험료는 얼마나 올라?") is None
    assert header_unit("야간 근무 수당은 얼마야?").search("금액(원)")
    assert header_unit("등록비가 얼마야?").search("Fee (KRW)")
    assert header_unit("몇 명이 왔어?").search("내원 환자(명)") and not header_unit("몇 명이 왔어?").search("명칭")
    assert header_unit("몇 개야?") is None and header_unit("몇 시에 열어?") is None


def test_a_time_of_day_is_asked_by_what_hour_and_answered_by_a_clock_time():
    hour = asked_unit("안내 창구는 몇 시까지 열어?")
    for text in ("평일 오전 9시부터 오후 6시까지 연다.", "운영 시간 : 09:00 ~ 18:00"):
        assert hour.search(text), text
    for text in ("신청은 3월 24일까지 받는다.", "접수 후 30일까지 처리한다.", "2층 안내 창구"):
        assert not hour.search(text), text
    assert asked_unit("몇 시간 걸려?").search("2시간 걸린다")


def test_which_company_or_team_asks_who_and_where_asks_a_place():
    for question in ("이 장비는 어느 회사 제품이야?", "어느 팀에 물어봐?", "Which vendor supplies the printers?"):
        assert ASKS_WHO.search(question), question
    assert ASKS_WHERE.search("창구는 어디 있고 몇 시까지 해?")


def test_example_questions_come_from_the_documents_faq_and_sections(company_engine, handbook_engine, engine):
    company = examples(company_engine)
    assert len(company) == 4 and "비밀번호는 얼마나 자주 바꿔야 하나요?" in company
    assert all(q.endswith("?") for q in company)
    handbook = examples(handbook_engine)
    assert handbook and all(q.startswith("Tell me about ") for q in handbook), handbook
    assert all(q.endswith(("은?", "는?")) for q in examples(engine)), examples(engine)


@pytest.fixture(scope="module")
def manual_engine(tmp_path_factory, cache_dir, embedder):
    """A Korean software manual with its commands in code blocks (tests/data/manual), indexed once."""
    folder = REPO / "tests" / "data" / "manual"
    return engine_over(report_index(tmp_path_factory.mktemp("manual"), cache_dir, embedder, folder), embedder)


def test_a_korean_question_answered_by_a_code_block_of_a_korean_manual_is_not_called_foreign(manual_engine):
    """Code is no foreign language: a command quoted from a Korean manual gets no "quoted as written" notice."""
    result = ask_json(manual_engine, "백업을 지금 바로 수동으로 만들려면 어떤 명령을 써?")
    assert not result["abstained"], result["answer"]
    assert any("snapkeep create" in c["quote"] for c in result["citations"]), result["answer"]
    assert not result["answer"].startswith("문서의 원문 그대로")


def test_a_how_to_question_gets_the_command_that_follows_the_steps_that_answer_it(manual_engine):
    result = ask_json(manual_engine, "백업해 둔 파일을 되살리려면 어떻게 해?")
    assert not result["abstained"], result["answer"]
    assert any("snapkeep restore" in c["quote"] for c in result["citations"]), result["answer"]


@pytest.fixture(scope="module")
def mixed_engine(tmp_path_factory, cache_dir, embedder):
    """Korean rules, a notice, an FAQ and an expense policy beside one English handbook, indexed together."""
    folder = tmp_path_factory.mktemp("mixed-corpus")
    for source in ("office", "company", "handbook"):
        for path in (DATA / source).iterdir():
            shutil.copy(path, folder / path.name)
    return engine_over(report_index(tmp_path_factory.mktemp("mixed"), cache_dir, embedder, folder), embedder).load()


# Korean questions whose answer only the English handbook gives.
ABOUT_THE_HANDBOOK = (
    "분실한 노트북은 몇 시간 안에 신고해야 해?",
    "호텔비는 하룻밤에 얼마까지 돌려받아?",
    "육아휴직은 몇 주야?",
    "쓰지 않은 연차는 다음 해로 며칠까지 넘어가?",
    "비밀번호는 최소 몇 자리여야 해?",
)


def test_a_korean_question_finds_the_english_document_among_korean_ones(mixed_engine):
    """The encoder favours passages in the question's language; centred cosines find the English one."""
    retriever = mixed_engine.pipeline().retriever
    assert retriever.centres.means, "a corpus of Korean and English documents has a mean vector per language"
    for question in ABOUT_THE_HANDBOOK:
        sources = [hit.chunk.source for hit in retriever.search(question, 5)]
        assert "handbook.md" in sources, (question, sources)


def test_a_korean_question_about_a_korean_document_still_finds_it_first_in_a_mixed_corpus(mixed_engine):
    hits = mixed_engine.pipeline().retriever.search("국내 출장 숙박비는 하룻밤에 얼마까지 받을 수 있어?", 5)
    assert hits[0].chunk.source == "travel-expenses.md", [h.chunk.source for h in hits]


def test_a_corpus_of_one_language_gets_no_correction(handbook_engine, engine):
    for one in (handbook_engine, engine):
        retriever = one.pipeline().retriever
        assert not retriever.centres.means
        assert retriever.centres.shift(analyse("육아휴직은 몇 주야?"), retriever.encode("육아휴직은 몇 주야?")) is None


def test_a_code_block_is_tilted_towards_neither_language(tmp_path):
    # A Korean manual with a command in it, beside an English guide: the cosines of Korean prose move for
    # an English question (and the English guide's for a Korean one); the command's never do.
    from .fakes import FakeEmbedder

    corpus = tmp_path / "docs"
    corpus.mkdir()
    (corpus / "manual.md").write_text(
        "# 배포 도구 설명서\n\n배포 전에 설정 파일을 확인하고 담당자의 승인을 받습니다.\n\n"
        "```bash\ndeploy apply --env prod --version 2.4.1\n```\n",
        encoding="utf-8",
    )
    (corpus / "guide.md").write_text(
        "# Travel guide\n\nBook every trip in the travel portal first.\n", encoding="utf-8"
    )
    embedder = FakeEmbedder()
    engine = engine_over(report_index(tmp_path / "built", tmp_path / "cache", embedder, corpus), embedder).load()
    retriever = engine.pipeline().retriever
    chunks = retriever.chunks
    code = [i for i, c in enumerate(chunks) if c.kind == "code"]
    korean_prose = [i for i, c in enumerate(chunks) if c.source == "manual.md" and c.kind != "code"]
    assert code and korean_prose and retriever.centres.means
    for question in ("How do I deploy to production?", "출장은 어디서 신청해?"):
        shift = retriever.centres.shift(analyse(question), retriever.encode(question))
        assert shift is not None and not shift[code].any()
    english = retriever.centres.shift(analyse("How do I deploy?"), retriever.encode("How do I deploy?"))
    assert english[korean_prose].any()


def test_a_question_that_asks_for_code_is_answered_by_a_code_block(manual_engine):
    result = ask_json(manual_engine, "복원할 때 쓰는 명령어가 뭐야?")
    assert not result["abstained"], result["answer"]
    assert "snapkeep restore" in result["citations"][0]["quote"], result["answer"]  # the command, not the prose
    install = ask_json(manual_engine, "설치 명령어 알려줘")
    assert install["answer"].count("apt-get install snapkeep") == 1, install["answer"]  # shown once


def test_the_code_cue_asks_for_code_and_not_for_a_barcode():
    for asked in ("코드를 어떻게 짜?", "명령어 알려줘", "Which command lists backups?", "a script to restore"):
        assert ASKS_CODE.search(asked), asked
    for not_asked in ("바코드가 안 읽혀", "유니코드 문자가 깨져", "복원은 누가 승인해?"):
        assert not ASKS_CODE.search(not_asked), not_asked
