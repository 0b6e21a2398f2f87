"""Rebuilding from a folder of real files, end to end: `aiqa index --json`, cited answers, live reload."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass

import pytest

from aiqa.chunk import chunk_views
from aiqa.config import Settings
from aiqa.contract import ask_json
from aiqa.stores.registry import load_index

from .conftest import engine_over
from .realfiles import (
    MEMO,
    NAV_TEXT,
    PDF_ANSWER,
    PDF_FACT,
    PDF_PAGE_1,
    PDF_QUESTION,
    PDF_TITLE,
    READABLE,
    SCRIPT_SECRET,
    SKIPPED,
    make_pdf,
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
def built(first_index) -> Built:
    """The corpus of real files, indexed once by a real `aiqa index --json --strict` (conftest.py)."""
    settings, process = first_index
    first = process.result()
    return Built(settings, first, json.loads(first.stdout) if first.stdout.strip() else {})


@pytest.fixture(scope="module")
def qa(built, embedder):
    return engine_over(built.settings, embedder)


def test_index_json_reports_what_was_added_and_skipped(built):
    assert built.first.returncode == 1, built.first.stderr  # --strict: files were skipped
    assert_quiet(built.first.stderr)
    report = built.report
    index = load_index(built.settings)
    assert (report["added"], report["updated"], report["removed"], report["unchanged"]) == (4, 0, 0, 0)
    assert report["chunks"] == report["embedded_chunks"] == len(index.chunks)
    assert index.vectors.ntotal == sum(len(chunk_views(c)) for c in index.chunks)
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
    result = ask_json(qa, question)
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

    # A copy of the built corpus and index, so the other tests keep theirs.
    shutil.copytree(built.settings.corpus_dir, tmp_path / "corpus")
    shutil.copytree(built.settings.index_dir, tmp_path / "index")
    settings = Settings(
        corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index", cache_dir=built.settings.cache_dir
    )
    engine = engine_over(settings, embedder)
    question = "What is the Aurora project's launch code?"
    before = ask_json(engine, question)
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
    after = ask_json(engine, question)
    assert engine.index.version == report["index_version"] != built.report["index_version"]
    assert after["abstained"] or not any(c["source"] == "aurora.docx" for c in after["citations"])
    assert "ZX-4471" not in after["answer"]
    assert all(p["source"] != "aurora.docx" for p in after["passages"])
    still = ask_json(engine, "별빛 회의실 예약 담당자는 누구인가?")
    assert any(c["source"] == "memo.txt" and "최민준" in c["quote"] for c in still["citations"])


def test_fact_on_page_2_of_a_short_pdf_is_cited_on_page_2(tmp_path, cache_dir, embedder):
    from aiqa.build import build_index

    settings = Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index", cache_dir=cache_dir)
    settings.corpus_dir.mkdir()
    make_pdf(settings.corpus_dir / "short.pdf", [[PDF_TITLE, PDF_PAGE_1[0]], [PDF_FACT]])
    build_index(settings, embedder_factory=lambda: embedder)
    engine = engine_over(settings, embedder)
    result = ask_json(engine, PDF_QUESTION)
    cited = [c for c in result["citations"] if PDF_ANSWER in c["quote"]]
    assert cited and all("p. 2" in c["locator"] for c in cited), result["citations"]
