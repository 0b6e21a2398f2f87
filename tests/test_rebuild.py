"""Rebuilding from a folder of real files, end to end: `aiqa index --json`, cited answers, live reload."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import docx
import pytest
from fpdf import FPDF

import aiqa
from aiqa.config import Settings
from aiqa.index import VIEWS, load_index

SRC = Path(aiqa.__file__).resolve().parents[1]


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


def aiqa_index(settings: Settings, *flags: str) -> subprocess.CompletedProcess:
    """Run `aiqa index --json` as a user would, in its own process (the one real-process path here)."""
    env = {
        **os.environ,
        "AIQA_CACHE_DIR": str(settings.cache_dir),
        "AIQA_MAX_FILE_MB": "1",
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    args = ["--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir)]
    return subprocess.run(
        [sys.executable, "-m", "aiqa.cli", "index", "--json", *args, *flags],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


@pytest.fixture
def index_here(capsys, monkeypatch):
    """Run `aiqa index --json` in this process, as the console script runs `main`."""
    from aiqa.cli import main

    def run(settings: Settings, *flags: str) -> subprocess.CompletedProcess:
        monkeypatch.setenv("AIQA_MAX_FILE_MB", "1")
        args = ["index", "--json", "--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir), *flags]
        capsys.readouterr()
        code = main(args)
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, out, err)

    return run


def assert_quiet(stderr: str) -> None:
    """No progress bars or tracebacks on stderr when the output is JSON for a machine."""
    for noise in ("\r", "%|", "it/s", "s/it", "Batches", "Loading", "Traceback"):
        assert noise not in stderr, f"stderr has {noise!r}: {stderr[-500:]}"


@dataclass
class Built:
    settings: Settings
    first: subprocess.CompletedProcess
    report: dict


@pytest.fixture(scope="module")
def built(tmp_path_factory, cache_dir) -> Built:
    """The corpus of real files, indexed once with `aiqa index --json --strict`."""
    root = tmp_path_factory.mktemp("rebuild")
    settings = Settings(corpus_dir=root / "corpus", index_dir=root / "index", cache_dir=cache_dir, max_file_mb=1)
    make_corpus(settings.corpus_dir)
    first = aiqa_index(settings, "--strict")
    return Built(settings, first, json.loads(first.stdout) if first.stdout.strip() else {})


@pytest.fixture(scope="module")
def qa(built, embedder):
    from aiqa.engine import Engine

    engine = Engine(built.settings)
    engine._embedder = embedder
    return engine


def test_index_json_reports_what_was_added_and_skipped(built):
    assert built.first.returncode == 1, built.first.stderr  # --strict: files were skipped
    assert_quiet(built.first.stderr)
    report = built.report
    index = load_index(built.settings)
    assert (report["added"], report["updated"], report["removed"], report["unchanged"]) == (4, 0, 0, 0)
    assert report["chunks"] == report["embedded_chunks"] == len(index.chunks) == index.vectors.ntotal // VIEWS
    assert report["index_version"] == index.version
    assert set(index.documents) == {c.source for c in index.chunks} == READABLE

    skipped = {item["path"]: item["reason"] for item in report["skipped"]}
    assert set(skipped) == set(SKIPPED)
    for path, reason in skipped.items():
        assert SKIPPED[path] in reason, (path, reason)
        assert "\n" not in reason and 0 < len(reason) < 160, (path, reason)
    assert "1.2 MB" in skipped["huge.txt"] and "AIQA_MAX_FILE_MB" in skipped["huge.txt"]
    assert [item["path"] for item in report["skipped"]] == sorted(SKIPPED)


CASES = [
    pytest.param(PDF_QUESTION, "handbook.pdf", PDF_ANSWER, id="pdf page 2"),
    pytest.param("What is the Aurora project's launch code?", "aurora.docx", "ZX-4471", id="docx paragraph"),
    pytest.param("발사 관제 담당자는 누구인가?", "aurora.docx", "박도윤", id="docx table"),
    pytest.param(
        "오로라 프로젝트의 발사 관제 담당자는 누구인가?",
        "aurora.docx",
        "박도윤",
        id="docx table under the document's title",
    ),
    pytest.param("별빛 회의실 예약 담당자는 누구인가?", "memo.txt", "최민준", id="cp949 text"),
    pytest.param("What is the door code of the Falcon server room?", "wiki.html", "8-1-6-2", id="html"),
    pytest.param("Who owns the falcon-01 server?", "wiki.html", "Lee Jiwoo", id="html table"),
]


@pytest.mark.parametrize(("question", "source", "fact"), CASES)
def test_each_document_answers_with_a_citation_to_its_file(qa, question, source, fact):
    result = qa.ask_json(question)
    assert not result["abstained"], result["answer"]
    cited = [c for c in result["citations"] if c["source"] == source and fact in c["quote"]]
    assert cited, result["citations"]
    assert fact in result["answer"]
    if source == "handbook.pdf":
        assert "p. 2" in cited[0]["locator"], cited[0]["locator"]


def test_page_furniture_and_encodings_are_read_right(built):
    index = load_index(built.settings)
    everything = [c.text for c in index.chunks] + [c.context for c in index.chunks]
    everything += [d.text for d in index.documents.values()]
    for absent in (SCRIPT_SECRET, NAV_TEXT, "document.write", "HUGE-0001"):
        assert not any(absent in text for text in everything), absent
    assert index.documents["memo.txt"].text == MEMO  # CP949 bytes, decoded to the same text
    header = next(c for c in index.chunks if c.source == "wiki.html" and c.kind == "table_header")
    assert header.text.startswith("Server | Owner | Rack")
    row = next(c for c in index.chunks if c.source == "wiki.html" and "falcon-01" in c.text)
    assert ("Owner", "Lee Jiwoo") in row.cells
    pdf = index.documents["handbook.pdf"]
    assert len(pdf.pages) == 2 and pdf.text[pdf.pages[1] :].startswith(PDF_FACT)


def test_unchanged_reindex_embeds_nothing(built, index_here):
    again = index_here(built.settings)
    assert again.returncode == 0, again.stderr  # skips are fine without --strict
    assert_quiet(again.stderr)
    report = json.loads(again.stdout)
    assert (report["added"], report["updated"], report["removed"]) == (0, 0, 0)
    assert report["unchanged"] == len(READABLE) and report["embedded_chunks"] == 0
    assert report["index_version"] == built.report["index_version"]
    assert report["skipped"] == built.report["skipped"]


def test_deleted_document_stops_answering_without_a_restart(built, embedder, tmp_path, index_here):
    from aiqa.engine import Engine

    # A copy of the built corpus and index, so the other tests keep theirs.
    shutil.copytree(built.settings.corpus_dir, tmp_path / "corpus")
    shutil.copytree(built.settings.index_dir, tmp_path / "index")
    settings = Settings(
        corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index", cache_dir=built.settings.cache_dir
    )
    engine = Engine(settings)
    engine._embedder = embedder
    question = "What is the Aurora project's launch code?"
    before = engine.ask_json(question)
    assert any(c["source"] == "aurora.docx" for c in before["citations"])

    (settings.corpus_dir / "aurora.docx").unlink()
    for name in SKIPPED:
        (settings.corpus_dir / name).unlink()
    rebuilt = index_here(settings, "--strict")
    assert rebuilt.returncode == 0, rebuilt.stderr  # --strict and nothing skipped
    assert_quiet(rebuilt.stderr)
    report = json.loads(rebuilt.stdout)
    assert (report["added"], report["updated"], report["removed"], report["unchanged"]) == (0, 0, 1, 3)
    assert report["embedded_chunks"] == 0 and report["skipped"] == []

    # The same engine serves the new version on its next question.
    after = engine.ask_json(question)
    assert engine.current_index().version == report["index_version"] != built.report["index_version"]
    assert after["abstained"] or not any(c["source"] == "aurora.docx" for c in after["citations"])
    assert "ZX-4471" not in after["answer"]
    assert all(p["source"] != "aurora.docx" for p in after["passages"])
    still = engine.ask_json("별빛 회의실 예약 담당자는 누구인가?")
    assert any(c["source"] == "memo.txt" and "최민준" in c["quote"] for c in still["citations"])


def test_fact_on_page_2_of_a_short_pdf_is_cited_on_page_2(tmp_path, cache_dir, embedder):
    from aiqa.engine import Engine
    from aiqa.index import build_index

    settings = Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index", cache_dir=cache_dir)
    settings.corpus_dir.mkdir()
    make_pdf(settings.corpus_dir / "short.pdf", [[PDF_TITLE, PDF_PAGE_1[0]], [PDF_FACT]])
    build_index(settings, embedder_factory=lambda: embedder)
    engine = Engine(settings)
    engine._embedder = embedder
    result = engine.ask_json(PDF_QUESTION)
    cited = [c for c in result["citations"] if PDF_ANSWER in c["quote"]]
    assert cited and all("p. 2" in c["locator"] for c in cited), result["citations"]
