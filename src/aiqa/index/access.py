"""Who may read which document: the corpus's access rules, and one reader's view of an index version.

Groups are decided when the index is built and stored with every chunk (`Chunk.groups`; an empty
tuple means everyone). They come from the corpus's rules file, `.access.toml` at its top:

    folders = true              # corpus/hr/... is readable by group "hr"; the top level by everyone
    [groups]                    # glob -> groups; the last matching rule wins over the folder's group
    "finance/**" = ["finance", "exec"]
    "hr/holidays.md" = ["*"]    # "*": everyone

Without the file every document is readable by everyone, as before groups existed. A reader who
belongs to any of a document's groups may read it.

A reader sees a `view` of the version: only the chunks and documents they may read, with keyword
postings and term statistics rebuilt over those chunks alone and a dense search that masks the other
rows before ranking. So the rest of the path (retrieval, the answer layer's corpus statistics, the
decision, the LLM prompt) runs over the view exactly as over a whole index, and nothing that only a
restricted document holds (its words, their rarity, its names, its passages) can shape an answer.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aiqa.errors import BadSetting
from aiqa.index.format import Allowed, LoadedIndex, Search
from aiqa.index.keyword import KeywordIndex, keywords_from_rows

RULES_FILE = ".access.toml"
EVERYONE = "*"
_GROUP = re.compile(r"[^\s,*][^,]{0,99}")


def check_group(name: Any, where: str) -> str:
    """A group name as given (trimmed); raise BadSetting when it cannot be one."""
    if not isinstance(name, str) or not _GROUP.fullmatch(name.strip()):
        raise BadSetting(f"{where}: group {name!r} is not a group name (1-100 characters, no comma): fix it")
    return name.strip()


def _glob(pattern: str) -> re.Pattern[str]:
    """A corpus glob as a regex: `**` crosses folders, `*` and `?` stay within one."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        else:
            ch = pattern[i]
            out.append("[^/]*" if ch == "*" else "[^/]" if ch == "?" else re.escape(ch))
            i += 1
    return re.compile("".join(out))


@dataclass(frozen=True)
class AccessRules:
    """The corpus's access rules: its folders' groups and glob rules (empty: everyone reads everything)."""

    folders: bool = False
    rules: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = ()

    @classmethod
    def of_corpus(cls, corpus: Path) -> AccessRules:
        """Read `corpus/.access.toml`; raise BadSetting saying what is wrong with it."""
        path = corpus / RULES_FILE
        if not path.is_file():
            return cls()
        where = str(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise BadSetting(f"{where} is not valid TOML ({exc}): fix it, or remove it to let everyone read") from None
        unknown = set(data) - {"folders", "groups"}
        if unknown:
            raise BadSetting(f"{where}: unknown key(s) {', '.join(sorted(unknown))}: use `folders` and `[groups]`")
        folders = data.get("folders", True)
        if not isinstance(folders, bool):
            raise BadSetting(f"{where}: `folders` must be true or false")
        table = data.get("groups", {})
        if not isinstance(table, dict):
            raise BadSetting(f'{where}: `groups` must be a table of "glob" = ["group", ...]')
        rules = []
        for glob, groups in table.items():
            if not isinstance(groups, list) or not groups:
                raise BadSetting(f'{where}: "{glob}" needs a list of groups, like ["hr"] (["*"]: everyone)')
            names = tuple(sorted({g if g == EVERYONE else check_group(g, f"{where}, {glob!r}") for g in groups}))
            rules.append((_glob(glob.strip("/")), () if EVERYONE in names else names))
        return cls(folders, tuple(rules))

    def groups_of(self, source: str) -> tuple[str, ...]:
        """The groups that may read one document (its path in the corpus); () = everyone."""
        groups: tuple[str, ...] = ()
        if self.folders and "/" in source:
            groups = (source.split("/", 1)[0],)
        for pattern, named in self.rules:
            if pattern.fullmatch(source):
                groups = named
        return groups


def readable(groups: Sequence[str], reader: frozenset[str] | None) -> bool:
    """Whether a reader (their groups; None: every document) may read what `groups` guard."""
    return reader is None or not groups or not reader.isdisjoint(groups)


def view_key(index: LoadedIndex, reader: frozenset[str] | None) -> frozenset[str] | None:
    """The reader's groups that guard something in the index: readers with the same key see the same view.

    None when the reader sees the whole version (all its groups, or a version without restrictions)."""
    present = index_groups(index)
    if reader is None or present <= reader:
        return None
    return reader & present


def index_groups(index: LoadedIndex) -> frozenset[str]:
    return frozenset(g for c in index.chunks for g in c.groups) | frozenset(
        g for d in index.manifest.get("documents", {}).values() for g in d.get("groups", ())
    )


def row_filter(rows: np.ndarray) -> str:
    """A Milvus filter expression on the `row` field that holds exactly these sorted rows: one range
    per run of consecutive rows (a document's chunks are consecutive, so runs are few)."""
    if not len(rows):
        return "row < 0 and row > 0"
    breaks = np.flatnonzero(np.diff(rows) != 1)
    starts = np.concatenate([[rows[0]], rows[breaks + 1]])
    ends = np.concatenate([rows[breaks], [rows[-1]]])
    return " or ".join(
        f"row == {a}" if a == b else f"(row >= {a} and row <= {b})" for a, b in zip(starts, ends, strict=True)
    )


class ViewSearch:
    """One reader's search over a version: the store's dense search masked to their rows, their own postings.

    Row numbers are the view's: its chunks' views, chunk by chunk, as in any version.
    """

    def __init__(self, base: Search, allowed: Allowed, keywords: KeywordIndex, total_rows: int):
        self.base = base
        self.allowed = allowed
        self.keywords = keywords
        self.to_view = np.full(total_rows, -1, dtype=np.int64)
        self.to_view[allowed.rows] = np.arange(len(allowed.rows))

    @property
    def vector_count(self) -> int:
        return len(self.allowed.rows)

    def dense(self, vector: np.ndarray, k: int, allowed: Allowed | None = None) -> tuple[np.ndarray, np.ndarray]:
        mine = self.allowed if allowed is None else Allowed(self.allowed.rows[allowed.rows], allowed.groups)
        scores, ids = self.base.dense(vector, k, mine)
        found = ids >= 0
        mapped = np.where(found, self.to_view[np.where(found, ids, 0)], -1)
        return scores, mapped

    def keyword(self, terms: Sequence[str]) -> np.ndarray:
        return self.keywords.scores(terms)

    def rows(self, start: int, n: int) -> np.ndarray:
        return self.base.rows(int(self.allowed.rows[start]), n)  # a chunk's views are consecutive in both

    def rows_of(self, spans: Sequence[tuple[int, int]]) -> list[np.ndarray]:
        return self.base.rows_of([(int(self.allowed.rows[start]), n) for start, n in spans])

    def all_rows(self) -> np.ndarray:
        return self.base.all_rows()[self.allowed.rows]


def view(index: LoadedIndex, reader: frozenset[str]) -> LoadedIndex:
    """The part of a version that a reader with these groups may read, searchable as a version of its own."""
    keep = np.array([i for i, c in enumerate(index.chunks) if readable(c.groups, reader)], dtype=np.int64)
    offsets = index.offsets
    rows = (
        np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in keep]).astype(np.int64)
        if len(keep)
        else np.zeros(0, dtype=np.int64)
    )
    listed = index.manifest.get("documents", {})
    guards = {c.source: c.groups for c in index.chunks}  # a version's manifest names them too (build.py)
    guards |= {src: tuple(d["groups"]) for src, d in listed.items() if "groups" in d}
    documents = {src: doc for src, doc in index.documents.items() if readable(guards.get(src, ()), reader)}
    manifest = {
        **index.manifest,
        "documents": {src: d for src, d in listed.items() if src in documents},
        "skipped": {},
        "chunk_count": len(keep),
    }
    keywords = subset_keywords(index.keywords, keep)
    search = ViewSearch(index.search, Allowed(rows, reader), keywords, int(offsets[-1]))
    chunks = [index.chunks[i] for i in keep]
    return LoadedIndex(index.path, index.version, manifest, chunks, documents, None, keywords, search)


def subset_keywords(keywords: KeywordIndex, keep: np.ndarray) -> KeywordIndex:
    """The postings of some chunks only, as if they were the whole corpus: its terms, lengths and idf."""
    ptr = keywords.chunk_ptr
    starts, ends = ptr[keep], ptr[keep + 1]
    lengths = ends - starts
    take = (
        np.concatenate([np.arange(s, e) for s, e in zip(starts, ends, strict=True)]).astype(np.int64)
        if len(keep)
        else np.zeros(0, dtype=np.int64)
    )
    old_terms = np.asarray(keywords.chunk_terms)[take]
    used, new_terms = np.unique(old_terms, return_inverse=True)
    terms = [keywords.terms[j] for j in used]
    chunk_ptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    counts = np.asarray(keywords.chunk_counts)[take]
    return keywords_from_rows(terms, chunk_ptr, new_terms.astype(np.int32), counts.astype(np.int32))
