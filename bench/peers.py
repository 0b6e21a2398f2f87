"""Compare aiqa's retrieval with LangChain's and LlamaIndex's on one corpus and question set; prints a table.

Usage:
    flock /tmp/aiqa-bench.lock .venv/bin/python bench/peers.py [--corpus DIR] [--questions FILE]
        [--limit N] [--json OUT] [--peers-dir DIR]

Defaults: the KorQuAD calibration corpus and report-half questions that scripts/fit_decision.py
writes under .cache/calibration/korquad/ (KorQuAD-format lines; a question counts exactly when its
`file` is in the corpus folder). Without them the bench says so and stops.

All three systems embed with aiqa's own model (the converted multilingual-e5-small, with the e5
"passage: " / "query: " prefixes), loaded once and wrapped as each library's embedding class, so
only chunking and retrieval differ:
- aiqa: `build_index` into a temporary folder, then `Retriever.search(q, k=5)`; what it retrieves is
  each hit's passage (the consecutive units of one section around the best unit, up to 320 tokens),
  as the answer layer reads it, or the unit alone where the passage is one unit. "ready" adds loading
  that index and building its Kiwi BM25. One build per way of embedding statements (`--statements`,
  AIQA_STATEMENT_VECTORS): the default's row is "aiqa",
  the other's "aiqa separate" (each statement its own encoder pass) or "aiqa pooled".
- LangChain: TextLoader, RecursiveCharacterTextSplitter(chunk_size=500, chunk_overlap=50)
  (characters), langchain-community's FAISS vector store (its default flat L2 index; on unit
  vectors the same order as cosine), `similarity_search(q, k=5)`.
- LlamaIndex: SimpleDirectoryReader, VectorStoreIndex.from_documents with its default
  transformations (SentenceSplitter: 1024 cl100k tokens, overlap 200, in llama-index-core 0.14.25)
  and its default in-memory vector store; `as_retriever(similarity_top_k=5)`. No LLM is involved.
  The embedding class takes 32 texts a call, as aiqa's build does.

A hit is a retrieved chunk holding one of the gold answers once all whitespace is removed
(`aiqa.evaluate.contains`); "top-3 chars" is the mean length of the three best chunks (what a
reader must read). Queries are timed warm, one at a time, the systems taking turns per question.
A run over all 501 default questions takes about 5 minutes on 2 cores, mostly the three builds.

The peers are an optional dependency group (`pip install -e '.[peers]'`); CI and the tests never
need them, and a peer that is not installed is skipped with a line that says so. To leave a shared
environment untouched (their packages are all new to it, but langsmith adds a pytest plugin),
install them beside it instead; the bench appends --peers-dir (default .cache/peers) to sys.path:
    .venv/bin/python -m pip install --dry-run --quiet --report .cache/peers.json \\
        langchain-text-splitters==1.1.3 langchain-community==0.4.2 llama-index-core==0.14.25
    .venv/bin/python -m pip install --no-deps --target .cache/peers $(.venv/bin/python -c "import json; \\
        print(*(i['metadata']['name'] + '==' + i['metadata']['version'] \\
        for i in json.load(open('.cache/peers.json'))['install']))")
(the dry run's report lists exactly the packages the environment lacks; check that none of
aiqa's pinned packages is among them).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from aiqa.config import STATEMENT_VECTORS, Settings
from aiqa.embedders.registry import load_embedder
from aiqa.embedders.torch import SentenceEmbedder
from aiqa.errors import AiqaError
from aiqa.evaluate import Case, contains, is_answerable, load_cases, percentile

REPO = Path(__file__).resolve().parents[1]
CALIBRATION = REPO / ".cache" / "calibration" / "korquad"
K = 5
READ = 3  # chunks a reader reads


Search = Callable[[str, int], list[str]]  # question, k -> the texts of the k best chunks, best first


@dataclass
class System:
    """One retrieval stack and what was measured of it."""

    name: str
    packages: tuple[str, ...]
    chunks: int = 0
    vectors: int = 0
    build_s: float = 0.0
    ready_s: float = 0.0
    ranks: list[int | None] = field(default_factory=list)
    read_chars: list[int] = field(default_factory=list)
    query_ms: list[float] = field(default_factory=list)

    def build(self) -> None:
        """Chunk, embed and index the corpus (timed as the build)."""
        raise NotImplementedError

    def ready(self) -> Search:
        """Whatever else comes before the first question (timed with the build as "ready")."""
        raise NotImplementedError


class Aiqa(System):
    def __init__(self, corpus: Path, embedder: SentenceEmbedder, work: Path, statements: str, name: str = "aiqa"):
        super().__init__(name, ("aiqa",))
        self.settings = Settings(
            corpus_dir=corpus, index_dir=work / f"index-{statements}", statement_vectors=statements
        )
        self.embedder = embedder

    def build(self) -> None:
        from aiqa.build import build_index

        self.chunks = build_index(self.settings, embedder_factory=lambda: self.embedder).chunks

    def ready(self) -> Search:
        from aiqa.retrieve import Retriever
        from aiqa.stores.registry import load_index

        retriever = Retriever(load_index(self.settings), self.embedder)
        self.vectors = retriever.index.vectors.ntotal
        # what a search returns: each hit's passage (its section's units around the best one), or the unit
        return lambda q, k: [hit.passage or hit.chunk.text for hit in retriever.search(q, k)]


class LangChain(System):
    def __init__(self, corpus: Path, embedder: SentenceEmbedder):
        super().__init__("LangChain", ("langchain-text-splitters", "langchain-community", "langchain-core"))
        self.corpus, self.embedder = corpus, embedder

    def build(self) -> None:
        from langchain_community.document_loaders import TextLoader
        from langchain_community.vectorstores import FAISS
        from langchain_core.embeddings import Embeddings
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        embedder = self.embedder

        class AiqaEmbeddings(Embeddings):
            def embed_documents(self, texts: list[str]) -> list[list[float]]:
                return embedder.embed_passages(texts).tolist()

            def embed_query(self, text: str) -> list[float]:
                return embedder.embed_queries([text])[0].tolist()

        paths = text_files(self.corpus)
        documents = [d for path in paths for d in TextLoader(str(path), encoding="utf-8").load()]
        pieces = RecursiveCharacterTextSplitter(chunk_size=500, chunk_overlap=50).split_documents(documents)
        self.store = FAISS.from_documents(pieces, AiqaEmbeddings())
        self.chunks = self.vectors = self.store.index.ntotal

    def ready(self) -> Search:
        return lambda q, k: [d.page_content for d in self.store.similarity_search(q, k=k)]


class LlamaIndex(System):
    def __init__(self, corpus: Path, embedder: SentenceEmbedder):
        super().__init__("LlamaIndex", ("llama-index-core",))
        self.corpus, self.embedder = corpus, embedder

    def build(self) -> None:
        from llama_index.core import SimpleDirectoryReader, VectorStoreIndex
        from llama_index.core.embeddings import BaseEmbedding
        from pydantic import PrivateAttr

        class AiqaEmbedding(BaseEmbedding):
            _embedder: Any = PrivateAttr()

            def __init__(self, embedder: SentenceEmbedder) -> None:
                super().__init__(model_name=embedder.name, embed_batch_size=32)
                self._embedder = embedder

            def _get_query_embedding(self, query: str) -> list[float]:
                return self._embedder.embed_queries([query])[0].tolist()

            async def _aget_query_embedding(self, query: str) -> list[float]:
                return self._get_query_embedding(query)

            def _get_text_embedding(self, text: str) -> list[float]:
                return self._get_text_embeddings([text])[0]

            def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
                return self._embedder.embed_passages(texts).tolist()

        # Files rather than input_dir: the reader skips any path with a hidden part, such as .cache/.
        documents = SimpleDirectoryReader(input_files=text_files(self.corpus)).load_data()
        self.index = VectorStoreIndex.from_documents(documents, embed_model=AiqaEmbedding(self.embedder))
        self.chunks = self.vectors = len(self.index.docstore.docs)

    def ready(self) -> Search:
        retrievers: dict[int, Any] = {}

        def search(q: str, k: int) -> list[str]:
            retriever = retrievers.setdefault(k, self.index.as_retriever(similarity_top_k=k))
            return [found.node.get_content() for found in retriever.retrieve(q)]

        return search


def installed(system: System) -> str | None:
    """The versions of a system's packages, or None (and a line saying so) when one is missing."""
    try:
        return ", ".join(f"{name} {version(name)}" for name in system.packages)
    except PackageNotFoundError as exc:
        print(
            f"peers.py: {system.name} skipped: {exc.name} is not installed "
            "(pip install -e '.[peers]', or see the docstring of bench/peers.py)",
            file=sys.stderr,
        )
        return None


def text_files(corpus: Path) -> list[Path]:
    """The corpus's plain-text and Markdown files, which all three systems read as they come."""
    return sorted(p for pattern in ("*.txt", "*.md") for p in corpus.glob(pattern))


def answerable_cases(questions: Path, corpus: Path, limit: int | None) -> list[Case]:
    """The questions whose `file` is in the corpus; every n-th of them when `limit` asks for fewer."""
    sources = {p.name for p in text_files(corpus)}
    try:
        cases = [c for c in load_cases(questions) if is_answerable(c, sources)]
    except AiqaError as exc:
        raise SystemExit(f"peers.py: {exc}") from None
    if limit and limit < len(cases):
        step = len(cases) / limit
        cases = [cases[int(i * step)] for i in range(limit)]
    return cases


def ask_all(systems: list[tuple[System, Search]], cases: list[Case]) -> None:
    """Ask every question of every system, in turns that rotate who goes first."""
    for _, search in systems:
        search(cases[0].q, K)  # warm: first-call costs (lazy imports, caches) are not a query's
    for n, case in enumerate(cases):
        turn = systems[n % len(systems) :] + systems[: n % len(systems)]
        for system, search in turn:
            started = time.perf_counter()
            texts = search(case.q, K)
            system.query_ms.append((time.perf_counter() - started) * 1000)
            hits = [rank for rank, text in enumerate(texts, 1) if any(contains(text, g) for g in case.gold)]
            system.ranks.append(hits[0] if hits else None)
            system.read_chars.append(sum(len(text) for text in texts[:READ]))


def summary(system: System) -> dict[str, Any]:
    n = len(system.ranks)
    return {
        "system": system.name,
        "chunks": system.chunks,
        "vectors": system.vectors,
        "hit@1": round(sum(r == 1 for r in system.ranks) / n, 3),
        "hit@5": round(sum(r is not None and r <= K for r in system.ranks) / n, 3),
        "top3_chars": round(statistics.fmean(system.read_chars)),
        "build_s": round(system.build_s, 1),
        "ready_s": round(system.ready_s, 1),
        "query_p50_ms": round(percentile(system.query_ms, 0.5), 1),
    }


COLUMNS = ("chunks", "vectors", "hit@1", "hit@5", "top3_chars", "build_s", "ready_s", "query_p50_ms")
HEADERS = ("chunks", "vectors", "hit@1", "hit@5", "top-3 chars", "build s", "ready s", "query p50 ms")


def cell(column: str, value: Any) -> str:
    return f"{value:.3f}" if column.startswith("hit") else str(value)


def print_table(rows: list[dict[str, Any]]) -> None:
    """Print one line per system, each peer followed by its ratios to aiqa (adds them to the rows)."""
    print(f"{'system':<12}" + "".join(f"{h:>13}" for h in HEADERS))
    base = rows[0]
    for row in rows:
        print(f"{row['system']:<12}" + "".join(f"{cell(c, row[c]):>13}" for c in COLUMNS))
        if row is not base:
            row["ratio_to_aiqa"] = {c: round(row[c] / base[c], 3) if base[c] else None for c in COLUMNS}
            ratios = [f"{r:.2f}x" if r is not None else "-" for r in row["ratio_to_aiqa"].values()]
            print(f"{'  ÷ aiqa':<12}" + "".join(f"{r:>13}" for r in ratios))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=CALIBRATION / "corpus", help="folder of .txt and .md documents")
    parser.add_argument("--questions", type=Path, default=CALIBRATION / "report.jsonl", help="KorQuAD-format JSONL")
    parser.add_argument("--limit", type=int, default=None, help="ask an evenly spread sample of N questions")
    parser.add_argument("--json", type=Path, default=None, help="also write the table here as JSON")
    parser.add_argument("--peers-dir", type=Path, default=REPO / ".cache" / "peers", help="packages installed beside")
    parser.add_argument(
        "--statements",
        default=",".join(STATEMENT_VECTORS),
        help="aiqa builds, one per way of embedding statements (AIQA_STATEMENT_VECTORS); the default's row first",
    )
    args = parser.parse_args()
    for path in (args.corpus, args.questions):
        if not path.exists():
            print(f"peers.py: {path} is not here (scripts/fit_decision.py writes it): skipped", file=sys.stderr)
            raise SystemExit(0)
    if args.peers_dir.is_dir():
        sys.path.append(str(args.peers_dir))  # last: whatever the environment has itself still wins
    # langchain-community 0.4 says on import that it is being sunset; its FAISS store still works as documented.
    warnings.filterwarnings("ignore", message=".*langchain-community.*sunset", category=DeprecationWarning)

    started = time.perf_counter()
    cases = answerable_cases(args.questions, args.corpus, args.limit)
    if not cases:
        print(
            f"peers.py: no question in {args.questions} is about an article in {args.corpus}: skipped", file=sys.stderr
        )
        raise SystemExit(0)
    settings = Settings()
    embedder = load_embedder(settings.embed_model, settings.cache_dir)
    embedder.embed_passages(["warm"])  # model first-call costs are nobody's build
    with tempfile.TemporaryDirectory(prefix="aiqa-peers-") as work:
        default = Settings().statement_vectors
        others = [m for m in args.statements.split(",") if m and m != default]
        candidates = [
            Aiqa(args.corpus, embedder, Path(work), default),
            *(Aiqa(args.corpus, embedder, Path(work), m, f"aiqa {m}") for m in others),
            LangChain(args.corpus, embedder),
            LlamaIndex(args.corpus, embedder),
        ]
        versions = {s.name: v for s in candidates if (v := installed(s))}
        ready = []
        for system in candidates:
            if system.name not in versions:
                continue
            t = time.perf_counter()
            system.build()
            system.build_s = time.perf_counter() - t
            search = system.ready()
            system.ready_s = time.perf_counter() - t
            ready.append((system, search))
        ask_all(ready, cases)
    rows = [summary(s) for s, _ in ready]
    print(
        f"{len(cases)} answerable questions, {len(text_files(args.corpus))} documents in {args.corpus}; "
        f"model {embedder.name}; k={K}; the run took {time.perf_counter() - started:.0f} s"
    )
    print("; ".join(versions.values()))
    print_table(rows)
    if args.json:
        about = {"corpus": str(args.corpus), "questions": str(args.questions), "answerable": len(cases)}
        args.json.write_text(json.dumps({**about, "versions": versions, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
