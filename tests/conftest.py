"""Shared fixtures: every path points into temporary folders; the real model and index are built once.

The converted embedding model is kept in pytest's cache folder (.pytest_cache/) between runs:
converting it is tested on its own in test_embed.py, and every other test only needs it done.
The `fake_*` fixtures are the same pipeline over tests/fakes.FakeEmbedder, for fast unit tests.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from .fakes import FakeEmbedder

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "corpus"
REPORT = CORPUS / "us-china-ai-race.txt"
# Questions about the bundled report, with gold strings, written for the tests (tests/data/README.md).
REPORT_QUESTIONS = REPO / "tests" / "data" / "report_questions.jsonl"


@pytest.fixture(scope="session")
def cache_dir(request, tmp_path_factory) -> Path:
    """One model cache for the whole run; subprocesses inherit it through the environment."""
    if os.environ.get("AIQA_TEST_CACHE"):
        path = Path(os.environ["AIQA_TEST_CACHE"])
    elif request.config.cache is not None:  # None with `-p no:cacheprovider`
        path = request.config.cache.mkdir("aiqa-model-cache")
    else:
        path = tmp_path_factory.mktemp("cache")
    os.environ["AIQA_CACHE_DIR"] = str(path)
    return path


@pytest.fixture(autouse=True)
def _isolated_paths(monkeypatch, tmp_path, cache_dir):
    """No test reads or writes the repo's own corpus/ or index/ by accident."""
    monkeypatch.setenv("AIQA_CORPUS", str(tmp_path / "corpus"))
    monkeypatch.setenv("AIQA_INDEX", str(tmp_path / "index"))
    for name in ("AIQA_API_TOKEN", "AIQA_ALLOWED_ORIGINS", "AIQA_EMBED_MODEL", "AIQA_CHUNK_TOKENS", "AIQA_MAX_FILE_MB"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def embedder(cache_dir):
    from aiqa.config import BUNDLED_MODEL
    from aiqa.embed import load_embedder

    return load_embedder(BUNDLED_MODEL, cache_dir)


@pytest.fixture
def shared_model(monkeypatch, embedder):
    """Code that loads the bundled model in this process (the CLI, Engine) gets the session's copy."""
    import aiqa.embed
    from aiqa.config import BUNDLED_MODEL

    load = aiqa.embed.load_embedder
    monkeypatch.setattr(
        aiqa.embed, "load_embedder", lambda model, cache: embedder if model == BUNDLED_MODEL else load(model, cache)
    )
    return embedder


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


@pytest.fixture(scope="session")
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture(scope="session")
def fake_settings(tmp_path_factory, cache_dir, fake_embedder):
    """Settings of an index of the bundled report built with the fake embedder (no model loaded)."""
    from aiqa.config import Settings
    from aiqa.index import build_index

    root = tmp_path_factory.mktemp("fake-report")
    shutil.copytree(CORPUS, root / "corpus")
    settings = Settings(corpus_dir=root / "corpus", index_dir=root / "index", cache_dir=cache_dir)
    settings = replace(settings, embed_model=fake_embedder.name)
    build_index(settings, embedder_factory=lambda: fake_embedder)
    return settings


@pytest.fixture(scope="session")
def fake_engine(fake_settings, fake_embedder):
    from aiqa.engine import Engine

    engine = Engine(fake_settings)
    engine._embedder = fake_embedder
    return engine.load()
