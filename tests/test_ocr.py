"""Scanned PDFs: Korean text rendered to an image (Pillow, a Korean font) in a PDF with no text layer,
read by Tesseract; without Tesseract the scanned pages are skipped with what to install."""

from __future__ import annotations

import functools
import time
from pathlib import Path

import pytest

from aiqa.errors import UnreadableDocument
from aiqa.ingest import ocr, read_document

from .realfiles import korean_font, make_pdf

SCAN_LINES = [
    "재택근무 신청 안내",
    "재택근무는 한 주에 두 번까지 신청할 수 있습니다.",
    "신청서는 전날 오후 5시까지 팀장에게 제출합니다.",
    "재택근무 중에는 사내 메신저에 접속해 있어야 합니다.",
]


@functools.cache
def ocr_missing() -> str | None:
    """Why OCR cannot run here (None: it can); asked once, when a test first needs it, not at collection."""
    return ocr.missing()


def have_ocr() -> bool:
    return ocr_missing() is None


@pytest.fixture
def tesseract() -> None:
    if (why := ocr_missing()) is not None:
        pytest.skip(f"no OCR here: {why} (scripts/test.sh installs it)")


needs_ocr = pytest.mark.usefixtures("tesseract")
needs_font = pytest.mark.skipif(korean_font() is None, reason="no Korean font (apt-get install fonts-nanum)")


def make_scan(path: Path, lines: list[str] = SCAN_LINES, pages: int = 1) -> None:
    """An A4 page at 300 dpi with the lines drawn as pixels, saved as an image-only PDF."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(str(korean_font()), 42)
    images = []
    for _ in range(pages):
        image = Image.new("L", (2480, 3508), 255)
        draw = ImageDraw.Draw(image)
        for i, line in enumerate(lines):
            draw.text((220, 260 + i * 110), line, font=font, fill=0)
        images.append(image)
    images[0].save(path, "PDF", resolution=300.0, save_all=True, append_images=images[1:])


def char_accuracy(found: str, truth: str) -> float:
    """1 - the character edit distance over the truth's length, whitespace ignored."""
    a, b = "".join(found.split()), "".join(truth.split())
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        previous, row[0] = row[0], i
        for j, cb in enumerate(b, start=1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (ca != cb))
    return max(0.0, 1 - row[len(b)] / max(1, len(b)))


@needs_font
@needs_ocr
def test_scanned_page_is_read_by_ocr_and_marked(tmp_path: Path) -> None:
    make_scan(tmp_path / "scan.pdf")
    doc = read_document(tmp_path / "scan.pdf", tmp_path, max_bytes=50_000_000)
    assert doc.ocr_pages == (1,) and doc.notes == ()
    assert char_accuracy(doc.text, "\n".join(SCAN_LINES)) >= 0.9, doc.text
    assert "재택근무는 한 주에 두 번까지 신청할 수 있습니다." in doc.text


@needs_font
def test_without_tesseract_scanned_pages_are_skipped_saying_what_to_install(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("AIQA_TESSERACT", str(tmp_path / "no-such-tesseract"))
    ocr.missing.cache_clear()
    try:
        make_scan(tmp_path / "scan.pdf")
        with pytest.raises(UnreadableDocument) as info:
            read_document(tmp_path / "scan.pdf", tmp_path, max_bytes=50_000_000)
        assert "no text layer" in str(info.value) and "apt-get install tesseract-ocr tesseract-ocr-kor" in str(
            info.value
        )
        # A text page beside a scanned one: the text is read, the scanned page is named in the notes.
        make_pdf(tmp_path / "text.pdf", [["출장비는 매월 말일에 정산합니다."]])
        from pypdf import PdfReader, PdfWriter

        writer = PdfWriter()
        writer.append(PdfReader(tmp_path / "text.pdf"))
        writer.append(PdfReader(tmp_path / "scan.pdf"))
        writer.write(tmp_path / "mixed.pdf")
        doc = read_document(tmp_path / "mixed.pdf", tmp_path, max_bytes=50_000_000)
        assert doc.text.strip() == "출장비는 매월 말일에 정산합니다."
        assert doc.ocr_pages == ()
        assert len(doc.notes) == 1 and doc.notes[0].startswith("scanned page(s) 2 skipped: Tesseract is not installed")
    finally:
        ocr.missing.cache_clear()


def _in_group(pgid: int) -> list[int]:
    """Processes of a process group, from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":  # a killed process not yet reaped is gone
            found.append(int(stat.parent.name))
    return found


@needs_font
@needs_ocr
@pytest.mark.model  # Tesseract run until the read time limit stops it: the slow tier.
def test_ocr_runs_inside_the_read_time_limit_and_stops_with_it(tmp_path: Path) -> None:
    from aiqa.ingest.worker import Worker

    # Far more pages than fit in the limit on any machine (a page takes about 0.7 s here), and a limit
    # past the decoding of the first page: Tesseract is running when it strikes.
    make_scan(tmp_path / "long.pdf", pages=15)
    worker = Worker(timeout=3)
    caps = {"max_bytes": 50_000_000, "max_unzipped_bytes": 200_000_000, "max_zip_entries": 2000}
    (tmp_path / "first.txt").write_text("먼저 읽는 파일", encoding="utf-8")
    worker.read(tmp_path / "first.txt", tmp_path, (tmp_path / "first.txt").read_bytes(), caps)
    assert worker.proc is not None
    group, tmp = worker.proc.pid, worker.tmp
    try:
        with pytest.raises(
            UnreadableDocument, match=r"took longer than 3 s to read: stopped \(raise AIQA_READ_TIMEOUT\)"
        ):
            worker.read(tmp_path / "long.pdf", tmp_path, (tmp_path / "long.pdf").read_bytes(), caps)
    finally:
        worker.close()
    deadline = time.monotonic() + 3  # SIGKILL is delivered, not waited for
    while _in_group(group) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _in_group(group) == []  # the Tesseract it was running stopped with it
    assert tmp is not None and not Path(tmp).exists()  # and the images it had written for Tesseract are gone
