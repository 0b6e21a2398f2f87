"""Real files of every supported format through read_document: the text, its layout, the refusals."""

from __future__ import annotations

import codecs
import io
import random
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiqa.errors import UnreadableDocument
from aiqa.ingest import html as html_reader
from aiqa.ingest import read_document
from aiqa.records import Document

from .realfiles import korean_font

MAX_BYTES = 10_000_000
KOREAN = "연차 휴가는 입사 1년 후 15일이 주어지며, 사용하지 않은 휴가는 다음 해로 이월할 수 없습니다."


def read(path: Path, max_bytes: int = MAX_BYTES) -> Document:
    return read_document(path, path.parent, max_bytes=max_bytes)


def refused(path: Path, max_bytes: int = MAX_BYTES) -> str:
    with pytest.raises(UnreadableDocument) as info:
        read(path, max_bytes)
    return str(info.value)


def make_pdf(path: Path, pages: list[str]) -> None:
    from fpdf import FPDF  # the writers are imported where used: collection stays light

    pdf = FPDF()
    font = korean_font()
    if font:
        pdf.add_font("korean", fname=str(font))
        pdf.set_font("korean", size=12)
    else:
        pdf.set_font("Helvetica", size=12)
    for text in pages:
        pdf.add_page()
        if text:
            pdf.multi_cell(0, 10, text)
        else:
            pdf.rect(20, 20, 50, 50)  # drawn, but no text
    pdf.output(str(path))


# Korean when the machine has a Hangul font; fpdf2's built-in fonts are Latin-1 only.
PDF_PAGES = (
    ["제1장 연차 휴가는 15일입니다.", "제2장 출장비는 월말에 정산합니다.", "", "제4장 보안 서약서"]
    if korean_font()
    else ["Chapter one: annual leave is 15 days.", "Chapter two: travel costs are settled monthly.", "",
          "Chapter four: security pledge."]
)  # fmt: skip


def test_pdf_pages_map_offsets_to_page_numbers(tmp_path: Path) -> None:
    make_pdf(tmp_path / "rules.pdf", PDF_PAGES)
    doc = read(tmp_path / "rules.pdf")
    assert len(doc.pages) == 4 and doc.pages[0] == 0
    assert list(doc.pages) == sorted(doc.pages)
    for number, text in enumerate(PDF_PAGES, start=1):
        if text:
            assert doc.text[doc.pages[number - 1] :].startswith(text)
            assert doc.page_at(doc.text.index(text) + len(text) - 1) == number
    assert "\n\n" in doc.text  # pages are separated by a blank line


def test_pdf_encrypted_with_a_password_is_refused(tmp_path: Path) -> None:
    from pypdf import PdfReader, PdfWriter

    make_pdf(tmp_path / "plain.pdf", PDF_PAGES[:2])
    writer = PdfWriter(clone_from=PdfReader(tmp_path / "plain.pdf"))
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="RC4-128")
    writer.write(tmp_path / "locked.pdf")
    assert "encrypted PDF" in refused(tmp_path / "locked.pdf")


def test_pdf_encrypted_with_an_empty_password_is_read(tmp_path: Path) -> None:
    from pypdf import PdfReader, PdfWriter

    make_pdf(tmp_path / "plain.pdf", PDF_PAGES[:2])
    writer = PdfWriter(clone_from=PdfReader(tmp_path / "plain.pdf"))
    writer.encrypt(user_password="", owner_password="owner", algorithm="RC4-128")
    writer.write(tmp_path / "restricted.pdf")
    assert PDF_PAGES[1].split()[0] in read(tmp_path / "restricted.pdf").text


def test_pdf_corrupt_or_textless_is_refused(tmp_path: Path) -> None:
    make_pdf(tmp_path / "plain.pdf", PDF_PAGES[:2])
    (tmp_path / "truncated.pdf").write_bytes((tmp_path / "plain.pdf").read_bytes()[:300])
    assert "not a valid PDF" in refused(tmp_path / "truncated.pdf")
    (tmp_path / "garbage.pdf").write_bytes(b"definitely not a PDF \x00\x01" * 50)
    assert "not a PDF" in refused(tmp_path / "garbage.pdf")
    make_pdf(tmp_path / "scan.pdf", ["", ""])
    assert "no text layer" in refused(tmp_path / "scan.pdf")


def test_docx_keeps_headings_lists_and_tables_in_document_order(tmp_path: Path) -> None:
    import docx

    word = docx.Document()
    word.add_heading("휴가 규정", level=1)
    word.add_paragraph(KOREAN)
    word.add_heading("신청 절차", level=2)
    word.add_paragraph("Submit the form", style="List Bullet")
    word.add_paragraph("Wait for approval", style="List Bullet")
    table = word.add_table(rows=3, cols=3)
    for row, values in zip(table.rows, [("구분", "일수", "비고"), ("연차", "15", "유급"), ("", "3", "")], strict=True):
        for cell, value in zip(row.cells, values, strict=True):
            cell.text = value
    table.cell(1, 0).merge(table.cell(2, 0))  # vertical merge: "연차" spans two rows
    table.cell(2, 1).merge(table.cell(2, 2))  # horizontal merge
    word.add_paragraph("After | the table.")
    word.save(tmp_path / "rules.docx")

    text = read(tmp_path / "rules.docx").text
    assert text.startswith("# 휴가 규정\n\n" + KOREAN + "\n\n## 신청 절차\n\n")
    assert "- Submit the form\n- Wait for approval" in text
    # Merged cells appear once; blanks keep the other cells in their columns.
    assert "\n\n구분 | 일수 | 비고 |\n연차 | 15 | 유급 |\n | 3 |  |\n\n" in text
    assert text.index("Wait for approval") < text.index("구분") < text.index("After | the table.")


def test_docx_corrupt_is_refused(tmp_path: Path) -> None:
    import docx

    buffer = io.BytesIO()
    docx.Document().save(buffer)
    (tmp_path / "cut.docx").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    assert refused(tmp_path / "cut.docx") == "not a valid DOCX (zip archive is corrupt)"
    with zipfile.ZipFile(tmp_path / "other.docx", "w") as archive:
        archive.writestr("hello.txt", "not a Word document")
    assert "not a valid DOCX" in refused(tmp_path / "other.docx")


PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Leave policy</title>
<style>.x { color: red }</style><script>var secret = "SCRIPT_TEXT";</script></head>
<body><nav><a href="/">NAV_TEXT Home</a></nav><header>HEADER_TEXT</header>
<main><h1>Annual   leave</h1>
<p>Employees get <b>15 days</b>.<br>Escaped: &lt;script&gt;alert(1)&lt;/script&gt;
 and &lt;img src=x onerror=alert(1)&gt;</p>
<div hidden>HIDDEN_TEXT</div><div style="display: none">HIDDEN_TEXT</div>
<h2>Table</h2>
<table><tr><th>Type</th><th>Days</th></tr><tr><td>Annual</td><td>15</td></tr>
<tr><td colspan="2">sick | leave</td></tr></table>
<ul><li>first</li><li>second</li></ul></main>
<footer>FOOTER_TEXT</footer><script>document.write("SCRIPT_TEXT")</script></body></html>"""


def test_html_keeps_readable_text_and_structure(tmp_path: Path) -> None:
    (tmp_path / "page.html").write_text(PAGE, encoding="utf-8")
    text = read(tmp_path / "page.html").text
    assert text.startswith("# Annual leave\n\nEmployees get 15 days.\nEscaped: <script>alert(1)</script>")
    assert "<img src=x onerror=alert(1)>" in text  # escaped markup is text, kept literally
    assert "## Table\n\nType | Days |\nAnnual | 15 |\nsick / leave |  |\n\n- first\n- second" in text
    for absent in ("SCRIPT_TEXT", "NAV_TEXT", "HEADER_TEXT", "FOOTER_TEXT", "HIDDEN_TEXT", "color"):
        assert absent not in text


def test_html_in_cp949_with_and_without_meta_charset(tmp_path: Path) -> None:
    body = f"<h2>규정</h2><p>{KOREAN} 똠방각하.</p>"  # 똠 exists in CP949, not in EUC-KR
    (tmp_path / "meta.html").write_bytes(f'<meta charset="euc-kr"><body>{body}</body>'.encode("cp949"))
    (tmp_path / "bare.html").write_bytes(f"<html><body>{body}</body></html>".encode("cp949"))
    for name in ("meta.html", "bare.html"):
        assert read(tmp_path / name).text == f"## 규정\n\n{KOREAN} 똠방각하."


def test_text_encodings(tmp_path: Path) -> None:
    (tmp_path / "cp949.txt").write_bytes((KOREAN + "\n" + KOREAN).encode("cp949"))
    assert read(tmp_path / "cp949.txt").text == KOREAN + "\n" + KOREAN
    (tmp_path / "utf16.txt").write_bytes(KOREAN.encode("utf-16"))  # Python writes the BOM
    assert read(tmp_path / "utf16.txt").text == KOREAN
    (tmp_path / "bom.md").write_bytes(codecs.BOM_UTF8 + f"# 제목\r\n\r\n{KOREAN}".encode())
    assert read(tmp_path / "bom.md").text == f"# 제목\n\n{KOREAN}"


def test_empty_binary_and_oversize_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_bytes(b"")
    assert refused(tmp_path / "empty.txt") == "empty file"
    noise = bytearray(random.Random(7).randbytes(4096))
    noise[::50] = b"\x00" * len(noise[::50])
    (tmp_path / "noise.txt").write_bytes(bytes(noise))
    assert "binary" in refused(tmp_path / "noise.txt")
    (tmp_path / "big.txt").write_text("x" * 5000)
    assert "over the" in refused(tmp_path / "big.txt", max_bytes=1000)


_TAGS = ["p", "div", "h2", "ul", "li", "table", "tr", "th", "td", "br", "pre", "script", "nav", "main", "b"]
_MARKUP = st.recursive(
    st.text(max_size=40),
    lambda inner: st.builds(
        lambda tag, attrs, parts: f"<{tag}{attrs}>{''.join(parts)}</{tag}>",
        st.sampled_from(_TAGS),
        st.sampled_from(["", " hidden", ' colspan="99999"', ' colspan="x"', ' style="display:none"']),
        st.lists(inner, max_size=4),
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(markup=_MARKUP, encoding=st.sampled_from(["utf-8", "cp949", "utf-16"]))
def test_html_reader_fails_only_with_unreadable_document(markup: str, encoding: str) -> None:
    try:
        parsed = html_reader.read(markup.encode(encoding, errors="replace"))
    except UnreadableDocument:
        return
    assert isinstance(parsed.text, str) and parsed.pages == ()


@settings(max_examples=100, deadline=None)
@given(words=st.lists(st.text(alphabet="abcxyz가나다019", min_size=1), min_size=1, max_size=8))
def test_html_reader_keeps_every_paragraph(words: list[str]) -> None:
    markup = "<div>" + "".join(f"<p>{word}</p>" for word in words) + "</div>"
    assert html_reader.read(markup.encode()).text == "\n\n".join(words)
