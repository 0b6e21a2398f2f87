"""Excel, PowerPoint, HWP and HWPX through read_document: real files, their structure, the refusals.

XLSX and PPTX files are written here by openpyxl and python-pptx; HWP and HWPX files are real files
made by Hancom Office (tests/data/formats/README.md says where each comes from).
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import zipfile
import zlib
from pathlib import Path

import pytest

from aiqa.errors import UnreadableDocument
from aiqa.ingest import read_document
from aiqa.records import Document

DATA = Path(__file__).parent / "data" / "formats"
MAX_BYTES = 10_000_000


def read(path: Path, **caps: int) -> Document:
    return read_document(path, path.parent, max_bytes=MAX_BYTES, **caps)


def refused(path: Path, **caps: int) -> str:
    with pytest.raises(UnreadableDocument) as info:
        read(path, **caps)
    return str(info.value)


def rewrite_zip(path: Path, edit) -> None:
    """Rewrite the entries of a zip file through edit(name, data) -> data (cached values, damage)."""
    with zipfile.ZipFile(path) as old:
        entries = [(info, old.read(info)) for info in old.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as new:
        for info, data in entries:
            new.writestr(info, edit(info.filename, data))


def make_xlsx(path: Path) -> None:
    import openpyxl  # the writers are imported where used: collection stays light

    """A sheet with a title row, a two-row header with merged cells, formulas with cached values
    (as Excel saves them), a hidden sheet and a sheet of dates."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "지점 매출"
    sheet.append(["2025년 지점별 매출 (단위: 만원)"])
    sheet.merge_cells("A1:D1")
    sheet.append(["지점", "2025", None, "담당자"])
    sheet.append([None, "상반기", "하반기", None])
    for cells in ("A2:A3", "B2:C2", "D2:D3"):
        sheet.merge_cells(cells)
    sheet.append(["서울 본점", 1200, 1350.0, "김민수"])
    sheet.append(["부산 지점", 800, 950, "이영희"])
    sheet.append(["제주 지점", 430, 515, "박서준"])
    sheet.append(["합계", "=SUM(B4:B6)", "=SUM(C4:C6)", None])
    hidden = book.create_sheet("급여")
    hidden.append(["이름", "급여"])
    hidden.append(["김민수", 5000])
    hidden.sheet_state = "hidden"
    events = book.create_sheet("행사")
    events.append(["날짜", "행사", "장소"])
    events.append([dt.date(2025, 3, 14), "창립 기념식", "본사 강당"])
    book.save(path)
    cached = {"SUM(B4:B6)": "2430", "SUM(C4:C6)": "2815"}
    rewrite_zip(
        path,
        lambda name, data: (
            re.sub(
                rb"<f>(SUM\([A-Z0-9:]+\))</f><v\s*>\s*</v>",
                lambda m: b"<f>%s</f><v>%s</v>" % (m.group(1), cached[m.group(1).decode()].encode()),
                data,
            )
            if name == "xl/worksheets/sheet1.xml"
            else data
        ),
    )


def make_pptx(path: Path) -> None:
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[0])
    slide.shapes.title.text = "2025년 정보보안 교육"
    slide.placeholders[1].text = "정보보호팀"
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = "비밀번호 규칙"
    body = slide.placeholders[1].text_frame
    body.text = "비밀번호는 90일마다 변경해야 합니다."
    body.add_paragraph().text = "USB 저장장치는 보안 스티커를 붙인 것만 사용할 수 있습니다."
    slide.notes_slide.notes_text_frame.text = "질문이 나오면 정보보호팀 내선 4321로 안내합니다."
    slide = deck.slides.add_slide(deck.slide_layouts[5])
    slide.shapes.title.text = "교육 일정"
    # Added bottom first: reading order is by position on the slide, not by the order of the XML.
    slide.shapes.add_textbox(
        Inches(1), Inches(5.5), Inches(6), Inches(1)
    ).text_frame.text = "교육은 온라인으로도 들을 수 있다."
    table = slide.shapes.add_table(3, 3, Inches(1), Inches(2), Inches(8), Inches(2)).table
    for r, row in enumerate(
        [["부서", "교육일", "강사"], ["영업부", "3월 5일", "최유진"], ["개발부", "3월 12일", "한지민"]]
    ):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = "숨긴 슬라이드"
    slide.placeholders[1].text = "발표하지 않는 내용"
    slide.element.set("show", "0")
    deck.save(path)


def test_xlsx_sheets_are_sections_with_found_header_merged_labels_and_cached_values(tmp_path: Path) -> None:
    make_xlsx(tmp_path / "sales.xlsx")
    doc = read(tmp_path / "sales.xlsx")
    lines = doc.text.split("\n")
    assert lines[0] == "# 지점 매출" and "2025년 지점별 매출 (단위: 만원)" in lines
    # The two-row merged header reads as one header row; every data row follows it, cells aligned.
    assert "지점 | 2025 상반기 | 2025 하반기 | 담당자 |" in lines
    assert "서울 본점 | 1200 | 1350 | 김민수 |" in lines
    assert "합계 | 2430 | 2815 |  |" in lines  # the values Excel cached for the formulas
    assert "# 행사" in lines and "2025-03-14 | 창립 기념식 | 본사 강당 |" in lines
    assert "급여" not in doc.text and "5000" not in doc.text
    assert doc.notes == ("hidden sheet '급여' skipped (unhide it in Excel to have it read)",)


def test_pptx_slides_are_sections_in_reading_order_with_tables_and_marked_notes(tmp_path: Path) -> None:
    make_pptx(tmp_path / "security.pptx")
    doc = read(tmp_path / "security.pptx")
    assert len(doc.pages) == 4  # one page per slide: the locator names the slide
    slide2 = doc.text[doc.pages[1] : doc.pages[2]]
    assert slide2.startswith("# 비밀번호 규칙 (slide 2)\n\n- 비밀번호는 90일마다 변경해야 합니다.\n- USB")
    assert "발표자 노트: 질문이 나오면 정보보호팀 내선 4321로 안내합니다." in slide2
    slide3 = doc.text[doc.pages[2] : doc.pages[3]]
    assert slide3.index("부서 | 교육일 | 강사 |\n영업부 | 3월 5일 | 최유진 |") < slide3.index("교육은 온라인으로도")
    assert "발표하지 않는 내용" not in doc.text
    assert doc.notes == ("hidden slide 4 skipped (show it in PowerPoint to have it read)",)


def test_hwp_tables_keep_rows_and_merged_cells_in_place(tmp_path: Path) -> None:
    noori = read(DATA / "noori.hwp").text
    assert "배포일시 | 2018. 9. 3.(월) 09:00 | 담당부서 | 거대공공연구정책과 |" in noori.split("\n")
    assert "과학기술정보통신부(장관 유영민, 이하 ‘과기정통부’)는" in noori
    merged = read(DATA / "merging-cell.hwp").text.split("\n")
    rows = [line for line in merged if line.endswith(" |")]
    assert rows[0] == "0,0 | 0,1 | 0,2 | 0,3 | 0,4 | 0,5 | 0,6 |"
    assert all(row.count(" | ") == 6 for row in rows)  # a merged cell leaves blanks: the columns stay aligned


def test_hwp_and_hwpx_outline_paragraphs_are_headings() -> None:
    hwp = read(DATA / "outline.hwp").text.split("\n")
    assert hwp[:3] == ["# 1", "", "# 2"]
    hwpx = read(DATA / "outline.hwpx").text.split("\n")
    assert hwpx[hwpx.index("# 개요1") : hwpx.index("# 개요1") + 3] == ["# 개요1", "", "## 개요1-1"]
    assert "### 개요2-1-1" in hwpx
    assert "- 글머리1-1" in hwpx and "- 번호3-1" in hwpx  # bullets and numbered paragraphs are list items


def test_hwpx_table_is_rows_under_its_header() -> None:
    text = read(DATA / "table.hwpx").text
    assert text.startswith("C반 기말고사")
    assert "이름 | 국어 | 영어 | 수학 |\n개똥이 | 89 | 65 | 78 |\n칠득이 | 77 | 77 | 77 |" in text


def _hwp_with(path: Path, source: Path, edit) -> Path:
    """A copy of a real HWP file with one stream replaced by edit(name, data) (same size: olefile's rule)."""
    import olefile

    shutil.copy(source, path)
    with olefile.OleFileIO(str(path), write_mode=True) as ole:
        for name in ("FileHeader", "BodyText/Section0"):
            data = ole.openstream(name).read()
            new = edit(name, data)
            if new != data:
                ole.write_stream(name, new.ljust(len(data), b"\0")[: len(data)])
    return path


def test_hwp_refusals_say_what_to_do(tmp_path: Path) -> None:
    assert "distribution-only HWP" in refused(DATA / "distribution.hwp")

    def password(name: str, data: bytes) -> bytes:
        return data[:36] + (int.from_bytes(data[36:40], "little") | 2).to_bytes(4, "little") + data[40:]

    locked = _hwp_with(
        tmp_path / "locked.hwp", DATA / "merging-cell.hwp", lambda n, d: password(n, d) if n == "FileHeader" else d
    )
    assert "password-protected HWP: remove the password" in refused(locked)
    # A section that inflates to 5 MB of records from a few KB: over the unpacked-size cap, not read.
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = packer.compress(b"\0" * 5_000_000) + packer.flush()
    big = _hwp_with(tmp_path / "bomb.hwp", DATA / "noori.hwp", lambda n, d: bomb if n == "BodyText/Section0" else d)
    assert "unpacks to more than the cap" in refused(big, max_unzipped_bytes=1_000_000)
    garbled = _hwp_with(
        tmp_path / "garbled.hwp",
        DATA / "noori.hwp",
        lambda n, d: d[:100] + b"\xff" * 500 + d[600:] if n == "BodyText/Section0" else d,
    )
    assert "HWP file is damaged" in refused(garbled) and "save it again" in refused(garbled)
    (tmp_path / "truncated.hwp").write_bytes((DATA / "noori.hwp").read_bytes()[:5000])
    assert "HWP" in refused(tmp_path / "truncated.hwp")
    (tmp_path / "v3.hwp").write_bytes(b"HWP Document File V3.00 \x1a\x01\x02\x03\x04\x05" + b"\0" * 200)
    assert "HWP 3.x" in refused(tmp_path / "v3.hwp")


def test_damaged_and_bomb_office_files_are_refused_with_a_reason(tmp_path: Path) -> None:
    make_xlsx(tmp_path / "good.xlsx")
    make_pptx(tmp_path / "good.pptx")
    shutil.copy(DATA / "table.hwpx", tmp_path / "good.hwpx")
    for ext in ("xlsx", "pptx", "hwpx"):
        good = (tmp_path / f"good.{ext}").read_bytes()
        (tmp_path / f"truncated.{ext}").write_bytes(good[: len(good) // 2])
        assert "corrupt" in refused(tmp_path / f"truncated.{ext}")
        shutil.copy(tmp_path / f"good.{ext}", tmp_path / f"broken.{ext}")
        rewrite_zip(
            tmp_path / f"broken.{ext}",
            lambda name, data: (
                data[: len(data) // 2]
                if (name.endswith(".xml") and "sheet1" in name) or "slide1.xml" in name or "section0" in name
                else data
            ),
        )
        reason = refused(tmp_path / f"broken.{ext}")
        assert "corrupt" in reason or "damaged" in reason, reason
        # A zip bomb: an entry that unpacks past the cap is refused before any parsing.
        shutil.copy(tmp_path / f"good.{ext}", tmp_path / f"bomb.{ext}")
        with zipfile.ZipFile(tmp_path / f"bomb.{ext}", "a", zipfile.ZIP_DEFLATED) as z:
            z.writestr("padding.bin", b"\0" * 3_000_000)
        assert "over the cap" in refused(tmp_path / f"bomb.{ext}", max_unzipped_bytes=2_000_000)
        assert "over the cap of 5" in refused(tmp_path / f"good.{ext}", max_zip_entries=5)
    (tmp_path / "legacy.xlsx").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600)
    assert "save it in Excel as .xlsx" in refused(tmp_path / "legacy.xlsx")
    (tmp_path / "swapped.pptx").write_bytes((tmp_path / "good.xlsx").read_bytes())
    assert "PowerPoint" in refused(tmp_path / "swapped.pptx") or "PPTX" in refused(tmp_path / "swapped.pptx")
    import openpyxl

    # openpyxl refuses to write a workbook without a visible sheet; Excel can: hide it in the XML.
    book = openpyxl.Workbook()
    book.active.append(["a", "b"])
    book.save(tmp_path / "hidden.xlsx")
    rewrite_zip(
        tmp_path / "hidden.xlsx",
        lambda name, data: data.replace(b'state="visible"', b'state="hidden"') if name == "xl/workbook.xml" else data,
    )
    assert "every sheet is hidden" in refused(tmp_path / "hidden.xlsx")


HP = "http://www.hancom.co.kr/hwpml/2011/paragraph"
HH = "http://www.hancom.co.kr/hwpml/2011/head"
HS = "http://www.hancom.co.kr/hwpml/2011/section"


def _p(text: str, para_pr: str = "0", extra: str = "") -> str:
    run = f'<hp:run charPrIDRef="0">{extra}<hp:t>{text}</hp:t></hp:run>'
    return f'<hp:p paraPrIDRef="{para_pr}" styleIDRef="0">{run}</hp:p>'


def _cell(row: int, col: int, text: str, rows: int = 1, cols: int = 1) -> str:
    return (
        f'<hp:tc><hp:subList>{_p(text)}</hp:subList><hp:cellAddr colAddr="{col}" rowAddr="{row}"/>'
        f'<hp:cellSpan colSpan="{cols}" rowSpan="{rows}"/></hp:tc>'
    )


def make_hwpx(path: Path, repeat: int = 1) -> None:
    """An HWPX written here from the OWPML schema (KS X 6101), not by the reader under test: an outline
    heading, a page header and a footnote (page furniture), a table whose header cell spans two rows."""
    header = (
        f'<hh:head xmlns:hh="{HH}"><hh:refList><hh:paraProperties>'
        '<hh:paraPr id="0"><hh:heading type="NONE" idRef="0" level="0"/></hh:paraPr>'
        '<hh:paraPr id="1"><hh:heading type="OUTLINE" idRef="1" level="0"/></hh:paraPr>'
        "</hh:paraProperties></hh:refList></hh:head>"
    )
    page_header = f"<hp:ctrl><hp:header><hp:subList>{_p('머리말: 대외비')}</hp:subList></hp:header></hp:ctrl>"
    footnote = f"<hp:ctrl><hp:footNote><hp:subList>{_p('각주 내용')}</hp:subList></hp:footNote></hp:ctrl>"
    cells = [
        [_cell(0, 0, "구분", rows=2), _cell(0, 1, "출장 지역"), _cell(0, 2, "일비")],
        [_cell(1, 1, "(단위)"), _cell(1, 2, "원")],
        [_cell(2, 0, "임원"), _cell(2, 1, "국내"), _cell(2, 2, "80,000")],
        [_cell(3, 0, "직원"), _cell(3, 1, "국내"), _cell(3, 2, "50,000")],
    ]
    rows = "".join(f"<hp:tr>{''.join(row)}</hp:tr>" for row in cells)
    table = f'<hp:tbl rowCnt="4" colCnt="3">{rows}</hp:tbl>'
    section = (
        f'<hs:sec xmlns:hs="{HS}" xmlns:hp="{HP}">'
        + (
            _p("출장 규정", "1", page_header)
            + _p("출장비는 다음 표에 따라 지급한다.", extra=footnote)
            + f'<hp:p paraPrIDRef="0"><hp:run charPrIDRef="0">{table}<hp:t/></hp:run></hp:p>'
        )
        * repeat
        + "</hs:sec>"
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("mimetype", "application/hwp+zip", compress_type=zipfile.ZIP_STORED)
        z.writestr("Contents/header.xml", '<?xml version="1.0" encoding="UTF-8"?>' + header)
        z.writestr("Contents/section0.xml", '<?xml version="1.0" encoding="UTF-8"?>' + section)


def test_hwpx_written_from_the_schema_reads_with_its_heading_and_table(tmp_path: Path) -> None:
    make_hwpx(tmp_path / "travel.hwpx")
    assert read(tmp_path / "travel.hwpx").text == (
        "# 출장 규정\n\n출장비는 다음 표에 따라 지급한다.\n\n"
        "구분 | 출장 지역 | 일비 |\n | (단위) | 원 |\n임원 | 국내 | 80,000 |\n직원 | 국내 | 50,000 |"
    )
    # The same file named .hwp (a common mix-up) is read as what it is.
    shutil.copy(tmp_path / "travel.hwpx", tmp_path / "travel.hwp")
    assert read(tmp_path / "travel.hwp").text.startswith("# 출장 규정")


def test_xlsx_with_one_far_cell_keeps_only_the_rows_with_values(tmp_path: Path) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    book.active.append(["항목", "값"])
    book.active.append(["예산", 100])
    book.active["B200000"] = "마지막 행"  # the sheet is now 200,000 rows of mostly nothing
    book.active["HA2"] = "먼 열"  # column 209: past the cap, and said so
    book.save(tmp_path / "far.xlsx")
    doc = read(tmp_path / "far.xlsx")
    assert doc.text == "# Sheet\n\n항목 | 값 |\n예산 | 100 |\n | 마지막 행 |"
    assert doc.notes == ("sheet 'Sheet': columns past 200 left out (move that data to another sheet)",)
