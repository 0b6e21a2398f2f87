"""The on-disk index: round trip, refusals, incremental builds, the lock, and builds killed mid-way."""

from __future__ import annotations

import calendar
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from filelock import FileLock

import aiqa
import aiqa.stores.files
from aiqa.build import build_index
from aiqa.chunk import CHUNKER_VERSION, chunk_document, chunk_views
from aiqa.config import BUNDLED_MODEL, Settings
from aiqa.contract import ask_json
from aiqa.errors import EmptyCorpus, IndexBusy, IndexMismatch, IndexNotFound
from aiqa.index.format import FORMAT_VERSION
from aiqa.ingest import READERS_VERSION, file_sha256, read_document
from aiqa.stores.registry import load_index
from aiqa.stores.versions import CURRENT, current_version
from aiqa.text.tokens import count_tokens

from .conftest import REPO, REPORT, engine_over

SRC = Path(aiqa.__file__).resolve().parents[1]

HANBIT = """# 프로젝트 한빛

프로젝트 한빛의 예산 책임자는 김서연이다.

- 착수일은 2024년 3월 4일이다.
- 정기 회의는 매주 화요일 오전 10시에 열린다.
"""
AURORA = """# Aurora project

The Aurora project's launch code is ZX-4471.

The launch window opens in the second week of October.
"""


def no_model():
    raise AssertionError("the embedding model was loaded, but nothing needed embedding")


class Recording:
    """The real embedder, remembering which texts it was asked to embed and what it returned."""

    def __init__(self, inner):
        self.inner = inner
        self.texts: list[str] = []
        self.vectors: list[np.ndarray] = []

    def embed_passages(self, texts, **kwargs):
        self.texts.extend(texts)
        self.vectors.append(self.inner.embed_passages(texts, **kwargs))
        return self.vectors[-1]


def make_settings(tmp_path: Path, cache_dir: Path, **docs: str) -> Settings:
    """Settings for a fresh corpus under tmp_path holding `docs` (file stem -> Markdown text)."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for stem, text in docs.items():
        (corpus / f"{stem}.md").write_text(text, encoding="utf-8")
    return Settings(corpus_dir=corpus, index_dir=tmp_path / "index", cache_dir=cache_dir)


def build(settings: Settings, embedder):
    return build_index(settings, embedder_factory=lambda: embedder)


def rows_by_chunk(index) -> dict[tuple[str, int, int], bytes]:
    """Each chunk's stored vectors (all its views), as raw bytes, keyed by the chunk's source span."""
    matrix = index.vectors.reconstruct_n(0, index.vectors.ntotal)
    return {
        (c.source, c.start, c.end): matrix[index.offsets[i] : index.offsets[i + 1]].tobytes()
        for i, c in enumerate(index.chunks)
    }


# --- round trip --------------------------------------------------------------------------------


def test_round_trip_of_the_bundled_report(tmp_path, cache_dir, embedder):
    settings = make_settings(tmp_path, cache_dir)
    shutil.copy(REPORT, settings.corpus_dir)
    recording = Recording(embedder)
    report = build_index(settings, embedder_factory=lambda: recording)

    index = load_index(settings)
    source = REPORT.name
    expected = chunk_document(
        read_document(REPORT, REPORT.parent, max_bytes=10**8), count_tokens, settings.chunk_tokens
    )
    assert report.added == 1 and report.chunks == report.embedded_chunks == len(expected) > 10
    assert index.chunks == expected  # every field: texts, spans, sections, locators, cells
    assert [c.locator for c in index.chunks] == [c.locator for c in expected]
    text = index.documents[source].text
    assert all(c.text == text[c.start : c.end] for c in index.chunks)

    assert index.vectors.ntotal == sum(len(chunk_views(c)) for c in index.chunks) and index.vectors.d == 384
    # The stored vectors are exactly what the model returned, in chunk order, each chunk's views together.
    assert recording.texts == [view for c in expected for view in chunk_views(c)]
    stored = index.vectors.reconstruct_n(0, index.vectors.ntotal)
    assert np.array_equal(stored, np.vstack(recording.vectors))

    manifest = index.manifest
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["model"] == BUNDLED_MODEL == index.model
    assert manifest["dim"] == 384
    expected_doc = {"sha256": file_sha256(REPORT.read_bytes()), "chunks": len(expected), "groups": []}
    assert manifest["documents"] == {source: expected_doc}  # "groups": [] is readable by everyone
    assert manifest["chunking"] == {
        "version": CHUNKER_VERSION,
        "readers": READERS_VERSION,
        "max_tokens": settings.chunk_tokens,
    }
    built = calendar.timegm(time.strptime(manifest["built_at"], "%Y-%m-%dT%H:%M:%SZ"))
    assert abs(built - time.time()) < 600
    assert manifest["version"] == index.version == report.index_version == current_version(settings.index_dir)


# --- refusals ----------------------------------------------------------------------------------


@pytest.fixture
def small_index(tmp_path, cache_dir, embedder) -> Settings:
    settings = make_settings(tmp_path, cache_dir, hanbit=HANBIT)
    build(settings, embedder)
    return settings


def test_index_of_another_model_is_refused(small_index):
    with pytest.raises(IndexMismatch) as info:
        load_index(replace(small_index, embed_model="other/model"))
    message = str(info.value)
    assert BUNDLED_MODEL in message and "other/model" in message and "aiqa index" in message


def test_index_of_another_format_version_is_refused(small_index):
    folder = small_index.index_dir / current_version(small_index.index_dir)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    manifest["format_version"] = FORMAT_VERSION + 1
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(IndexMismatch, match=f"format {FORMAT_VERSION + 1}.*aiqa index"):
        load_index(small_index)


def _truncate(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _flip_middle_byte(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1 :]


@pytest.mark.parametrize(
    ("name", "damage"),
    [
        ("vectors.faiss", _truncate),
        ("vectors.faiss", _flip_middle_byte),
        ("chunks.json", _truncate),
        ("chunks.json", _flip_middle_byte),
        ("documents.json", _flip_middle_byte),
        ("manifest.json", _truncate),  # it holds the others' checksums, not its own
    ],
)
def test_damaged_index_file_is_refused_and_rebuilt(small_index, embedder, name, damage):
    live = current_version(small_index.index_dir)
    path = small_index.index_dir / live / name
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(IndexMismatch, match="aiqa index"):
        load_index(small_index)
    # The next build notices, re-embeds everything and writes a good version.
    report = build(small_index, embedder)
    assert report.index_version != live and report.embedded_chunks == report.chunks > 0
    assert len(load_index(small_index).chunks) == report.chunks


@pytest.mark.parametrize("state", ["missing", "empty", "dangling CURRENT"])
def test_no_index_is_reported_with_what_to_do(tmp_path, cache_dir, state):
    settings = make_settings(tmp_path, cache_dir)
    if state != "missing":
        settings.index_dir.mkdir()
    if state == "dangling CURRENT":
        (settings.index_dir / CURRENT).write_text("v-gone", encoding="utf-8")
    with pytest.raises(IndexNotFound, match="aiqa index"):
        load_index(settings)


# --- incremental builds ------------------------------------------------------------------------


def test_incremental_builds_embed_only_what_changed(tmp_path, cache_dir, embedder):
    settings = make_settings(tmp_path, cache_dir, hanbit=HANBIT)
    first = build(settings, embedder)
    assert (first.added, first.unchanged, first.embedded_chunks) == (1, 0, first.chunks)
    hanbit_rows = rows_by_chunk(load_index(settings))

    # No change: nothing embedded, nothing written, the model never loaded.
    again = build_index(settings, embedder_factory=no_model)
    assert (again.added, again.updated, again.removed, again.unchanged) == (0, 0, 0, 1)
    assert again.embedded_chunks == 0 and again.chunks == first.chunks
    assert again.index_version == first.index_version == current_version(settings.index_dir)

    # A new document: only its chunks are embedded; the other's vectors are reused as they were.
    aurora = settings.corpus_dir / "aurora.md"
    aurora.write_text(AURORA, encoding="utf-8")
    recording = Recording(embedder)
    added = build_index(settings, embedder_factory=lambda: recording)
    index = load_index(settings)
    aurora_chunks = [c for c in index.chunks if c.source == "aurora.md"]
    assert (added.added, added.updated, added.removed, added.unchanged) == (1, 0, 0, 1)
    assert added.embedded_chunks == len(aurora_chunks) > 0
    assert len(recording.texts) == sum(len(chunk_views(c)) for c in aurora_chunks)
    assert sorted(recording.texts) == sorted(view for c in aurora_chunks for view in chunk_views(c))
    assert added.chunks == len(index.chunks) == len(hanbit_rows) + len(aurora_chunks)
    assert index.vectors.ntotal == sum(len(chunk_views(c)) for c in index.chunks)
    rows = rows_by_chunk(index)
    assert {key: rows[key] for key in hanbit_rows} == hanbit_rows  # byte-identical

    # An edited document is re-embedded; its old text is gone.
    aurora.write_text(AURORA.replace("ZX-4471", "QK-9020"), encoding="utf-8")
    updated = build(settings, embedder)
    index = load_index(settings)
    assert (updated.added, updated.updated, updated.removed, updated.unchanged) == (0, 1, 0, 1)
    assert updated.embedded_chunks == sum(c.source == "aurora.md" for c in index.chunks)
    texts = " ".join(c.text for c in index.chunks)
    assert "QK-9020" in texts and "ZX-4471" not in texts
    assert index.manifest["documents"]["aurora.md"]["sha256"] == file_sha256(aurora.read_bytes())
    assert {key: rows_by_chunk(index)[key] for key in hanbit_rows} == hanbit_rows

    # A deleted document: its chunks, vectors and record go, and still nothing is embedded.
    aurora.unlink()
    removed = build_index(settings, embedder_factory=no_model)
    index = load_index(settings)
    assert (removed.added, removed.updated, removed.removed, removed.unchanged) == (0, 0, 1, 1)
    assert removed.embedded_chunks == 0 and removed.chunks == len(hanbit_rows) == len(index.chunks)
    assert index.vectors.ntotal == sum(len(chunk_views(c)) for c in index.chunks)
    assert {c.source for c in index.chunks} == {"hanbit.md"} == set(index.documents)
    assert set(index.manifest["documents"]) == {"hanbit.md"}
    assert rows_by_chunk(index) == hanbit_rows


def test_a_new_reader_or_chunker_version_re_reads_every_file(tmp_path, cache_dir, embedder, monkeypatch):
    settings = make_settings(tmp_path, cache_dir, hanbit=HANBIT)
    (settings.corpus_dir / "empty.md").write_text("", encoding="utf-8")
    first = build(settings, embedder)
    assert [s["path"] for s in first.skipped] == ["empty.md"]
    monkeypatch.setattr("aiqa.build.READERS_VERSION", 99)
    again = build(settings, embedder)
    assert (again.added, again.updated, again.unchanged) == (0, 1, 0)
    assert again.embedded_chunks == again.chunks > 0
    assert [s["path"] for s in again.skipped] == ["empty.md"]  # retried, and still refused
    assert load_index(settings).manifest["chunking"]["readers"] == 99


def test_load_reads_one_version_while_a_build_swaps_current(tmp_path, cache_dir, embedder, monkeypatch):
    settings = make_settings(tmp_path, cache_dir, hanbit=HANBIT)
    old = build(settings, embedder).index_version
    (settings.corpus_dir / "aurora.md").write_text(AURORA, encoding="utf-8")
    new = build(settings, embedder).index_version
    (settings.index_dir / CURRENT).write_text(old, encoding="utf-8")

    read_json = aiqa.stores.files._read_json

    def swap_after_manifest(path: Path):
        data = read_json(path)
        if path.name == "manifest.json":  # a concurrent build makes its version live right now
            (settings.index_dir / CURRENT).write_text(new, encoding="utf-8")
        return data

    monkeypatch.setattr(aiqa.stores.files, "_read_json", swap_after_manifest)
    index = load_index(settings)
    assert index.version == old and {c.source for c in index.chunks} == {"hanbit.md"}


# --- errors and the lock -----------------------------------------------------------------------


def test_empty_corpus_says_what_to_do(tmp_path, cache_dir):
    settings = make_settings(tmp_path, cache_dir)
    with pytest.raises(EmptyCorpus, match=r"no readable document.*add documents"):
        build_index(settings, embedder_factory=no_model)
    (settings.corpus_dir / "empty.txt").write_bytes(b"")
    (settings.corpus_dir / "tool.exe").write_bytes(b"MZ\x90\x00")
    with pytest.raises(EmptyCorpus, match=r"no readable document.*add documents"):
        build_index(settings, embedder_factory=no_model)
    assert current_version(settings.index_dir) is None


def test_missing_corpus_says_what_to_do(tmp_path, cache_dir):
    settings = Settings(corpus_dir=tmp_path / "nowhere", index_dir=tmp_path / "index", cache_dir=cache_dir)
    with pytest.raises(EmptyCorpus, match="does not exist: create it"):
        build_index(settings, embedder_factory=no_model)


def test_a_held_lock_makes_the_build_wait_its_turn(tmp_path, cache_dir, embedder):
    settings = make_settings(tmp_path, cache_dir, hanbit=HANBIT)
    settings.index_dir.mkdir()
    with FileLock(str(settings.index_dir / ".lock")):
        with pytest.raises(IndexBusy) as info:
            build_index(settings, embedder_factory=no_model)
        assert "another `aiqa index` is building" in str(info.value) and "wait for it" in str(info.value)
        assert current_version(settings.index_dir) is None
    assert build(settings, embedder).added == 1
    assert len(load_index(settings).chunks) > 0


# --- builds killed mid-way ---------------------------------------------------------------------

# Runs one build in a child process that SIGKILLs itself at the moment named by argv[1]. What is
# under test is how the files are written and swapped, so the child embeds with the fake model.
CHILD = r"""
import os, signal, sys
from pathlib import Path

import aiqa.build as build
import aiqa.stores.files as files
from aiqa.config import Settings
from aiqa.stores.versions import CURRENT
from tests.fakes import FakeEmbedder

moment, corpus, index_dir = sys.argv[1:4]
settings = Settings(corpus_dir=Path(corpus), index_dir=Path(index_dir))
model = FakeEmbedder(dim=384)


def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)


class DiesWhileEmbedding:
    def embed_passages(self, texts, **kwargs):
        model.embed_passages(texts[:1])  # the model is at work...
        die()  # ...when the process is killed


if moment == "files written":  # the new version is complete under .tmp-*, not yet renamed
    files._fsync_tree = die
elif moment == "before CURRENT swap":  # the version folder is in place, CURRENT still old
    real_replace = os.replace

    def replace(src, dst):
        if Path(dst).name == CURRENT:
            die()
        return real_replace(src, dst)

    os.replace = replace
factory = DiesWhileEmbedding if moment == "embedding" else (lambda: model)
build.build_index(settings, embedder_factory=factory)
print("the build finished: it was not killed")
"""


def run_killed_build(settings: Settings, moment: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "AIQA_CACHE_DIR": str(settings.cache_dir),
        "PYTHONPATH": os.pathsep.join([str(SRC), str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    args = [sys.executable, "-c", CHILD, moment, str(settings.corpus_dir), str(settings.index_dir)]
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.parametrize("moment", ["embedding", "files written", "before CURRENT swap"])
def test_killed_build_leaves_the_previous_index_live(tmp_path, cache_dir, embedder, moment):

    settings = make_settings(tmp_path, cache_dir, hanbit=HANBIT)
    live = build(settings, embedder).index_version
    before = load_index(settings).chunks
    (settings.corpus_dir / "aurora.md").write_text(AURORA, encoding="utf-8")

    child = run_killed_build(settings, moment)
    assert child.returncode == -signal.SIGKILL, child.stdout + child.stderr

    # The kill happened where intended: these are its leftovers.
    index_dir = settings.index_dir
    tmp = list(index_dir.glob(".tmp-*"))
    versions = {p.name for p in index_dir.glob("v-*")}
    if moment == "embedding":
        assert not tmp and versions == {live}
    elif moment == "files written":
        assert len(tmp) == 1 and (tmp[0] / "manifest.json").exists() and versions == {live}
    else:
        assert not tmp and len(versions) == 2 and list(index_dir.glob(f".{CURRENT}.*"))

    # The previous version is still the one served, whole.
    assert current_version(index_dir) == live
    index = load_index(settings)
    assert index.version == live and index.chunks == before
    engine = engine_over(settings, embedder)
    answer = ask_json(engine, "프로젝트 한빛의 예산 책임자는 누구인가?")
    assert not answer["abstained"]
    assert any(c["source"] == "hanbit.md" and "김서연" in c["quote"] for c in answer["citations"])

    # The next build does the work and clears every leftover; the version live until now stays.
    report = build(settings, embedder)
    assert (report.added, report.unchanged) == (1, 1)
    assert {c.source for c in load_index(settings).chunks} == {"hanbit.md", "aurora.md"}
    assert not list(index_dir.glob(".tmp-*")) and not list(index_dir.glob(f".{CURRENT}.*"))
    assert {p.name for p in index_dir.glob("v-*")} == {report.index_version, live}
