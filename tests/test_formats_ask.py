"""Every new format through `aiqa index --json` and `aiqa ask --json`: cited answers from a sheet row, a
slide bullet (with its slide), an HWP table row, an HWPX table row and an OCR'd scan; damaged and
oversized files of each format skipped with a reason while the rest is indexed."""

from __future__ import annotations

import io
import json
import os
import shutil
import sys

import pytest

from aiqa.cli import main

from .realfiles import make_pdf
from .test_formats_office import DATA, make_pptx, make_xlsx
from .test_ocr import have_ocr, make_scan, needs_font

FORMATS = ("xlsx", "pptx", "hwp", "hwpx", "pdf")


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        code = main(list(args))
    finally:
        sys.stdout, sys.stderr = stdout, stderr
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def built(tmp_path_factory, embedder):
    """A corpus of one good file per format plus damaged and oversized ones, indexed by `aiqa index --json`."""
    import aiqa.embedders.registry

    root = tmp_path_factory.mktemp("formats")
    corpus = root / "corpus"
    corpus.mkdir()
    make_xlsx(corpus / "sales.xlsx")
    make_pptx(corpus / "security.pptx")
    shutil.copy(DATA / "noori.hwp", corpus / "noori.hwp")
    shutil.copy(DATA / "table.hwpx", corpus / "grades.hwpx")
    make_pdf(
        corpus / "handbook.pdf", [["출장비는 매월 말일에 정산합니다."], ["사무실 출입증은 인사팀에서 발급합니다."]]
    )
    if have_ocr():
        make_scan(corpus / "scan.pdf")
    for ext in FORMATS:
        good = next(corpus.glob(f"*.{ext}")).read_bytes()
        (corpus / f"damaged.{ext}").write_bytes(good[: len(good) // 3])
        (corpus / f"oversized.{ext}").write_bytes(good[:16] + os.urandom(1_100_000))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIQA_MAX_FILE_MB", "1")
        mp.setattr(aiqa.embedders.registry, "load_embedder", lambda *a, **k: embedder)
        code, out, err = run("index", "--json", "--corpus", str(corpus), "--index", str(root / "index"))
    assert code == 0, err
    return corpus, root / "index", json.loads(out)


def ask(built, question: str, monkeypatch, embedder) -> dict:
    import aiqa.embedders.registry

    corpus, index, _ = built
    monkeypatch.setenv("AIQA_CORPUS", str(corpus))
    monkeypatch.setenv("AIQA_INDEX", str(index))
    monkeypatch.setattr(aiqa.embedders.registry, "load_embedder", lambda *a, **k: embedder)
    code, out, err = run("ask", question, "--json")
    assert code == 0, err
    return json.loads(out)


@needs_font
def test_index_reports_formats_skips_with_reasons_and_notes(built) -> None:
    _, _, report = built
    skipped = {s["path"]: s["reason"] for s in report["skipped"]}
    for ext in FORMATS:
        assert "over the 1 MB limit (raise AIQA_MAX_FILE_MB)" in skipped[f"oversized.{ext}"]
        reason = skipped[f"damaged.{ext}"]
        assert any(word in reason for word in ("corrupt", "damaged", "not a valid")), reason
    expected_pdfs = 2 if have_ocr() else 1
    assert report["formats"] == {
        "hwp": {"indexed": 1, "skipped": 2},
        "hwpx": {"indexed": 1, "skipped": 2},
        "pdf": {"indexed": expected_pdfs, "skipped": 2},
        "pptx": {"indexed": 1, "skipped": 2},
        "xlsx": {"indexed": 1, "skipped": 2},
    }
    notes = {(n["path"], n["note"]) for n in report["notes"]}
    assert ("sales.xlsx", "hidden sheet '급여' skipped (unhide it in Excel to have it read)") in notes
    assert ("security.pptx", "hidden slide 4 skipped (show it in PowerPoint to have it read)") in notes


def _cited(answer: dict, source: str) -> list[dict]:
    assert not answer["abstained"], answer
    return [c for c in answer["citations"] if c["source"] == source]


@needs_font
def test_a_sheet_row_is_cited(built, monkeypatch, embedder) -> None:
    answer = ask(built, "부산 지점의 2025 하반기 매출은?", monkeypatch, embedder)
    cited = _cited(answer, "sales.xlsx")
    assert cited and cited[0]["quote"] == "부산 지점 | 800 | 950 | 이영희 |"
    assert cited[0]["section"] == "지점 매출" and "row 2" in cited[0]["locator"]
    assert "950" in answer["answer"]


@needs_font
def test_a_slide_bullet_is_cited_with_its_slide(built, monkeypatch, embedder) -> None:
    answer = ask(built, "USB 저장장치는 어떤 것만 사용할 수 있나?", monkeypatch, embedder)
    cited = _cited(answer, "security.pptx")
    assert cited and "보안 스티커를 붙인 것만" in cited[0]["quote"]
    assert cited[0]["locator"].startswith("p. 2,") and "(slide 2)" in cited[0]["section"]


@needs_font
def test_hwp_and_hwpx_table_rows_are_cited(built, monkeypatch, embedder) -> None:
    # (asked with "누리 명칭" in front, the answer's chance sits at the decision's threshold, and the int8
    # encoder's last digits, which differ between CPUs, decide whether it is refused)
    answer = ask(built, "보도자료의 담당부서는 어디인가?", monkeypatch, embedder)
    cited = _cited(answer, "noori.hwp")
    assert cited and "거대공공연구정책과" in cited[0]["quote"] and "table 1, row 1" in cited[0]["locator"]
    answer = ask(built, "개똥이의 수학 점수는?", monkeypatch, embedder)
    cited = _cited(answer, "grades.hwpx")
    assert cited and cited[0]["quote"] == "개똥이 | 89 | 65 | 78 |" and "78" in answer["answer"]


@needs_font
def test_every_pdf_unit_names_its_page_and_ocr_is_marked(built, monkeypatch, embedder) -> None:
    from aiqa.config import Settings
    from aiqa.stores.registry import load_index

    corpus, index, _ = built
    chunks = load_index(Settings(corpus_dir=corpus, index_dir=index)).chunks
    pdf = [c for c in chunks if c.source.endswith(".pdf")]
    assert pdf and all(c.locator.startswith(("p. ", "pp. ", "OCR, p. ")) for c in pdf)
    assert all(c.ocr == (c.source == "scan.pdf") for c in pdf)
    answer = ask(built, "사무실 출입증은 어디서 발급하나?", monkeypatch, embedder)
    assert _cited(answer, "handbook.pdf")[0]["locator"].startswith("p. 2,")
    if not have_ocr():
        pytest.skip("no Tesseract here: the OCR'd answer is not checked (scripts/test.sh installs it)")
    answer = ask(built, "재택근무 신청서는 언제까지 누구에게 제출하나?", monkeypatch, embedder)
    cited = _cited(answer, "scan.pdf")
    assert cited and cited[0]["locator"].startswith("OCR, p. 1,") and "팀장" in cited[0]["quote"]
