"""Re-flowing text as a PDF extraction leaves it: wrapped lines, page furniture, letter-spacing."""

from __future__ import annotations

import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiqa.text.reflow import Reflowed, join_rule, kiwi_spaces, looks_extracted, reflow, reflow_if_extracted

from .pdflike import DATA, hard_wrap, paragraphs, squash
from .realfiles import korean_font

ARTICLE = (DATA / "article.txt").read_text(encoding="utf-8")
PROPOSAL = (DATA / "proposal.txt").read_text(encoding="utf-8")
MANUAL = (DATA / "manual.md").read_text(encoding="utf-8")
HEADER = "솔바람도 향토 자료집 제3권"
SLOW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def lines_of(text: str) -> list[str]:
    return [line.strip() for line in text.split("\n") if line.strip()]


def assert_maps_back(r: Reflowed) -> None:
    """Every character of the re-flowed text is the source's character at its mapped offset."""
    for i, char in enumerate(r.text):
        if not char.isspace():
            assert r.source[r.source_offset(i)] == char, (i, char)


def spacing_errors(written: str, reflowed: str) -> int:
    """Places where two texts with the same characters differ in whether a space stands there."""

    def gaps(text: str) -> set[int]:
        out, seen = set(), 0
        for char in text:
            if char.isspace():
                out.add(seen)
            else:
                seen += 1
        return out

    assert squash(written) == squash(reflowed)
    return len(gaps(written) ^ gaps(reflowed))


def test_a_wrapped_article_reads_as_its_paragraphs():
    wrapped = hard_wrap(ARTICLE, width=37, page_lines=12, header=HEADER)
    assert looks_extracted(wrapped)
    r = reflow_if_extracted(wrapped)
    # The running header stays once, where it first stands; its repeats and the page numbers go.
    assert [squash(p) for p in paragraphs(r.text)] == [squash(HEADER), *map(squash, paragraphs(ARTICLE))]
    assert "- 1 -" not in r.text and r.text.count(HEADER) == 1
    kinds = [f.kind for f in r.furniture]
    assert kinds.count("page-number") == wrapped.count(" -\n") and "running-header" in kinds
    assert all(r.source[f.start : f.end] == f.text for f in r.furniture)
    # Each paragraph is one line again, and its spaces are (nearly all) where the writer put them.
    written, flowed = paragraphs(ARTICLE), paragraphs(r.text)[1:]
    assert all("\n" not in p for p in flowed)
    breaks = wrapped.count("\n")
    assert sum(spacing_errors(a, b) for a, b in zip(written, flowed, strict=True)) <= 0.1 * breaks
    assert_maps_back(r)


@SLOW
@given(width=st.integers(24, 60), page_lines=st.integers(4, 30))
def test_any_wrap_width_and_page_length_comes_back_to_the_paragraphs(width, page_lines):
    r = reflow_if_extracted(hard_wrap(ARTICLE, width=width, page_lines=page_lines, header=HEADER))
    flowed = [squash(p) for p in paragraphs(r.text)]
    assert flowed[0] == squash(HEADER)
    # No paragraph runs into the next; one may be parted where a page ends with a sentence on a
    # full line, for then nothing tells whether the paragraph goes on.
    k = 1
    for paragraph in map(squash, paragraphs(ARTICLE)):
        pieces = ""
        while pieces != paragraph:
            assert paragraph.startswith(pieces + flowed[k]), (paragraph, flowed[k])
            pieces, k = pieces + flowed[k], k + 1
    assert k == len(flowed)
    assert_maps_back(r)


def test_a_quote_of_the_reflowed_text_maps_back_to_its_source_span():
    wrapped = hard_wrap(ARTICLE, width=37, page_lines=12, header=HEADER)
    r = reflow(wrapped)
    quote = "공사에는 섬 주민 40여 명이 참여했는데, 배로 실어 온 화강암을 손수레로 언덕 위까지 나르는 데만 넉 달이"
    quote += " 걸렸다고 전한다."
    start = r.text.index(quote)
    a, b = r.source_span(start, start + len(quote))
    assert "\n" in wrapped[a:b]  # it was wrapped in the source, and across a page break
    dropped = "".join(f.text for f in r.furniture if a <= f.start < b)
    assert dropped and squash(wrapped[a:b]) == squash(quote).replace("넉달", "넉달" + squash(dropped))
    # A quote across a page break maps to a span that holds the furniture between, and only that.
    across = r.text.index("철수하였다.")
    a, b = r.source_span(across, across + len("철수하였다.\n\n현재 등대"))
    furniture = [f for f in r.furniture if a <= f.start < b]
    assert squash(wrapped[a:b]) == squash("철수하였다.현재등대" + "".join(f.text for f in furniture))


SENTENCES = [s for p in paragraphs(ARTICLE)[1:] for s in p.replace("다. ", "다.\n").split("\n")]


@SLOW
@given(st.lists(st.lists(st.sampled_from(SENTENCES), min_size=1, max_size=6), min_size=1, max_size=8), st.booleans())
def test_clean_prose_comes_back_byte_identical(paras, title):
    text = ("솔바람_등대\n\n" if title else "") + "\n\n".join(" ".join(p) for p in paras) + "\n"
    assert not looks_extracted(text)
    assert reflow_if_extracted(text).text == text


@SLOW
@given(st.text(alphabet="가나다 작성자인사팀.,:-|①1234567890\n\t제조장()ABab", max_size=600))
def test_any_text_reflows_without_losing_or_changing_a_character_but_furniture(text):
    r = reflow(text)
    assert_maps_back(r)
    kept = list(r.text)
    offsets = [r.source_offset(i) for i, c in enumerate(kept) if not c.isspace()]
    assert offsets == sorted(set(offsets))  # in order, each source character at most once
    dropped = {i for f in r.furniture for i in range(f.start, f.end)}
    assert {i for i, c in enumerate(text) if not c.isspace()} - dropped == set(offsets)


def test_clean_article_and_markdown_are_left_alone():
    for text in (ARTICLE, MANUAL, hard_wrap(MANUAL, width=30, page_lines=100)):
        assert not looks_extracted(text)
        assert reflow_if_extracted(text).text is text


def test_a_proposal_keeps_its_structure_and_reads_its_header_fields():
    wrapped = hard_wrap(PROPOSAL, width=37, page_lines=14, header="총무팀 기안 문서")
    r = reflow_if_extracted(wrapped)
    out = lines_of(r.text)
    assert "작성자: 총무팀" in out and "결재권자: 경영지원본부장" in out
    assert any(line.startswith("문서번호") and line.endswith("GA-2027-031") for line in out)
    # Every item, clause and table row of the written text is one line again, whole.
    for line in lines_of(PROPOSAL):
        if line.startswith(("가.", "나.", "다.", "라.", "구분", "물품", "정산", "1.", "2.", "3.", "4.", "붙임")):
            assert line in out, line
    assert not any(line.startswith("- ") and line.endswith(" -") for line in out)
    assert len(r.pages) == wrapped.count(" -\n")
    assert_maps_back(r)


def test_letter_spacing_is_undone_only_in_short_header_lines():
    r = reflow(
        "작  성  자 :  인  사  팀\n문 서 번 호\n그 중 한 명이 먼저 왔다\n기  안  자 :  총  무  팀         2027. 5. 3.\n"
        "제      목 :  본사 주차장 운영 개선(안)\n"
    )
    assert lines_of(r.text) == [
        "작성자: 인사팀",
        "문서번호",
        "그 중 한 명이 먼저 왔다",
        "기안자: 총무팀         2027. 5. 3.",
        "제목:  본사 주차장 운영 개선(안)",  # a two-syllable label spread over its column
    ]
    assert_maps_back(r)


def test_lines_that_start_a_unit_are_never_joined_to_the_one_before():
    body = "이 규정은 회사의 모든 직원에게 적용하며 세부 사항은 따로 정하는 바에"
    marks = [
        "가. 첫째 항목",
        "① 둘째 항",
        "○ 안내 사항",
        "■ 일정",
        "- 준비물",
        "Q. 언제 하나요?",
        "제3조(정의) 용어",
        "| 구분 | 값 |",
    ]
    text = "\n".join(f"{body}\n{mark}" for mark in marks) * 2 + "\n"
    assert lines_of(reflow(text).text) == lines_of(text)
    code = "```\n" + f"{body}\n다음 줄\n" * 3 + "```\n" + f"{body}\n이어지는 말이다.\n" * 3
    r = reflow(code)
    assert r.text.startswith("```\n" + f"{body}\n다음 줄\n")  # a code block stays as written
    assert f"{body} 이어지는 말이다." in r.text


def test_a_list_letter_counts_only_in_its_turn():
    # "다." after a wrap that cut "지켰다." is no item 다. when no 나. came before it.
    text = ("그해 겨울에도 등대지기 세 가족이 섬에 머물며 교대로 불을 지켰\n다. 그리고 봄이 왔다.\n\n") * 4
    assert "지켰다. 그리고" in reflow(text).text


def test_dashes_of_a_flattened_table_and_rules_are_dropped_as_furniture():
    text = "구분 현행 개정안\n- - - - - -\n지급 기준 월 1회 월 2회\n-\n━━━━━━━━━━\n끝.\n"
    r = reflow(text)
    assert lines_of(r.text) == ["구분 현행 개정안", "지급 기준 월 1회 월 2회", "끝."]
    assert [f.kind for f in r.furniture] == ["rule", "rule", "rule"]


def test_the_characters_at_a_break_or_kiwi_place_the_space():
    assert join_rule("기간은 20", "일이다") is False
    assert join_rule("사과, 배,", "감") is True
    assert join_rule("높이는 1.", "2미터") is False
    assert join_rule("the quick", "brown") is True
    assert join_rule("그는 Wor", "ldwide 협회") is None
    assert join_rule("하였으", "나") is None
    # Kiwi: a word cut in two joins without a space, a break between words gets one back.
    assert kiwi_spaces(
        [
            ("전시관은 매주 월요일에 쉬고 나머지 날에는 문을 여", "는데 입장료는 없다"),
            ("등대지기는 밤새 두 시간마다 렌즈를", "닦고 기름을 보충했다"),
        ]
    ) == [False, True]


def test_pages_of_a_text_are_where_its_page_numbers_end_them():
    wrapped = hard_wrap(ARTICLE, width=37, page_lines=12, header=HEADER)
    r = reflow(wrapped)
    assert len(r.pages) == wrapped.count(" -\n")
    second = r.text.index("현재 등대 1층은")
    assert r.pages[0] == 0 and r.pages[1] <= second < (r.pages[2] if len(r.pages) > 2 else len(r.text))


def article_pdf() -> bytes:
    """The article as a PDF: a running header on every page, "- N -" at each page's foot."""
    from fpdf import FPDF

    class Paged(FPDF):
        def header(self):
            self.cell(0, 8, HEADER, new_x="LMARGIN", new_y="NEXT")
            self.ln(4)

        def footer(self):
            self.set_y(-15)
            self.cell(0, 8, f"- {self.page_no()} -", align="C")

    doc = Paged()
    doc.add_font("korean", fname=str(korean_font()))
    doc.set_font("korean", size=11)
    doc.add_page()
    for paragraph in paragraphs(ARTICLE)[1:] * 3:
        doc.multi_cell(120, 7, paragraph, new_x="LMARGIN", new_y="NEXT")
        doc.ln(3)
    return bytes(doc.output())


@pytest.mark.skipif(korean_font() is None, reason="no Hangul font installed for fpdf2")
def test_a_pdf_with_running_header_and_page_numbers_reads_back_as_paragraphs():
    from pypdf import PdfReader

    texts = [page.extract_text() for page in PdfReader(io.BytesIO(article_pdf())).pages]
    pages = tuple(sum(len(t) + 2 for t in texts[:n]) for n in range(len(texts)))
    r = reflow("\n\n".join(texts), pages)
    out = [squash(line) for line in r.text.split("\n")]
    for paragraph in paragraphs(ARTICLE)[1:]:
        assert squash(paragraph) in out, paragraph[:20]
    assert sum(f.kind == "page-number" for f in r.furniture) == len(pages) > 1
    assert len(r.pages) == len(pages) and r.text.count(HEADER) == 1
    assert_maps_back(r)


def test_the_readers_reflow_pdf_text_and_pdf_like_txt_and_leave_the_rest():
    from aiqa.chunk import chunk_document
    from aiqa.ingest import pdf, text
    from aiqa.records import Document

    wrapped = hard_wrap(ARTICLE, width=37, page_lines=12, header=HEADER)
    parsed = text.read(wrapped.encode())
    assert "- 1 -" not in parsed.text and len(parsed.pages) == wrapped.count(" -\n")
    # Units are the writer's sentences again, not the page's lines.
    chunks = chunk_document(Document("a.txt", parsed.text, "", parsed.pages), lambda t: len(t.split()))
    sentences = {squash(s) for s in SENTENCES}
    spans = [squash(parsed.text[a:b]) for c in chunks for a, b in c.statements]
    assert sentences <= set(spans)
    assert text.read(ARTICLE.encode()).text == ARTICLE and text.read(MANUAL.encode()).text == MANUAL
    if korean_font() is not None:
        read = pdf.read(article_pdf())
        assert "- 1 -" not in read.text and read.text.count(HEADER) == 1
        assert all(squash(p) in {squash(line) for line in read.text.split("\n")} for p in paragraphs(ARTICLE)[1:])


# A text wrapped by characters, not by width (Latin words and digits are narrower than Hangul): lines that
# break inside a word or hang under a list item are shorter than the wrap width says a full line is.
BY_CHARACTERS = """사내 빌드 서버 운영 안내

1. 구성
  빌드 서버는 아래 두 부분으로 이루어진다. 빌드 요청은 먼저
  대기열에 쌓이고 차례로 실행되어 결과는 사내 저장소에 보관된다.
  1) 작업자(build-worker): 각 서버에서 요청을
     받아 빌드한다. 한 대가 동시에 최대 4개까지 처리한다.
  2) 저장소(artifacts): 빌드 결과는 30
     일 동안 보관하고 그 뒤에 지운다.
  빌드 결과는 사내 저장소(repo.example/builds)에서 내려받는다. 서
  버에 직접 접속하지 말고 저장소 화면에서 받는다. 빌드가 실패하면
  담당자에게 메일이 간다. 실패한 빌드의 기록은 저장소에서 볼 수 있다.
"""


def test_a_list_items_hanging_lines_and_a_word_cut_at_a_break_are_joined():
    out = reflow(BY_CHARACTERS)
    text = out.text
    assert "1) 작업자(build-worker): 각 서버에서 요청을 받아 빌드한다." in text
    assert "빌드 결과는 30일 동안 보관하고" in text  # a number and its unit cut apart
    assert "저장소(repo.example/builds)에서 내려받는다. 서버에 직접 접속하지" in text  # a word cut apart
    assert "\n  2) 저장소(artifacts)" in text  # the next item still starts a line
    assert_maps_back(out)


# A notice hard-wrapped at its page's width (forty syllables) whose comparison table was flattened one
# side after the other into a column half as wide, and one whose list of contacts lines up in short lines.
def wrapped_at(text: str, size: int = 40) -> str:
    return "\n".join(text[i : i + size] for i in range(0, len(text), size))


BODY = wrapped_at(
    "회의실 예약 규정을 다음과 같이 고칩니다. "
    "지금은 회의실을 한 시간 단위로만 예약할 수 있어 삼십 분 회의에도 한 시간이 묶이고, "
    "예약해 두고 쓰지 않는 회의실이 많아 정작 급한 회의는 자리를 찾지 못하는 일이 잦습니다. "
    "그래서 예약 단위를 삼십 분으로 줄이고 취소 기한을 새로 정하며, "
    "시작하고 십오 분이 지나도록 쓰지 않은 회의실은 예약이 저절로 풀리게 하려고 합니다. "
    "바뀐 조문은 아래 대비표와 같으며, "
    "사월 첫날부터 시행합니다. "
    "궁금한 점은 총무팀 시설 담당에게 물어 주시기 바랍니다."
)
NARROW_TABLE = f"""사 내 공 지

작  성  자 :  총  무  팀

{BODY}

현      행
개   정   안
제4조(예약 단위) 회의실은 1시간 단위로 예
약하며 하루에 4시간을 넘을 수 없다.
제4조(예약 단위) 회의실은 30분 단위로 예
약하며 ----------------------------.
제6조(취소) 예약을 취소하려는 사람은 사용
시작 전까지 예약 시스템에서 취소한다.
제6조(취소) -------------------------- 사용
시작 2시간 전까지 -----------------------.
<신  설>
제7조(미사용 신고) ① 예약한 시간이 시작되고
15분이 지나도록 쓰지 않은 회의실은 예약이 풀
린다.
"""
CONTACTS = f"""사 내 공 지

작  성  자 :  총  무  팀

{BODY}

본관 1층 로비와 안내 데스크 김하늘
본관 2층 회의실과 휴게실 박서준
본관 3층 사무실 구역 이도윤
본관 4층 교육장 최유나
별관 1층 주차 관리실 정민재
별관 2층 창고와 자료실 한지민
별관 3층 서버실 오세훈
별관 4층 옥상 정원 윤채원
"""


def test_a_block_wrapped_narrower_than_its_page_is_reflowed_at_its_own_width():
    """Lines of a column half the page wide are joined where the column broke them, words cut apart
    included; a block of short lines that only line up (no word cut at any break) stays as written."""
    out = reflow_if_extracted(NARROW_TABLE)
    text = out.text
    assert "제4조(예약 단위) 회의실은 1시간 단위로 예약하며 하루에 4시간을 넘을 수 없다." in text
    assert "제6조(취소) -------------------------- 사용 시작 2시간 전까지" in text
    assert "① 예약한 시간이 시작되고 15분이 지나도록 쓰지 않은 회의실은 예약이 풀린다." in text
    assert "\n제4조(예약 단위) 회의실은 30분" in text and "\n<신  설>\n" in text  # units still start lines
    assert "물어 주시기 바랍니다." in text and "자리를 찾지 못하는" in text  # the page's own wrap as before
    assert_maps_back(out)
    # a page written a paragraph a line (no wrap of its own) reads its narrow table the same way
    unwrapped = reflow_if_extracted(NARROW_TABLE.replace(BODY, BODY.replace("\n", ""))).text
    assert "제6조(취소) -------------------------- 사용 시작 2시간 전까지" in unwrapped
    contacts = reflow_if_extracted(CONTACTS).text
    assert "\n본관 1층 로비와 안내 데스크 김하늘\n본관 2층" in contacts and "\n별관 4층 옥상 정원 윤채원" in contacts
