"""A corpus of real files of every supported format, made on the fly, and the facts each one holds."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def korean_font() -> Path | None:
    """A TTF/OTF font with Hangul, if this machine has one (fonts-nanum, fonts-noto-cjk...)."""
    if not shutil.which("fc-list"):
        return None
    listing = subprocess.run(["fc-list", ":lang=ko", "file"], capture_output=True, text=True).stdout
    fonts = sorted(line.split(":")[0].strip() for line in listing.splitlines())
    return next((Path(f) for f in fonts if f.lower().endswith((".ttf", ".otf"))), None)


KOREAN_PDF = korean_font() is not None
# fpdf2's built-in fonts are Latin-1 only: the PDF is in English where no Hangul font is installed.
if KOREAN_PDF:
    PDF_TITLE = "사내 안내서"
    PDF_PAGE_1 = [
        "우리 회사는 1998년에 서울에서 설립되어 지금은 세 개의 지사를 운영하고 있습니다.",
        "신입 사원은 입사 첫 주에 보안 교육과 직무 교육을 모두 이수해야 합니다.",
        "사무실 출입증은 인사팀에서 발급하며, 분실하면 즉시 보안팀에 알려야 합니다.",
        "점심시간은 낮 12시부터 오후 1시까지이며, 구내식당은 지하 1층에 있습니다.",
        "재택근무는 팀장의 승인을 받아 한 주에 이틀까지 할 수 있습니다.",
        "복지 포인트는 매년 1월에 지급되며, 그해 12월 31일까지 사용해야 합니다.",
    ]
    PDF_FACT = "프로젝트 한빛의 예산 책임자는 김서연이다."
    PDF_QUESTION = "프로젝트 한빛의 예산 책임자는 누구인가?"
    PDF_ANSWER = "김서연"
else:
    PDF_TITLE = "Employee handbook"
    PDF_PAGE_1 = [
        "The company was founded in Seoul in 1998 and now runs three branch offices.",
        "New employees must complete security and job training during their first week.",
        "Office badges are issued by human resources; report a lost badge to security at once.",
        "Lunch is from noon to one o'clock, and the cafeteria is on the first basement floor.",
        "Remote work of up to two days a week is possible with the team lead's approval.",
        "Welfare points are paid every January and must be used by the end of December.",
    ]
    PDF_FACT = "The Hanbit project's budget owner is Kim Seoyeon."
    PDF_QUESTION = "Who is the budget owner of the Hanbit project?"
    PDF_ANSWER = "Kim Seoyeon"

DOCX_FACT = "The Aurora project's launch code is ZX-4471."
MEMO = (
    "사내 공지\n\n"
    "별빛 회의실의 예약 담당자는 최민준 대리입니다. 예약은 사용 하루 전까지 사내 포털에서 신청해야 합니다.\n\n"
    "회의실을 사용한 뒤에는 화이트보드를 지우고 의자를 제자리에 놓아 주십시오.\n"
)
SCRIPT_SECRET = "SCRIPT_SECRET_9931"
NAV_TEXT = "NAV_MENU_4410"
WIKI = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Infrastructure wiki</title>
<script>var token = "{SCRIPT_SECRET}";</script></head>
<body><nav><a href="/">{NAV_TEXT} Home</a> <a href="/servers">Servers</a></nav>
<main><h1>Falcon server room</h1>
<p>The Falcon server room door code is 8-1-6-2. Visitors must be escorted at all times.</p>
<h2>Servers</h2>
<table><thead><tr><th>Server</th><th>Owner</th><th>Rack</th></tr></thead>
<tbody><tr><td>falcon-01</td><td>Lee Jiwoo</td><td>R12</td></tr>
<tr><td>falcon-02</td><td>Park Minho</td><td>R14</td></tr></tbody></table>
</main><script>document.write("{SCRIPT_SECRET}");</script></body></html>
"""
READABLE = {"handbook.pdf", "aurora.docx", "memo.txt", "wiki.html"}
SKIPPED = {
    "broken.pdf": "not a valid PDF",
    "empty.txt": "empty file",
    "tool.exe": "unsupported file type '.exe'",
    "blob.bin": "unsupported file type '.bin'",
    "huge.txt": "over the 1 MB limit",
}


def make_pdf(path: Path, pages: list[list[str]]) -> None:
    """A PDF with one paragraph a line; by default the title and six paragraphs, then the fact on page 2."""
    from fpdf import FPDF  # here, not at collection: only the tests that write files need it

    pdf = FPDF()
    if KOREAN_PDF:
        pdf.add_font("korean", fname=str(korean_font()))
        pdf.set_font("korean", size=12)
    else:
        pdf.set_font("Helvetica", size=12)
    for paragraphs in pages:
        pdf.add_page()
        for paragraph in paragraphs:
            pdf.multi_cell(0, 10, paragraph, new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))


def make_docx(path: Path) -> None:
    import docx

    word = docx.Document()
    word.add_heading("오로라 프로젝트", level=1)
    word.add_paragraph(DOCX_FACT + " The code changes every quarter.")
    word.add_heading("담당자", level=2)
    table = word.add_table(rows=3, cols=3)
    rows = [("업무", "담당자", "내선"), ("발사 관제", "박도윤", "5582"), ("궤도 분석", "정하은", "5590")]
    for row, values in zip(table.rows, rows, strict=True):
        for cell, value in zip(row.cells, values, strict=True):
            cell.text = value
    word.save(str(path))


def make_corpus(corpus: Path) -> None:
    corpus.mkdir(parents=True)
    make_pdf(corpus / "handbook.pdf", [[PDF_TITLE, *PDF_PAGE_1], [PDF_FACT]])
    make_docx(corpus / "aurora.docx")
    (corpus / "memo.txt").write_bytes(MEMO.encode("cp949"))
    (corpus / "wiki.html").write_text(WIKI, encoding="utf-8")
    (corpus / "broken.pdf").write_bytes((corpus / "handbook.pdf").read_bytes()[:400])
    (corpus / "empty.txt").write_bytes(b"")
    (corpus / "tool.exe").write_bytes(b"MZ\x90\x00\x03" + bytes(range(256)) * 4)
    (corpus / "blob.bin").write_bytes(bytes(range(256)) * 8)
    line = "The oversize file's secret is HUGE-0001 and it must never be indexed.\n"
    (corpus / "huge.txt").write_text(line * (1_200_000 // len(line)), encoding="utf-8")
    assert (corpus / "huge.txt").stat().st_size > 1_000_000
