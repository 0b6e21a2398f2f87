"""Odd disks and odd files: damaged CURRENT and manifests, read-only volumes, links, names, zip bombs, huge texts."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from aiqa.build import build_index
from aiqa.config import Settings
from aiqa.errors import IndexMismatch, UnreadableDocument
from aiqa.stores.registry import load_index
from aiqa.stores.versions import CURRENT, current_version
from tests.test_index import build, make_settings
from tests.test_server import ThreadedServer, free_port, wait_until_up

HANBIT = "# 프로젝트 한빛\n\n프로젝트 한빛의 예산 책임자는 김서연이다. 예산은 매 분기 검토한다.\n"
AURORA = "# Aurora project\n\nThe Aurora project's launch code is ZX-4471.\n"


def no_model():
    raise AssertionError("nothing needed embedding")


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "AIQA_CORPUS": str(settings.corpus_dir), "AIQA_INDEX": str(settings.index_dir)}
    return subprocess.run(
        [sys.executable, "-m", "aiqa.cli", *args], capture_output=True, text=True, env=env, timeout=300
    )


# --- the index folder ---------------------------------------------------------------------------


def test_a_non_utf8_current_falls_back_and_the_next_run_repairs_it(tmp_path, cache_dir, embedder):
    settings = make_settings(tmp_path, cache_dir, hanbit=HANBIT)
    live = build(settings, embedder).index_version
    index_dir = settings.index_dir
    (index_dir / CURRENT).write_bytes(live.encode() + b"\xff")
    orphan = index_dir / "v-29990101T000000-deadbeef"  # what each failed try used to leave behind
    orphan.mkdir()
    (index_dir / ".tmp-v-leftover").mkdir()

    assert current_version(index_dir) == live and load_index(settings).version == live
    asked = cli(settings, "ask", "프로젝트 한빛의 예산 책임자는?", "--json")
    assert asked.returncode == 0 and "Traceback" not in asked.stderr and "김서연" in asked.stdout

    report = build_index(settings, embedder_factory=no_model)  # nothing changed: no model, no new version
    assert report.index_version == live
    assert (index_dir / CURRENT).read_text(encoding="utf-8") == live
    assert not orphan.exists() and not (index_dir / ".tmp-v-leftover").exists()
    assert {p.name for p in index_dir.glob("v-*")} == {live}


@pytest.mark.parametrize(
    "damage",
    [lambda m: m.pop("files"), lambda m: m.update(documents=[])],
    ids=["no files", "documents is a list"],
)
def test_a_damaged_manifest_is_one_line_and_a_rebuild(tmp_path, cache_dir, embedder, damage):
    settings = make_settings(tmp_path, cache_dir, hanbit=HANBIT)
    live = build(settings, embedder).index_version
    path = settings.index_dir / live / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    damage(manifest)
    path.write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(IndexMismatch, match=r"manifest.json is damaged.*aiqa index"):
        load_index(settings)
    asked = cli(settings, "ask", "한빛?")
    assert asked.returncode == 1 and asked.stderr.count("\n") == 1 and "aiqa index" in asked.stderr
    report = build(settings, embedder)
    assert report.index_version != live and report.embedded_chunks == report.chunks > 0
    assert load_index(settings).version == report.index_version


def test_a_damaged_new_version_leaves_the_good_one_served(tmp_path, cache_dir, embedder):
    from aiqa.engine import Engine

    settings = make_settings(tmp_path, cache_dir, hanbit=HANBIT)
    good = build(settings, embedder).index_version
    engine = Engine(settings, embedder=embedder).load()
    (settings.corpus_dir / "aurora.md").write_text(AURORA, encoding="utf-8")
    new = build(settings, embedder).index_version
    (settings.index_dir / new / "chunks.json").write_text("[]", encoding="utf-8")
    with ThreadedServer(settings, engine) as server:
        r = httpx.post(f"{server.url}/api/ask", json={"question": "프로젝트 한빛의 예산 책임자는?"}, timeout=60)
        assert r.status_code == 200 and "김서연" in r.json()["answer"]
        health = httpx.get(f"{server.url}/api/health").json()
    assert health["status"] == "degraded" and health["index_version"] == good
    assert new in health["warning"] and "aiqa index" in health["warning"] and good in health["warning"]


def _unshare_ok() -> bool:
    if not shutil.which("unshare") or os.geteuid() != 0:
        return False
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _unshare_ok(), reason="needs root and unshare to mount a read-only volume")
def test_a_read_only_index_and_corpus_are_served_read_only(tmp_path, cache_dir, embedder):
    settings = make_settings(tmp_path, cache_dir, hanbit=HANBIT)
    build(settings, embedder)
    port = free_port()
    mounts = " && ".join(
        f"mount --bind {d} {d} && mount -o remount,bind,ro {d}" for d in (settings.index_dir, settings.corpus_dir)
    )
    env = {**os.environ, "AIQA_CORPUS": str(settings.corpus_dir), "AIQA_INDEX": str(settings.index_dir)}
    env |= {"AIQA_ADMIN_TOKEN": "adm", "PYTHONPATH": os.pathsep.join(sys.path)}
    serve = f"exec {sys.executable} -m aiqa.cli serve --port {port}"
    proc = subprocess.Popen(
        ["unshare", "--mount", "sh", "-c", f"{mounts} && {serve}"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url)
        r = httpx.post(f"{url}/api/ask", json={"question": "프로젝트 한빛의 예산 책임자는?"}, timeout=60)
        assert r.status_code == 200 and "김서연" in r.json()["answer"]
        files = [("files", ("aurora.md", AURORA.encode()))]
        up = httpx.post(f"{url}/api/documents", files=files, headers={"Authorization": "Bearer adm"}, timeout=60)
        assert up.status_code == 503 and "make" in up.json()["error"] and "writable" in up.json()["error"]
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert "Traceback" not in err and "serving the existing index" in err


# --- the corpus folder --------------------------------------------------------------------------


def test_odd_corpus_entries_are_skipped_with_a_reason(tmp_path, cache_dir, embedder):
    settings = make_settings(tmp_path, cache_dir, hanbit=HANBIT)
    corpus = settings.corpus_dir
    secret = tmp_path / "secret.md"
    secret.write_text("# 비밀\n\n금고 비밀번호는 0000이다.\n", encoding="utf-8")
    (corpus / "outside.md").symlink_to(secret)
    (corpus / "dangling.md").symlink_to(tmp_path / "gone.md")
    (corpus / "loop.md").symlink_to(corpus / "loop.md")
    os.mkfifo(corpus / "pipe.md")
    (corpus / "inside.md").symlink_to(corpus / "hanbit.md")
    Path(os.fsdecode(bytes(corpus) + b"/bad\xffname.md")).write_text(AURORA, encoding="utf-8")

    report = build(settings, embedder)
    reasons = {s["path"]: s["reason"] for s in report.skipped}
    assert "outside the corpus" in reasons["outside.md"] and "AIQA_FOLLOW_SYMLINKS" in reasons["outside.md"]
    assert "dangling" in reasons["dangling.md"]
    assert "loop" in reasons["loop.md"]
    assert "FIFO" in reasons["pipe.md"]
    assert "not valid UTF-8" in reasons["bad\\xffname.md"]
    sources = {c.source for c in load_index(settings).chunks}
    assert sources == {"hanbit.md", "inside.md"}
    json.dumps(report.as_json(), ensure_ascii=False).encode("utf-8")  # the report travels as JSON

    followed = build(replace(settings, follow_symlinks=True), embedder)
    assert "outside.md" not in {s["path"] for s in followed.skipped}
    assert "outside.md" in {c.source for c in load_index(settings).chunks}


def _docx_bytes(text: str) -> bytes:
    import docx  # imported where used: collection stays light

    out = io.BytesIO()
    document = docx.Document()
    document.add_paragraph(text)
    document.save(out)
    return out.getvalue()


def _with_entries(data: bytes, entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO(data)
    with zipfile.ZipFile(out, "a", zipfile.ZIP_DEFLATED) as z:
        for name, content in entries.items():
            z.writestr(name, content)
    return out.getvalue()


def test_zip_bombs_are_refused_by_unpacked_size_and_entry_count(tmp_path):
    from aiqa.ingest import read_document

    good = _docx_bytes("The Aurora project's launch code is ZX-4471.")
    bomb = _with_entries(good, {"word/media/zeros.bin": b"\0" * 5_000_000})
    many = _with_entries(good, {f"word/media/{i}.bin": b"x" for i in range(60)})
    assert len(bomb) < 100_000  # small on disk
    path = tmp_path / "a.docx"
    caps = {"max_bytes": 10**8, "max_unzipped_bytes": 2_000_000, "max_zip_entries": 50}
    assert "ZX-4471" in read_document(path, tmp_path, data=good, **caps).text
    with pytest.raises(UnreadableDocument, match=r"unpacks to \d+ MB, over the cap of 2 MB.*AIQA_MAX_UNZIPPED_MB"):
        read_document(path, tmp_path, data=bomb, **caps)
    with pytest.raises(UnreadableDocument, match=r"entries, over the cap of 50.*AIQA_MAX_ZIP_ENTRIES"):
        read_document(path, tmp_path, data=many, **caps)


def test_a_slow_file_is_stopped_and_the_build_goes_on(tmp_path, cache_dir):
    from aiqa.ingest.collect import collect

    settings = make_settings(tmp_path, cache_dir, hanbit=HANBIT, aurora=AURORA)
    found = collect(replace(settings, read_timeout_s=0), {}, {})
    assert not found.fresh and set(found.skipped) == {"hanbit.md", "aurora.md"}
    assert all("AIQA_READ_TIMEOUT" in s["reason"] for s in found.skipped.values())
    found = collect(settings, {}, {})  # a fresh worker reads them
    assert sorted(d.source for d in found.fresh) == ["aurora.md", "hanbit.md"]


def test_a_document_over_the_chunk_cap_is_skipped(tmp_path, cache_dir, embedder):
    many = "# 긴 문서\n\n" + "\n\n".join(f"{i}번째 문단은 서로 다른 내용을 담고 있다." for i in range(30))
    settings = make_settings(tmp_path, cache_dir, hanbit=HANBIT, long=many)
    report = build(replace(settings, max_chunks_per_document=10), embedder)
    reasons = {s["path"]: s["reason"] for s in report.skipped}
    assert "over the cap of 10" in reasons["long.md"] and "AIQA_MAX_CHUNKS" in reasons["long.md"]
    assert {c.source for c in load_index(settings).chunks} == {"hanbit.md"}


# --- chunking a large text ----------------------------------------------------------------------


class _CountingText(str):
    """A document text that records every scan of it that starts at its beginning."""

    scans = 0

    def count(self, sub, start=None, end=None):  # type: ignore[override]
        if start in (None, 0):
            type(self).scans += 1
        return super().count(sub, start, end)


def test_chunk_locators_do_not_rescan_the_text_from_its_start():
    from aiqa.chunk import chunk_document
    from aiqa.records import Document

    text = "\n".join(f"{i}번째 줄은 문장으로 끝난다." for i in range(2000))
    _CountingText.scans = 0
    chunks = chunk_document(Document("big.txt", _CountingText(text), "0"), lambda s: len(s.split()), 64)
    assert len(chunks) > 100 and _CountingText.scans == 0
    assert chunks[-1].locator.startswith("line 2000") or "2000" in chunks[-1].locator


def test_locate_with_line_starts_matches_counting():
    from aiqa.text.layout import line_starts, locate

    text = "a\nbb\n\nccc\nd"
    starts = line_starts(text)
    for start in range(len(text)):
        for end in range(start + 1, len(text) + 1):
            assert locate(text, (), start, end, "", starts) == locate(text, (), start, end)
