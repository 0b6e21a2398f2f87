"""Shared fixtures: every path points into temporary folders; the real model and index are built once."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "corpus"
REPORT = CORPUS / "us-china-ai-race.txt"
DEV_SET = Path(os.environ.get("AIQA_DEV_SET", REPO.parent / "shared" / "eval" / "dev.jsonl"))


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """One model cache for the whole run; subprocesses inherit it through the environment."""
    path = Path(os.environ.get("AIQA_TEST_CACHE") or tmp_path_factory.mktemp("cache"))
    os.environ["AIQA_CACHE_DIR"] = str(path)
    return path


@pytest.fixture(autouse=True)
def _isolated_paths(monkeypatch, tmp_path, cache_dir):
    """No test reads or writes the repo's own corpus/ or index/ by accident."""
    monkeypatch.setenv("AIQA_CORPUS", str(tmp_path / "corpus"))
    monkeypatch.setenv("AIQA_INDEX", str(tmp_path / "index"))
    monkeypatch.delenv("AIQA_API_TOKEN", raising=False)
    monkeypatch.delenv("AIQA_ALLOWED_ORIGINS", raising=False)
    monkeypatch.delenv("AIQA_EMBED_MODEL", raising=False)


@pytest.fixture(scope="session")
def embedder(cache_dir):
    from aiqa.config import BUNDLED_MODEL
    from aiqa.embed import load_embedder

    return load_embedder(BUNDLED_MODEL, cache_dir)


@pytest.fixture(scope="session")
def report_settings(tmp_path_factory, cache_dir, embedder):
    """Settings of an index built once from the bundled report."""
    from aiqa.config import Settings
    from aiqa.index import build_index

    root = tmp_path_factory.mktemp("report")
    shutil.copytree(CORPUS, root / "corpus")
    settings = Settings(corpus_dir=root / "corpus", index_dir=root / "index", cache_dir=cache_dir)
    build_index(settings, embedder_factory=lambda: embedder)
    return settings


@pytest.fixture(scope="session")
def engine(report_settings, embedder):
    from aiqa.engine import Engine

    engine = Engine(report_settings)
    engine._embedder = embedder
    return engine.load()
