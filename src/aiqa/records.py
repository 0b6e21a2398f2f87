"""The frozen records every layer passes around: Document, Chunk, Hit, Citation, Answer, Reply.

Only the standard library is imported here, so that every module of aiqa, from the readers to the
web layer, can name these types without importing the layers that make them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Document:
    """One corpus file as readable text, with what a citation needs to point back into it."""

    source: str  # path relative to the corpus folder, with forward slashes
    text: str
    sha256: str  # of the file's bytes: the manifest compares it to decide what to re-embed
    pages: tuple[int, ...] = ()  # text offsets where pages start (PDF); empty otherwise
    notes: tuple[str, ...] = ()  # parts of the file left out, each with why and what to do
    ocr_pages: tuple[int, ...] = ()  # 1-based pages whose text is OCR'd (their citations say so)

    def page_at(self, offset: int) -> int | None:
        """Return the 1-based page holding `offset`, or None when the document has no pages."""
        return page_at(self.pages, offset) if self.pages else None


def page_at(pages: tuple[int, ...], offset: int) -> int:
    """The 1-based page whose start offset is the last one at or before `offset`."""
    return sum(1 for start in pages if start <= offset) or 1


# The locator of a unit read by OCR from a scanned page starts with this ("OCR, p. 3"): a user should
# know a quote came from recognition.
OCR_MARK = "OCR, "


@dataclass(frozen=True)
class Chunk:
    """One retrievable unit with everything a citation needs to point back into its source."""

    source: str
    section: str
    kind: str  # title | heading | paragraph | bullet | callout | table_header | table_row
    start: int  # character offsets of the exact source span in the document text
    end: int
    text: str  # == document text[start:end]
    context: str  # the unit read alone: section, headers and cells; embedded and keyword-indexed
    locator: str
    tokens: int = 0
    cells: tuple[tuple[str, str], ...] = field(default=())  # (header, value) for table rows
    table: int = 0  # number of the table in its document (1-based) for table chunks, else 0

    statements: tuple[tuple[int, int], ...] = field(default=())  # citable spans: sentences, bullets, a row
    # Access groups whose members may read the chunk's document (aiqa.index.access); () = everyone.
    groups: tuple[str, ...] = field(default=())

    @property
    def ocr(self) -> bool:
        """Whether the text came from OCR of a scanned page: its locator then starts "OCR, "."""
        return self.locator.startswith(OCR_MARK)


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk with its fused score and the two signals behind it."""

    chunk: Chunk
    id: int
    score: float
    dense: float  # cosine similarity of question and chunk
    keyword: float  # BM25 score, normalised to the best keyword score of this question (0..1)
    rank: int
    statement_dense: tuple[float, ...] = ()  # cosine of the question and each of the chunk's statements
    # The passage the chunk sits in: the units of its section around it (aiqa.retrieve.passages), each a
    # Hit of its own, in document order, this one among them; and their text as the document has it.
    units: tuple[Hit, ...] = ()
    passage: str = ""

    @property
    def passage_units(self) -> tuple[Hit, ...]:
        return self.units or (self,)

    @property
    def passage_text(self) -> str:
        return self.passage or self.chunk.text


@dataclass(frozen=True)
class Citation:
    n: int
    source: str
    section: str
    locator: str
    quote: str
    start: int  # span of the quote in the document text
    end: int
    passage: str  # the whole chunk the quote sits in, for showing it in context

    def as_json(self) -> dict:
        return {
            "n": self.n,
            "source": self.source,
            "section": self.section,
            "locator": self.locator,
            "quote": self.quote,
            "passage": self.passage,
        }


@dataclass(frozen=True)
class Answer:
    question: str
    answer: str
    abstained: bool
    citations: tuple[Citation, ...] = ()
    resolved_question: str = ""
    signals: dict = field(default_factory=dict)  # the decision's features and probability
    related: tuple[Hit, ...] = ()  # when abstaining: the closest passages, for reading, not as sources


@dataclass(frozen=True)
class Reply:
    """One question's extractive answer and what a written answer needs: every hit, the documents."""

    answer: Answer
    hits: list[Hit]  # every retrieved Hit, best first (k or more)
    k: int  # how many the caller asked for
    timings: dict[str, float]
    documents: Mapping[str, Document]  # source -> Document of the version that answered
    language: str = "ko"  # the language the answer is given in ("ko" or "en")
