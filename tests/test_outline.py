"""The outline of office documents: articles, clauses, lettered items, section marks, named sections, fields."""

from __future__ import annotations

from aiqa.chunk import chunk_document
from aiqa.records import Chunk, Document
from aiqa.retrieve import passages, shown_tokens
from aiqa.text.cues import ASKS_LIST, ASKS_REASON, named_parts
from aiqa.text.layout import code_kinds, line_kind, split_lines
from aiqa.text.outline import family, heading_text, trailing_field

RULES = """사내 복무 규칙

       제1장 총칙
  제1조(목적) 이 규칙은 직원의 복무에 관한 사항을 정한다.
       제2장 근무
  제4조(재택근무) ① 직원은 주 1일 재택근무를 할 수 있다.
②재택근무일에는 오전 9시부터 오후 5시까지 연락이 되어야 한다.
  제5조(금지 행위) 직원은 다음 각 호의 행위를 하여서는 아니 된다.
1. 회사 자료를 개인 메일로 보내는 행위
2. 업무용 PC에 허가받지 않은 프로그램을 설치하는 행위
"""

PROPOSAL = """연구실 장비 교체안

작  성  자 :  연 구 지 원 팀

제안이유

  노후 장비의 고장이 잦아 실험 일정이 자주 늦어지고 있음.

주요내용

  가. 장비 교체
    - 5년이 지난 분석 장비를 올해 안에 바꾸도록 함.
  나. 예산
    - 교체 예산은 연구비에서 충당함.
"""


def chunks_of(text: str) -> list[Chunk]:
    return chunk_document(Document(source="t.txt", text=text, sha256="x"), lambda s: len(s.split()) + 1)


def families(text: str) -> dict[str, str | None]:
    lines = split_lines(text)
    kinds = code_kinds(lines, [line_kind(x.text) for x in lines])
    return {x.text.strip(): family(lines, kinds, i) for i, x in enumerate(lines) if kinds[i] != "blank"}


def test_articles_nest_under_their_chapter_and_clauses_and_items_under_their_article():
    found = {c.text.strip(): c for c in chunks_of(RULES)}
    article = found["제4조(재택근무) ① 직원은 주 1일 재택근무를 할 수 있다."]
    assert article.kind == "article"
    assert article.section == "제2장 근무 > 제4조(재택근무)"
    clause = found["②재택근무일에는 오전 9시부터 오후 5시까지 연락이 되어야 한다."]
    assert clause.section == "제2장 근무 > 제4조(재택근무)"
    item = found["2. 업무용 PC에 허가받지 않은 프로그램을 설치하는 행위"]
    assert item.section == "제2장 근무 > 제5조(금지 행위)"
    assert "제5조(금지 행위)" in item.context  # read alone, an item says which article it belongs to
    assert found["제1조(목적) 이 규칙은 직원의 복무에 관한 사항을 정한다."].section == "제1장 총칙 > 제1조(목적)"


def test_an_item_is_read_under_the_sentence_that_leads_into_its_list():
    """ "1. 서울특별시: 100,000원" alone does not say it is a night's hotel limit: the clause before it does.
    The clause after the list (②) and items of another section are read alone; the cited text is the item's."""
    text = """출장 규정

  제6조(숙박비) ① 숙박비는 1박당 다음 각 호의 금액을 한도로 지급한다.
1. 서울특별시: 100,000원
2. 그 밖의 지역: 80,000원
②한도를 넘는 금액은 출장자가 부담한다.

  제7조(일비) 일비는 1일 25,000원으로 한다.
- 근거리 출장은 일비를 절반만 지급한다.

확인할 것:
- 영수증 원본
- 출장 보고서
"""
    found = {c.text.strip(): c for c in chunks_of(text)}
    for item in ("1. 서울특별시: 100,000원", "2. 그 밖의 지역: 80,000원"):
        assert "숙박비는 1박당 다음 각 호의 금액을 한도로 지급한다." in found[item].context
        assert found[item].text.strip() == item
    assert "숙박비는 1박당" not in found["②한도를 넘는 금액은 출장자가 부담한다."].context
    assert "일비는 1일" not in found["- 근거리 출장은 일비를 절반만 지급한다."].context  # no lead-in there
    assert "확인할 것:" in found["- 출장 보고서"].context


def test_the_last_item_of_an_article_is_no_heading_of_the_next_chapter():
    marks = families(RULES + "       제3장 징계\n  제9조(징계) 징계는 견책과 감봉으로 한다.\n")
    assert marks["2. 업무용 PC에 허가받지 않은 프로그램을 설치하는 행위"] is None
    assert marks["제3장 징계"] == "장"


def test_named_sections_lettered_headings_and_fields_of_a_proposal():
    found = {c.text.strip(): c for c in chunks_of(PROPOSAL)}
    field = found["작  성  자 :  연 구 지 원 팀"]
    assert field.kind == "field" and field.statements  # a header field states who wrote it
    reason = next(c for c in found.values() if "노후 장비" in c.text)
    assert reason.section == "제안이유"
    item = found["- 5년이 지난 분석 장비를 올해 안에 바꾸도록 함."]
    assert item.section == "주요내용 > 가. 장비 교체"


def test_section_marks_steps_and_numbered_headings_head_what_follows():
    text = (
        "절차서\n\n1. 목적\n   비용을 줄이기 위한 것이다.\n\n"
        "【1단계】 요청          담당 : 요청자\n   ① 요청서를 쓴다.\n\n■ 검진 개요\n  ○ 기간 : 9월\n"
    )
    marks = families(text)
    assert marks["1. 목적"] == "1."
    assert marks["【1단계】 요청          담당 : 요청자"] == "【"
    assert marks["■ 검진 개요"] == "■"  # "개요" ends like a sentence ending but is a noun
    line = "【1단계】 요청          담당 : 요청자"
    assert heading_text(line) == "【1단계】 요청"
    a, b = trailing_field(line) or (0, 0)
    assert line[a:b] == "담당 : 요청자"
    step = next(c for c in chunks_of(text) if c.text.startswith("【1단계】"))
    assert [text[a:b] for a, b in step.statements] == ["담당 : 요청자"]  # who does the step is stated


def test_a_numbered_line_followed_by_its_sibling_is_an_item_not_a_heading():
    marks = families("목록\n\n1. 첫째 항목\n2. 둘째 항목\n")
    assert marks["1. 첫째 항목"] is None and marks["2. 둘째 항목"] is None


def test_rules_drawn_across_the_page_separate_and_a_bracketed_line_heads_a_group():
    text = "FAQ\n\n-----------\n[계정 관리]\n-----------\n\nQ. 비밀번호를 잊었어요.\nA. 포털에서 다시 설정합니다.\n"
    faq = next(c for c in chunks_of(text) if c.text.startswith("Q."))
    assert faq.section == "[계정 관리]"
    assert all("---" not in c.text for c in chunks_of(text))


def test_named_parts_and_question_forms():
    assert named_parts("취업규칙 제12조는 무슨 내용이야?") == {"12조"}
    assert named_parts("3단계에서는 뭘 해?") == {"3단계"}
    assert named_parts("제2장 근무 > 제12조(연차휴가)") == {"2장", "12조"}
    assert ASKS_REASON.search("왜 바꾸려는 거야?") and ASKS_REASON.search("Why was it changed?")
    assert ASKS_LIST.search("지켜야 할 의무에는 어떤 것들이 있어?") and not ASKS_LIST.search("언제 시작해?")


def test_passages_group_the_units_of_a_section_within_a_budget():
    chunks = chunks_of(RULES)
    groups = passages(chunks, budget=40)
    flat = [i for g in groups for i in g]
    assert flat == list(range(len(chunks)))  # every unit in exactly one passage, in order
    for g in groups:
        assert len({chunks[i].section for i in g}) == 1
        assert len(g) == 1 or sum(shown_tokens(chunks[i]) for i in g) <= 40
    article = next(g for g in groups if chunks[g[0]].text.strip().startswith("제4조"))
    assert any(chunks[i].text.startswith("②") for i in article)  # the clause sits with its article


LONG_RULES = (
    "주식회사 가온테크놀로지 국내외 출장 여비 지급 및 정산에 관한 규정\n\n"
    "       제2장 국내출장 및 근거리 출장의 여비\n"
    "  제7조(교통비 및 택시 이용의 기준) ① 교통비는 다음 각 호의 기준에 따라 실비를 지급한다.\n"
    + "".join(
        f"{n}. {way}: {seat}\n"
        for n, (way, seat) in enumerate(
            [("철도", "고속열차 일반실"), ("항공", "국내선 일반석"), ("버스", "고속버스 우등석")], start=1
        )
    )
    + "②자가용 차량은 1킬로미터당 250원을 지급한다.\n"
    "③택시는 오후 11시부터 다음 날 오전 5시까지 이동하는 경우에 한하여 이용할 수 있다.\n"
)


def test_a_passage_budgets_the_text_it_shows_not_the_label_each_unit_is_embedded_with():
    # Every unit of the article is embedded under the document's long title and the section path (and an
    # item under the sentence leading into its list): counted with that, six short lines would fill three
    # passages. A passage shows the article's own text once, and the whole article is far inside the budget.
    chunks = chunks_of(LONG_RULES)
    article = [i for i, c in enumerate(chunks) if "제7조" in c.section]
    assert len(article) >= 6 and sum(chunks[i].tokens for i in article) > 100
    assert sum(shown_tokens(chunks[i]) for i in article) <= 100
    assert [g for g in passages(chunks, budget=100) if g[0] in article] == [article]


def test_teams_bodies_and_roles_answer_who():
    from aiqa.text.cues import roles

    assert roles("작성자: 인사팀") == {"인사팀"}
    assert roles("징계는 인사위원회의 의결을 거쳐 대표이사가 한다.") == {"인사위원회", "대표이사"}
    assert roles("주차장에 차를 댄다") == frozenset()  # a place, not a role
    # team names with digits and Latin letters, whole; a count of teams is none
    assert roles("영업2팀과 SI사업팀이 맡는다") == {"영업2팀", "si사업팀"}
    assert roles("총 3팀이 참가했다") == frozenset()


HANDOUT = """■ 이럴 땐 어떻게?

  ▶ 택배 기사가 고객 주소를 물어봐요.
     → 주소는 알려 주지 않습니다. 고객에게 직접 연락하도록 안내합니다.
  ▶ 출력물을 회의실에 두고 나왔어요.
     → 바로 회수하고 보안 담당(내선 2200)에 알립니다.

→ 위 사례는 매년 바뀝니다.
"""


def test_a_reply_indented_under_an_item_is_one_statement_with_it():
    """A situation and the reply indented under it ("▶ …해요." / "→ …합니다.") are one unit and one statement,
    cited without their marks; a line with an arrow that answers no item stands alone."""
    chunks = chunks_of(HANDOUT)
    pair = next(c for c in chunks if "택배 기사" in c.text)
    (statement,) = [HANDOUT[a:b] for a, b in pair.statements]
    assert statement.startswith("택배 기사가 고객 주소를 물어봐요.")
    assert statement.endswith("고객에게 직접 연락하도록 안내합니다.")
    assert "출력물" not in pair.text  # the next situation is a unit of its own
    alone = next(c for c in chunks if "매년 바뀝니다" in c.text)
    assert [HANDOUT[a:b] for a, b in alone.statements] == ["위 사례는 매년 바뀝니다."]


AMENDMENT = """회의실 예약 규정 일부개정안

1. 개정 이유

  예약해 두고 쓰지 않는 회의실을 줄이려는 것임.

2. 신ㆍ구조문대비표

현      행
개   정   안
제4조(예약 단위) 회의실은 1시간 단위로 예약하며 하루에 4시간을 넘을 수 없다.
제4조(예약 단위) 회의실은 30분 단위로 예약하며 ----------------------------.
제6조(취소) 예약을 취소하려는 사람은 사용 시작 전까지 취소한다.
② (생  략)
제6조(취소) -------------------------- 사용 시작 2시간 전까지 -----------------------.
② (현행과 같음)
<신  설>
제7조(미사용 신고) ① 예약한 시간이 시작되고 15분이 지나도록 쓰지 않은 회의실은 예약이 풀린다.

3. 시행일

  2031년 4월 1일부터 시행함. 제4조(예약 단위)의 개정 규정은 5월 1일부터 시행함.
"""


def test_a_comparison_tables_articles_are_labelled_with_their_side():
    """A flattened 신·구조문대비표: each article comes as it reads, then as amended; one after "<신설>" is new.
    The label is the section's, so a unit read alone says which side it is; the quoted text stays as written."""
    chunks = chunks_of(AMENDMENT)
    sections = [(c.section.split(" > ")[-1], c.text[:16]) for c in chunks if "조(" in c.section.split(" > ")[-1]]
    assert sections == [
        ("현행 제4조(예약 단위)", "제4조(예약 단위) 회의실은 "),
        ("개정안 제4조(예약 단위)", "제4조(예약 단위) 회의실은 "),
        ("현행 제6조(취소)", "제6조(취소) 예약을 취소하려"),
        ("현행 제6조(취소)", "② (생  략)"),
        ("개정안 제6조(취소)", "제6조(취소) --------"),
        ("개정안 제6조(취소)", "② (현행과 같음)"),
        ("개정안 제6조(취소)", "<신  설>"),
        ("개정안 제7조(미사용 신고)", "제7조(미사용 신고) ① 예약"),
    ], sections
    assert sum("> 개정안 제4조(예약 단위)] 제4조(예약 단위) 회의실은 30분" in c.context for c in chunks) == 1
    # past the table an article is named as anywhere else
    after = chunks_of(AMENDMENT + "\n4. 부칙\n\n제9조(경과조치) 이 규정 시행 전의 예약은 종전의 규정에 따른다.\n")
    assert [c.section.split(" > ")[-1] for c in after if c.text.startswith("제9조")] == ["제9조(경과조치)"]
