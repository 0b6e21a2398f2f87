"""The structure-aware chunker on the bundled report and on generated text."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from aiqa.chunk import chunk_document
from aiqa.ingest import read_document
from aiqa.records import Document
from aiqa.text.layout import RULE, short_section, split_cells, split_lines
from aiqa.text.tokens import count_tokens

from .conftest import CORPUS, REPORT


def report_chunks():
    doc = read_document(REPORT, CORPUS, max_bytes=10**7)
    return doc, chunk_document(doc, count_tokens, 256)


def test_report_tables_keep_headers_and_the_broken_row_is_repaired():
    doc, chunks = report_chunks()
    rows = [c for c in chunks if c.kind == "table_row"]
    assert len(rows) == 12  # 4 + 3 + 5 rows in the report's three tables
    chip = next(c for c in rows if c.cells[0][1] == "AI 반도체")
    assert chip.context.startswith(
        "[AI 패권 경쟁, 미국은 지키고 중국은 쫓는다 > 현재 기술 수준] 항목: AI 반도체 | 미국: NVIDIA A100"
    )
    assert [h for h, _ in chip.cells] == ["항목", "미국", "중국", "평가"]
    software = next(c for c in rows if c.cells[0][1] == "소프트웨어 생태계")
    assert dict(software.cells)["미국"] == "PyTorch, TensorFlow, CUDA 등 글로벌 표준"
    assert dict(software.cells)["평가"] == "미국이 여전히 중심, 중국은 독립 생태계 구축 중"
    assert software.locator == "lines 7-8, table 1, row 3"
    assert software.text == doc.text[software.start : software.end]
    assert "\n" in software.text  # the span covers both source lines


def test_report_sections_bullets_and_glued_items():
    _, chunks = report_chunks()
    assert chunks[0].kind == "title" and chunks[0].section == "AI 패권 경쟁, 미국은 지키고 중국은 쫓는다"
    assert chunks[0].text.startswith("AI 패권 경쟁") and "2025년 현재" in chunks[0].text  # title + its lead
    sections = {c.section for c in chunks}
    assert "5️⃣ 중장기 분석" in sections
    assert "✅ 기술은 미국, 체력은 중국" in sections  # a callout heading the prose after it
    glued = [c for c in chunks if "천인계획 :" in c.text or "사이버 기술 유출" in c.text]
    assert len(glued) == 2 and glued[0].locator == glued[1].locator == "line 26"
    assert glued[1].text.startswith("- 💻 사이버 기술 유출")
    assert not glued[0].text.rstrip().endswith("-")
    tariffs = [c for c in chunks if c.kind == "table_row" and c.section.startswith("3️⃣")]
    assert all(
        c.context.startswith("[AI 패권 경쟁, 미국은 지키고 중국은 쫓는다 > 트럼프 2기 관세정책이 불러올 영향] 구분:")
        for c in tariffs
    )


def test_every_chunk_is_within_the_model_limit_and_quotes_its_source():
    doc, chunks = report_chunks()
    for c in chunks:
        assert c.text == doc.text[c.start : c.end]
        assert 0 < c.tokens <= 256


def covered(doc: Document, chunks) -> bool:
    """Every character lands in a chunk but whitespace and rules drawn across the page ("-----")."""
    mask = [False] * len(doc.text)
    for line in split_lines(doc.text):
        if RULE.match(line.text):
            mask[line.start : line.end] = [True] * (line.end - line.start)
    for c in chunks:
        assert c.text == doc.text[c.start : c.end]
        for i in range(c.start, c.end):
            mask[i] = True
    return all(mask[i] or ch.isspace() for i, ch in enumerate(doc.text))


def test_report_coverage():
    doc, chunks = report_chunks()
    assert covered(doc, chunks)


LINE = st.one_of(
    st.text(
        alphabet=st.characters(
            blacklist_categories=("Cs",), blacklist_characters="\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029\n"
        ),
        max_size=80,
    ),
    st.sampled_from(
        [
            "# 제목",
            "1️⃣ 섹션 – 부제",
            "- 항목 하나,",
            "🔍 요약",
            "a | b | c |",
            "x |",
            "|---|---|",
            "문장입니다. 다음 문장.",
        ]
    ),
    st.builds(
        lambda w: " ".join(w),
        st.lists(st.sampled_from(["가나다", "word", "1.5", "|", "-", "💻", "다."]), max_size=300),
    ),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(LINE, max_size=25))
def test_every_non_blank_character_lands_in_a_chunk(lines):
    text = "\n".join(lines)
    doc = Document(source="t.txt", text=text, sha256="x")
    chunks = chunk_document(doc, lambda s: len(s.split()) + 1, max_tokens=40)
    assert covered(doc, chunks)
    assert all(c.tokens <= 40 or len(c.text.split()) <= 2 for c in chunks)


def test_helpers():
    assert split_cells("| a | b |") == ["a", "b"]
    assert split_cells("소프트웨어 생태계 |") == ["소프트웨어 생태계"]
    assert short_section("1️⃣ 현재 기술 수준 – 미국 우세지만 격차는 좁혀진다") == "현재 기술 수준"
    assert short_section("## Results: overview") == "Results"


def test_a_numbered_markdown_heading_is_not_cited_as_a_statement():
    # "## 2. Requests" once split at "2." into a sentence of its own and "Requests", which then passed
    # for a statement and was chosen as the answer to questions about its section.
    text = (
        "# Travel rules\n\n## 2. 출장 신청\n출장자는 출발 5영업일 전까지 신청서를 제출한다.\n\n"
        "## 3. Requests\nSend it to HR.\n"
    )
    doc = Document(source="rules.md", text=text, sha256="x")
    cited = [text[a:b] for c in chunk_document(doc, count_tokens) for a, b in c.statements]
    assert cited == ["출장자는 출발 5영업일 전까지 신청서를 제출한다.", "Send it to HR."]


def test_a_faq_question_and_its_answer_are_one_unit_and_a_list_mark_no_sentence():
    text = (
        "Q. 계정이 잠기면 어떻게 하나요?\nA. 30분 동안 잠깁니다. 급하면 전화하세요.\n"
        "Q: How big is the mailbox?\nA: 50 GB.\n\n1. 신청서를 낸다. 2. 승인을 받는다.\n"
    )
    doc = Document(source="faq.txt", text=text, sha256="x")
    chunks = chunk_document(doc, count_tokens)
    cited = [text[a:b] for c in chunks for a, b in c.statements]
    assert cited[:2] == [
        "계정이 잠기면 어떻게 하나요?\nA. 30분 동안 잠깁니다. 급하면 전화하세요.",
        "How big is the mailbox?\nA: 50 GB.",
    ]
    assert "1." not in cited and "신청서를 낸다. 2." not in cited
    assert sum(1 for c in chunks if "계정이 잠기면" in c.text and "30분" in c.text) == 1


def test_a_short_line_alone_before_text_is_a_plain_heading_and_labels_its_section():
    text = "사내 IT 안내\n\n메일\nQ. 메일함 용량은?\nA. 50GB입니다.\n\n원격 근무\n집에서는 VPN으로 접속합니다.\n"
    doc = Document(source="faq.txt", text=text, sha256="x")
    chunks = chunk_document(doc, count_tokens)
    cited = [text[a:b] for c in chunks for a, b in c.statements]
    assert "메일" not in cited and "원격 근무" not in cited
    assert cited == ["메일함 용량은?\nA. 50GB입니다.", "집에서는 VPN으로 접속합니다."]
    sections = {c.section for c in chunks if c.statements}
    assert any("메일" in s for s in sections) and any("원격 근무" in s for s in sections)


def test_an_official_letter_is_titled_by_its_subject_field_not_its_sender_header():
    text = (
        "새봄테크 내부결재 문서                       총무-2028-031\n\n"
        "기안자: 총무팀 대리 김하나\n제목: 본사 주차장 운영 개선(안)\n\n"
        "제안이유\n\n주차면이 모자라 예약제로 바꾸려는 것임.\n"
    )
    chunks = chunk_document(Document(source="기안.txt", text=text, sha256="x"), count_tokens)
    assert chunks[0].kind == "title" and not chunks[0].statements  # the sender's header states nothing
    field = next(c for c in chunks if c.kind == "field" and "김하나" in c.text)
    assert field.context.startswith("[본사 주차장 운영 개선(안)]"), field.context
    assert chunks[0].section == "본사 주차장 운영 개선(안)"
