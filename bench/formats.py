"""Read time per MB for each format, per OCR'd page, OCR character accuracy; and HWP parsers compared.

Usage:
  flock /tmp/aiqa-bench.lock .venv/bin/python bench/formats.py [--json bench/results/formats.json]
  python bench/formats.py --compare-hwp DIR [DIR...]   # in a venv that also has the candidate parsers

The first form makes a file of each format (a 3,000-row workbook, a 60-slide deck, a Word file and
a text PDF of the same Korean prose; the HWP and HWPX files of tests/data/formats) and reads each
through read_document several times, in this process (the worker adds a pickle round trip); then
OCRs the test scan (tests/test_ocr.py) and scores its characters against the source text.

The second reads every .hwp/.hwpx file under the folders with each parser that is importable (aiqa's
own readers; hwp-hwpx-parser, Apache-2.0; gethwp, MIT; extract-hwp, BSD-3; pyhwp, AGPL-3.0, as the
reference only) and scores: files read, time, recall of Hancom's own preview text (the PrvText the
word processor stores in every file) in the output, table rows kept as rows, headings, and what each
does with damaged copies (truncated; a section overwritten with junk): a clean refusal, text
anyway, or a crash of another kind.
"""

from __future__ import annotations

import argparse
import difflib
import io
import json
import statistics
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "src"), str(REPO)]

from aiqa.errors import UnreadableDocument  # noqa: E402
from aiqa.ingest import read_document  # noqa: E402

PROSE = "연차 휴가는 입사 1년 후 15일이 주어지며, 사용하지 않은 휴가는 다음 해로 이월할 수 없습니다. "


def _make(folder: Path) -> dict[str, Path]:
    import docx
    import openpyxl
    from pptx import Presentation
    from tests.realfiles import make_pdf
    from tests.test_formats_office import make_hwpx

    files = {}
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["사번", "이름", "부서", "입사일", "연차", "비고"])
    for i in range(3000):
        sheet.append([10000 + i, f"직원{i}", f"부서{i % 17}", "2020-03-02", 15 + i % 5, PROSE[: 20 + i % 30]])
    files["xlsx"] = folder / "book.xlsx"
    book.save(files["xlsx"])
    deck = Presentation()
    for i in range(60):
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = f"{i + 1}. 휴가 규정"
        body = slide.placeholders[1].text_frame
        body.text = PROSE
        for _ in range(4):
            body.add_paragraph().text = PROSE
    files["pptx"] = folder / "deck.pptx"
    deck.save(files["pptx"])
    word = docx.Document()
    for _ in range(400):
        word.add_paragraph(PROSE * 3)
    files["docx"] = folder / "word.docx"
    word.save(files["docx"])
    files["pdf"] = folder / "text.pdf"
    make_pdf(files["pdf"], [[PROSE * 3] * 8 for _ in range(20)])
    data = REPO / "tests" / "data" / "formats"
    files["hwp"] = data / "noori.hwp"  # no writer of HWP 5 exists outside Hancom: a real file, small
    files["hwpx"] = folder / "long.hwpx"
    make_hwpx(files["hwpx"], repeat=2000)
    return files


def _time(path: Path, repeat: int) -> tuple[float, int]:
    times, chars = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        doc = read_document(path, path.parent, max_bytes=500_000_000)
        times.append(time.perf_counter() - started)
        chars = len(doc.text)
    return statistics.median(times), chars


def read_speeds(repeat: int) -> dict:
    from tests.test_ocr import SCAN_LINES, char_accuracy, make_scan

    from aiqa.ingest import ocr

    out: dict = {"formats": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for fmt, path in _make(Path(tmp)).items():
            seconds, chars = _time(path, repeat)
            mb = path.stat().st_size / 1e6
            out["formats"][fmt] = {
                "file_mb": round(mb, 3),
                "chars": chars,
                "read_s": round(seconds, 4),
                "s_per_mb": round(seconds / mb, 3),
                "chars_per_s": round(chars / seconds),
            }
        if ocr.missing() is None:
            scan = Path(tmp) / "scan.pdf"
            make_scan(scan, pages=3)
            seconds, _ = _time(scan, 1)
            one = Path(tmp) / "one.pdf"
            make_scan(one)
            doc = read_document(one, one.parent, max_bytes=500_000_000)
            out["ocr"] = {
                "pages": 3,
                "s_per_page": round(seconds / 3, 2),
                "char_accuracy": round(char_accuracy(doc.text, "\n".join(SCAN_LINES)), 4),
                "languages": ocr.LANGUAGES,
                "config": ocr.CONFIG,
            }
        else:
            out["ocr"] = {"skipped": ocr.missing()}
    return out


# --- HWP parsers side by side ---------------------------------------------------------------------


def _aiqa(path: Path) -> str:
    try:
        return read_document(path, path.parent, max_bytes=500_000_000).text
    except UnreadableDocument as exc:
        if "no readable text" in str(exc):
            return ""
        raise


def _candidates() -> dict[str, Callable[[Path], str]]:
    found: dict[str, Callable[[Path], str]] = {"aiqa (own, MIT)": _aiqa}
    try:
        from hwp_hwpx_parser import Reader

        def hhp(path: Path) -> str:
            with Reader(str(path)) as r:
                return r.text

        found["hwp-hwpx-parser 1.0.0 (Apache-2.0)"] = hhp
    except ImportError:
        pass
    try:
        import gethwp

        found["gethwp 1.1.1 (MIT)"] = lambda p: (gethwp.read_hwpx if p.suffix == ".hwpx" else gethwp.read_hwp)(str(p))
    except ImportError:
        pass
    try:
        from extract_hwp import extract_text_from_hwp

        def extract_hwp(path: Path) -> str:
            text, error = extract_text_from_hwp(str(path))
            if error and not text and "빈 내용" not in error:  # it returns its errors instead of raising
                raise RuntimeError(error)
            return text

        found["extract-hwp 0.2.1 (BSD-3)"] = extract_hwp
    except ImportError:
        pass
    try:
        import subprocess

        subprocess.run(["hwp5txt", "--help"], capture_output=True, check=True)

        def pyhwp(path: Path) -> str:
            if path.suffix == ".hwpx":
                raise NotImplementedError("pyhwp reads HWP 5 only")
            done = subprocess.run(["hwp5txt", str(path)], capture_output=True, timeout=20)
            if done.returncode:
                raise RuntimeError(done.stderr.decode(errors="replace")[-200:])
            return done.stdout.decode("utf-8", "replace")

        found["pyhwp 0.1b15 (AGPL-3.0, reference)"] = pyhwp
    except (OSError, subprocess.CalledProcessError):
        pass
    return found


def _preview(path: Path) -> str:
    """Hancom's own preview text of a file (the first ~1,000 characters, cells in <...>)."""
    data = path.read_bytes()
    if path.suffix == ".hwpx":
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            return (
                z.read("Preview/PrvText.txt").decode("utf-8", "replace")
                if "Preview/PrvText.txt" in z.namelist()
                else ""
            )
    import olefile

    with olefile.OleFileIO(io.BytesIO(data)) as ole:
        return ole.openstream("PrvText").read().decode("utf-16-le", "replace") if ole.exists("PrvText") else ""


def _squash(text: str) -> str:
    return "".join(ch for ch in text if ch.isalnum())


def _recall(reference: str, text: str) -> float | None:
    ref = _squash(reference.replace("<", " ").replace(">", " "))[:600]
    if len(ref) < 20:
        return None
    out = _squash(text)[: len(ref) * 3]
    matcher = difflib.SequenceMatcher(None, ref, out, autojunk=False)
    return sum(b.size for b in matcher.get_matching_blocks()) / len(ref)


def _damaged(path: Path, folder: Path) -> list[Path]:
    data = path.read_bytes()
    cut = folder / f"truncated{path.suffix}"
    cut.write_bytes(data[: len(data) // 2])
    junk = folder / f"junk{path.suffix}"
    middle = len(data) // 2
    junk.write_bytes(data[:middle] + bytes(range(256)) * 8 + data[middle + 2048 :])
    return [cut, junk]


# Table rows of the test files whose cells should come out on one line, in order (a citable row).
ROW_PROBES = {
    "hwpjs_noori.hwp": [["배포일시", "2018. 9. 3.(월) 09:00", "담당부서", "거대공공연구정책과"]],
    "sample_hwp_merging-cell.hwp": [["3,0", "3,1", "3,2", "3,3"]],
    "testFile_tool_textextractor_Table.hwpx": [["개똥이", "89", "65", "78"], ["이름", "국어", "영어", "수학"]],
    "testFile_error_20230728_test.hwpx": [["공식 행사", "18:00 ~ 18:30", "개막 퍼포먼스 등"]],
    "sample-5017.hwp": [],
}


def _row(line: str) -> bool:
    """A table row with some text in it (not a Markdown separator, not a row of blank cells)."""
    return line.count("|") >= 2 and "---" not in line and bool(line.replace("|", "").strip())


def _in_order(cells: list[str], line: str) -> bool:
    at = 0
    for cell in cells:
        at = line.find(cell, at)
        if at < 0:
            return False
        at += len(cell)
    return True


def compare_hwp(folders: list[Path], only: list[str] | None = None) -> dict:
    files = sorted(p for f in folders for p in f.rglob("*") if p.suffix in (".hwp", ".hwpx"))
    out = {}
    for name, parse in _candidates().items():
        if only and not any(name.startswith(prefix) for prefix in only):
            continue
        row = {"files": 0, "read": 0, "failed": 0, "seconds": 0.0, "recall": []}
        row |= {"table_rows": 0, "rows_on_one_line": 0, "headings": 0}
        damage = {"refused": 0, "text anyway": 0}
        for path in files:
            row["files"] += 1
            started = time.perf_counter()
            try:
                text = parse(path)
                row["read"] += 1
            except Exception:
                row["failed"] += 1
                continue
            finally:
                row["seconds"] += time.perf_counter() - started
            lines = text.split("\n")
            row["table_rows"] += sum(1 for line in lines if _row(line))
            for cells in ROW_PROBES.get(path.name, []):
                row["rows_on_one_line"] += any(_in_order(cells, line) for line in lines)
            row["headings"] += sum(1 for line in lines if line.startswith("#"))
            if (r := _recall(_preview(path), text)) is not None:
                row["recall"].append(r)
            with tempfile.TemporaryDirectory() as tmp:
                for bad in _damaged(path, Path(tmp)):
                    try:
                        parse(bad)
                        damage["text anyway"] += 1
                    except Exception:
                        damage["refused"] += 1
        recalls = row.pop("recall")
        row["preview_recall"] = round(statistics.mean(recalls), 3) if recalls else None
        row["seconds"] = round(row["seconds"], 2)
        row["damaged_copies"] = damage
        out[name] = row
        print(name, json.dumps(row, ensure_ascii=False), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--compare-hwp", nargs="+", type=Path, metavar="DIR")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="compare only the parsers whose names start so")
    args = parser.parse_args()
    result = compare_hwp(args.compare_hwp, args.only) if args.compare_hwp else read_speeds(args.repeat)
    text = json.dumps(result, ensure_ascii=False, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
