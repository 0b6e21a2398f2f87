"""The answer decision on constructed cases: each kind of failure seen on new phrasing, as a regression.

The questions are written for these tests; none comes from an evaluation set.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from aiqa.answer.candidates import Question
from aiqa.answer.decision import Model, load_decision
from aiqa.chunk import chunk_document
from aiqa.contract import ask_json
from aiqa.errors import BadSetting
from aiqa.records import Document
from aiqa.text.cues import ASKS_NUMBER, DATE, QUANTITY, asked_unit
from aiqa.text.korean import LatinNames, analyse

from .conftest import engine_over, report_index

DATA = Path(__file__).with_name("data")
TITLE = "AI 패권 경쟁, 미국은 지키고 중국은 쫓는다"


def test_a_cue_word_that_does_not_ask_for_an_amount_does_not_refuse(engine):
    # "얼마나 피해를" asks how badly, not how much: the row on US companies answers it.
    result = ask_json(engine, "관세가 오르면 미국 기업들은 얼마나 피해를 보나?")
    assert not result["abstained"]
    assert "타격" in result["answer"]
    assert not ASKS_NUMBER.search("관세가 오르면 미국 기업들은 얼마나 피해를 보나?")
    assert ASKS_NUMBER.search("관세율은 얼마나 높아지나?") and ASKS_NUMBER.search("보조금 규모는?")


def test_a_word_the_documents_never_use_does_not_refuse(engine):
    # "챗GPT" is nowhere in the report; the question is still about its table of AI models.
    result = ask_json(engine, "챗GPT 같은 초거대 모델은 어느 나라가 주도하나?")
    assert not result["abstained"]
    assert any("초거대모델 주도" in c["quote"] for c in result["citations"])


def test_a_paraphrase_finds_the_statement_in_other_words(engine):
    # The report says 인재 유치 / 귀국 유도; the question says bringing scientists home.
    result = ask_json(engine, "중국이 해외에 있는 과학 인재를 귀국시키는 제도는?")
    assert not result["abstained"]
    assert "천인계획" in result["answer"]


@pytest.mark.parametrize(
    "question",
    [
        "중국 정부의 AI 보조금은 몇 위안인가?",  # the report names the subsidies, never a sum
        "중국의 AI 칩 자급률은?",  # an amount asked without 얼마/몇
        "What share of China's AI chips comes from SMIC?",
        "삼성전자의 HBM 전략은?",  # a company the report never mentions
        "그럼 대한민국은?",  # the report raises it and never answers
    ],
)
def test_questions_the_report_does_not_answer_are_refused(engine, question):
    result = ask_json(engine, question)
    assert result["abstained"], result["answer"]
    assert result["citations"] == []


def test_both_countries_in_a_question_do_not_dump_a_whole_table(engine):
    result = ask_json(engine, "미국과 중국 모두 가진 강점은?")
    assert len(result["citations"]) <= 2


def test_a_title_line_is_never_cited_as_a_statement(engine):
    result = ask_json(engine, "AI 패권 경쟁에서 미국과 중국은?")
    assert result["citations"], "the opening paragraph answers this"
    assert all(TITLE not in c["quote"] for c in result["citations"])


def test_the_confidence_of_the_decision_is_reported(engine):
    answered = ask_json(engine, "바이두가 만든 AI 모델 이름은?")
    refused = ask_json(engine, "김치찌개 끓이는 법을 알려줘")
    assert not answered["abstained"] and refused["abstained"]
    assert 0.0 <= refused["confidence"] < answered["confidence"] <= 1.0


def test_korean_forms_that_once_crashed_the_romaniser_are_read():
    names = LatinNames({"huawei", "baidu"})
    for word in ("많_김정남", "ᆭ", "잃", "많", "김정남"):
        assert names.match(word) is None  # no error, and no false match
    assert names.match("화웨이") == "huawei"
    for question in ("IT 분야에 관심이 많은 사람이 위원장을 맡은 곳은?", "병력을 잃은 뒤에나 물러난 장수는?"):
        assert LatinNames({"it", "center"}).normalize(list(analyse(question).tokens))


def test_words_that_ask_or_point_are_not_keywords():
    # 어떤/어떻게 and 그런 are tagged as adjectives, 얼마 as a noun: none of them names a topic.
    assert analyse("회사는 어떤 제품을 어떻게 파나?").terms == {"회사", "제품", "팔"}
    assert analyse("그런 계약의 금액은 얼마인가?").terms == {"계약", "금액"}


def test_what_a_question_asks_about_with_also_is_read_as_written():
    # the additive particle 도 marks the phrase the question asks about, past a case particle
    assert analyse("야간 진료비도 회사가 대신 내줘?").also == ("야간", "진료비")
    assert analyse("맥북에서도 설치돼?").also == ("맥북",)
    assert analyse("결재 결과를 문자로도 알려 줘?").also == ("문자",)
    assert analyse("재발급 수수료도 있어?").also == ("재발급", "수수료")  # a prefix stays with its noun
    # the noun a clause describes is asked about by the clause; the nouns after it still name the thing
    assert analyse("야근하는 날 택시 요금도 줘?").also == ("택시", "요금")
    # "not even once" and "nothing at all" ask about no phrase; nor does 도 inside a word or an ending
    for question in (
        "한 번도 지각하지 않으면 상을 줘?",
        "아무것도 안 가져가도 돼?",
        "제도는 언제 바뀌어?",
        "늦어도 돼?",
        "개인 카드로 낸 돈도 돌려받아?",  # a noun a clause describes: the clause is asked about, in any words
    ):
        assert analyse(question).also == (), question
    assert analyse("Can my son come too?").also == ()


def test_the_rounds_and_parts_of_a_year_a_text_names_are_read_and_compared():
    from aiqa.text.cues import other_period, periods

    assert periods("제 7 차 이사회 회의록") == {("차", "7")}
    assert periods("2030년 하반기 3분기 실적") == {("반기", "하"), ("분기", "3")}
    for text in ("1/4분기", "2차례 점검", "3차원 설계", "2차선 도로", "2030년"):  # no round, or a year
        assert periods(text) == frozenset(), text
    assert other_period(periods("8차 이사회 안건"), "제7차 이사회 회의록")
    assert not other_period(periods("7차 이사회 안건"), "제7차 이사회 회의록")
    assert not other_period(periods("3분기 매출"), "영업 보고")  # a title that names none says nothing


def test_an_amount_is_not_a_year_and_a_noun_of_sum_asks_for_one():
    assert not QUANTITY.search("2024년 현재 공장은 가동 중이다") and not QUANTITY.search("1990년대 초반")
    assert QUANTITY.search("3년간 120억 원을 들였다") and QUANTITY.search("점유율 35%")
    for question in ("본사의 올해 연구 예산은?", "작년 매출액은?", "신입 사원의 연봉은?", "부품 국산화율은?"):
        assert ASKS_NUMBER.search(question), question
    assert not ASKS_NUMBER.search("본사의 연구 방향은?")


def test_a_rate_per_day_is_no_date_and_a_verb_of_paying_asks_for_money():
    # "언제까지 내야 해?" is not answered by a penalty counted per day
    assert not DATE.search("지연 1일마다 대금의 0.1퍼센트를 더한다") and not DATE.search("1일당 2만 원")
    assert DATE.search("매월 25일에 지급한다") and DATE.search("신청일부터 7일 이내에")
    money = asked_unit("세미나 발표자한테는 얼마를 줘?")
    assert money is not None and money.search("1회 300,000원") and not money.search("외부 발표자 2명")
    assert asked_unit("하루 출장이면 얼마까지 받을 수 있어?") is not None
    for other in ("얼마 안에 답을 줘야 해?", "얼마나 걸려?", "비율은 얼마야?", "얼마에 한 번 점검해?"):
        assert asked_unit(other) is None, other
    # "얼마에" asks the price something sells or is bought for: a share of sales is no price
    price = asked_unit("중고 노트북은 얼마에 팔 수 있어?")
    assert price is not None and price.search("매입가는 450,000원이다") and not price.search("판매가 15.4% 늘었다")


def test_irregular_and_regular_verb_stems_are_keywords():
    assert "따라잡" in analyse("빠르게 따라잡는 중").terms
    assert "받" in analyse("타격을 받나").terms


def test_every_calibration_question_goes_through_every_stage(engine):
    """No question of the calibration set crashes analysis, retrieval, the decision or the answer."""
    questions = [json.loads(line) for line in (DATA / "korquad_questions.jsonl").read_text("utf-8").splitlines()]
    assert len(questions) > 2500
    pipeline = engine.pipeline()
    retriever, composer = pipeline.retriever, pipeline.composer
    # The encoder reads any text; one batch of real vectors stands in for all, to keep this fast.
    vectors = engine.embedder.embed_queries(questions[:32])
    for n, question in enumerate(questions):
        analysis = analyse(question)
        hits = retriever.search(analysis, k=6, query_vector=vectors[n % len(vectors)])
        answer = composer.compose(question, Question.read(analysis, retriever.stats), hits, analysis.language)
        assert answer.abstained or answer.citations


def test_a_complete_short_row_is_not_joined_to_the_next():
    text = "| 품목 | 가격 | 비고 |\n|---|---|---|\n| 사과 | 1000원 |\n| 배 | 2000원 | 할인 |\n| 귤 |\n500원 | 제철 |\n"
    doc = Document(source="t.md", text=text, sha256="x")
    rows = [c for c in chunk_document(doc, len, 256) if c.kind == "table_row"]
    assert [dict(c.cells).get("품목") for c in rows] == ["사과", "배", "귤"]
    assert dict(rows[2].cells) == {"품목": "귤", "가격": "500원", "비고": "제철"}  # truly broken: repaired


def test_model_probability_is_a_standardised_logistic():
    model = Model(("a", "b"), (1.0, 0.0), (2.0, 1.0), (1.0, -2.0), 0.5, threshold=0.4)
    z = 0.5 + 1.0 * (3.0 - 1.0) / 2.0 - 2.0 * 0.25
    assert model.probability({"a": 3.0, "b": 0.25}) == pytest.approx(1 / (1 + math.exp(-z)))


def test_a_broken_decision_file_is_a_clear_setting_error(tmp_path):
    bad = tmp_path / "decision.json"
    bad.write_text('{"format": 1, "selection": {}}', encoding="utf-8")
    with pytest.raises(BadSetting, match="aiqa calibrate"):
        load_decision(bad)
    assert load_decision().answer.threshold > 0  # the bundled one loads


def test_calibrate_fits_a_decision_the_engine_then_uses(engine, tmp_path, monkeypatch, capsys):
    from aiqa import cli

    labelled = tmp_path / "mine.jsonl"
    rows = [
        {"q": "중국 기업들이 국산 클러스터로 구현한 것은?", "gold": ["GPT-3.5 수준 모델 일부 구현"]},
        {"q": "미국 기업의 관세 피해는?", "gold": ["중국 매출 비중 높은 기업들 타격"]},
        {"q": "중국의 자원 전략은?", "gold": ["희토류"]},
        {"q": "관세 충격을 중국은 어떻게 흡수하나?", "gold": ["수입 대체 전략"]},
        {"q": "유럽의 AI 규제는?", "gold": [], "answerable": False},
        {"q": "사내 식당 메뉴는?", "gold": [], "answerable": False},
        {"q": "대만 반도체의 점유율은?", "gold": [], "answerable": False},
    ]
    labelled.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    out = tmp_path / "fitted.json"
    settings = engine.settings
    code = cli.main(["calibrate", str(labelled), "--index", str(settings.index_dir), "--out", str(out)])
    assert code == 0 and "AIQA_DECISION=" in capsys.readouterr().out
    fitted = load_decision(out)
    assert fitted.about["by"] == "aiqa calibrate" and 0 < fitted.answer.threshold < 1
    assert np.isfinite(fitted.selection.coef).all()


def test_one_failing_question_does_not_end_a_batch(engine, monkeypatch, capsys):
    import io

    from aiqa import cli
    from aiqa.answer import Composer

    original = Composer.compose

    def compose(self, question, asked, hits, language):
        if "고장" in question:
            raise KeyError("a fault inside one question")
        return original(self, question, asked, hits, language)

    monkeypatch.setattr(Composer, "compose", compose)
    monkeypatch.setattr("sys.stdin", io.StringIO("바이두가 만든 AI 모델은?\n고장 나는 질문\n중국의 희토류 전략은?\n"))
    code = cli.main(["ask", "-", "--json", "--index", str(engine.settings.index_dir)])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 1  # the batch says something failed ...
    assert [("error" in line) for line in lines] == [False, True, False]  # ... and answered the rest
    assert "internal error" in lines[1]["error"] and lines[2]["citations"]


def test_a_verb_never_passes_for_a_latin_name_it_sounds_like():
    # "다니" (다니면, "if you commute") sounds like "day"; a verb of the question is no name.
    question = analyse("버스로 다니면 한 달에 얼마를 줘?")
    assert "다니" in question.stems
    assert LatinNames({"day"}).normalize(sorted(question.terms), question.stems) == sorted(question.terms)
    assert LatinNames({"huawei"}).normalize(["화웨이"], question.stems) == ["huawei"]


def test_a_korean_word_is_no_latin_name_of_another_length():
    # "정리" (jongli) shares four letters with "only" (onli), but a spelling of a name is about as long as it
    assert LatinNames({"only"}).match("정리") is None
    assert LatinNames({"nvidia", "tencent"}).normalize(["엔비디아", "텐센트"]) == ["nvidia", "tencent"]


MINUTES = """# 2030년 제3차 시설관리위원회 회의록

## 안건
- 2030년 상반기 승강기 고장 신고 현황
- 주차장 조명 교체 계획

## 논의 내용
### 1. 상반기 고장 신고
- 시설팀장: 상반기에 들어온 승강기 고장 신고는 14건으로 작년 같은 기간(9건)보다 늘었다.
- 대부분은 출입문 센서 이상이었다.

### 2. 주차장 조명
- 지하 2층부터 LED 조명으로 바꾸기로 했다.
"""


def test_a_topic_line_is_no_answer_to_how_many_the_statement_it_names_is(tmp_path, cache_dir, fake_embedder):
    """An agenda item shares a count question's words and holds no count: the minutes' sentence that gives
    it comes first, and the item after it."""
    assert analyse("2030년 상반기 승강기 고장 신고 현황").bare and analyse("제13조(하도급의 제한)").bare
    for stated in ("중국은 국산 칩 개발에 집중", "대부분은 출입문 센서 이상이었다.", "당직이 어렵다고 인정되는 직원"):
        assert not analyse(stated).bare, stated
    assert not analyse("Quarterly safety report").bare
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "minutes.md").write_text(MINUTES, encoding="utf-8")
    pipeline = engine_over(report_index(tmp_path / "built", cache_dir, fake_embedder, folder), fake_embedder).pipeline()
    asked = Question.read(analyse("상반기 승강기 고장 신고 현황은 몇 건이야?"), pipeline.retriever.stats)
    ranked = pipeline.composer.ranked(asked, pipeline.retriever.search(asked.analysis, k=5))
    quotes = [c.quote for c in ranked]
    item = next(i for i, q in enumerate(quotes) if q.endswith("고장 신고 현황"))
    assert "14건" in quotes[0] and item > 0, quotes
