"""Question -> ranked Hits: dense (e5 vectors) and Korean BM25 from the index's store, fused by weighted scores."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from aiqa.index.format import LoadedIndex
from aiqa.index.keyword import KeywordIndex, idf_of
from aiqa.laps import Laps
from aiqa.records import Chunk, Hit
from aiqa.text.korean import Analysis, LatinNames, analyse, document_is_korean

# Fusion chosen on the dev set (bench/fusion.py prints the comparison): min-max normalised dense
# and BM25 scores; the keyword side gets the rest of the weight, scaled in `fuse`.
DENSE_WEIGHT = 0.35
# A passage: the consecutive units of one section, up to this many tokens (about 500 characters of
# Korean, the size plain splitters cut). Units are ranked; passages are what a search returns, so the
# best five hold five different places of the corpus, each with the units around its best one.
PASSAGE_TOKENS = 320
# Passages a search adds beyond the k best for the parts a question asks for (see Retriever.search `also`).
ALSO_PASSAGES = 2
# Chunks per document language whose vectors give that language's mean vector (see LanguageCentres).
CENTRE_SAMPLE = 2000
# How far the second search's query leans towards the other language (in units of the gap between the two
# languages' vectors along their means' difference): far enough that its nearest vectors are that language's,
# near enough that their order there stays the question's (see LanguageCentres.probe).
PROBE_LEAN = 0.25


def passages(chunks: Sequence[Chunk], budget: int = PASSAGE_TOKENS) -> list[list[int]]:
    """Group the chunks (in document order) into passages: a new one at each document, section or table,
    and where the budget of the text they show is spent (`shown_tokens`). A title or a heading starts one;
    one followed by another section or a table stands alone (and searches pass over it: it states nothing)."""
    out: list[list[int]] = []
    tokens = 0
    for i, chunk in enumerate(chunks):
        previous = chunks[out[-1][-1]] if out else None
        same = (
            previous is not None
            and previous.source == chunk.source
            and previous.section == chunk.section
            and previous.table == chunk.table
            and chunk.kind not in ("title", "heading")
        )
        own = shown_tokens(chunk)
        if same and tokens + own <= budget:
            out[-1].append(i)
            tokens += own
        else:
            out.append([i])
            tokens = own
    return out


def shown_tokens(chunk: Chunk) -> int:
    """About how many tokens of the chunk's own text a passage shows: its count covers the context the chunk
    was embedded with (its section's label, the sentence leading into its list), which the passage does not
    repeat; the share of the context's characters that are the chunk's is the estimate."""
    if not chunk.context or len(chunk.context) <= len(chunk.text):
        return chunk.tokens
    return max(1, round(chunk.tokens * len(chunk.text) / len(chunk.context)))


class CorpusStats:
    """What the answer layer may know of the corpus: its words, how rare each is, and its names.

    Read from the index's keyword postings; the answer layer uses these methods only.
    """

    def __init__(self, keywords: KeywordIndex, stating: Sequence[bool] | None = None):
        self.keywords = keywords
        self.vocabulary = keywords.column  # term -> column; `in` is what callers use
        n = len(keywords)
        # Words of the chunks that state something: a name that only stands in a heading or an open
        # question ("그럼 대한민국은?") is mentioned, but nothing is said about it.
        flags = np.ones(n, dtype=bool) if stating is None else np.asarray(stating, dtype=bool)
        df = np.diff(keywords.term_ptr)
        posting_terms = np.repeat(np.arange(len(keywords.terms)), df)
        self._stated = np.zeros(len(keywords.terms), dtype=bool)
        self._stated[posting_terms[flags[keywords.term_chunks]]] = True
        self._df = df
        self._n = max(1, n)
        self.unseen_idf = idf_of(0, self._n)  # as rare as a word can be
        self.latin_names = LatinNames(self.vocabulary)

    def weight(self, term: str) -> float:
        """How rare a word is (BM25's idf, kept positive); phrase pairs and unseen words weigh the most."""
        j = self.vocabulary.get(term)
        idf = self.unseen_idf if j is None or "_" in term else idf_of(int(self._df[j]), self._n)
        return max(idf, 0.05)

    def terms_of(self, chunk_id: int) -> frozenset[str]:
        """The words (no phrase pairs) of one chunk's labelled context."""
        return frozenset(t for t in self.keywords.chunk_counts_of(chunk_id) if "_" not in t)

    def _is_stated(self, term: str | None) -> bool:
        if term is None or "_" in term:
            return False
        j = self.vocabulary.get(term)
        return j is not None and bool(self._stated[j])

    def known(self, term: str) -> bool:
        """Whether the corpus uses a word, in any spelling (화웨이 counts where it says Huawei)."""
        return term in self.vocabulary or self.latin_names.match(term) is not None

    def stated_about(self, term: str) -> bool:
        """Whether some statement of the corpus uses a word, in any spelling."""
        return self._is_stated(term) or self._is_stated(self.latin_names.match(term))

    def coverage(self, terms: set[str] | frozenset[str], evidence: set[str] | frozenset[str]) -> float:
        """IDF-weighted share of `terms` found in `evidence` (0.0 for no terms)."""
        total = sum(self.weight(t) for t in terms)
        return sum(self.weight(t) for t in terms if t in evidence) / total if total else 0.0

    def normalize(self, terms, stems=()):
        """Terms with each Hangul spelling of one of the corpus's Latin words replaced by that word
        (`stems`, the verbs and adjectives of the text, never)."""
        return self.latin_names.normalize(list(terms), stems)


class LanguageCentres:
    """Where a corpus holds Korean and other documents, what tilts each cosine towards the question's language.

    A multilingual encoder scores a passage in the question's language higher than an equally relevant one
    in another: every vector of a language shares a component, its language's mean. The cosine of the
    question with a passage of language L carries question · mean(L); swapping that for question ·
    mean(question's language) ranks passages of both languages on what they say (mean-centring per
    language, as in work on the language neutrality of multilingual encoders). A Korean question over a
    Korean rule book with one English guideline in it then finds the guideline's passage. A corpus of one
    language gets no correction: every cosine would move alike.

    The means are read from up to CENTRE_SAMPLE chunk vectors (their context view) per language, spread
    over the corpus, once per index version. Since the nearest vectors of the question are mostly of its own
    language, a second search (`probe`) fetches the other language's nearest ones.
    """

    def __init__(self, index: LoadedIndex):
        # each document's language, read once here (the answer layer's Statements reuse it)
        self.of_source = {source: document_is_korean(doc.text) for source, doc in index.documents.items()}
        korean = np.array([self.of_source.get(c.source, True) for c in index.chunks], dtype=bool)
        # A code block is in neither language: it shares no language's mean, and is not tilted (an
        # English question would otherwise lift the commands of a Korean manual above its prose).
        prose = np.array([c.kind != "code" for c in index.chunks], dtype=bool)
        self.means: dict[bool, np.ndarray] = {}
        if not (korean & prose).any() or not (~korean & prose).any():
            return  # prose of one language: every cosine would move alike
        # per question language, 1.0 for the chunks in the other language
        self.other = {True: (~korean & prose).astype(np.float32), False: (korean & prose).astype(np.float32)}
        for group in (True, False):
            members = np.flatnonzero((korean == group) & prose)
            sample = members[np.linspace(0, len(members) - 1, min(len(members), CENTRE_SAMPLE)).astype(int)]
            rows = index.search.rows_of([(int(index.offsets[i]), 1) for i in sample])
            self.means[group] = np.mean(np.concatenate(rows), axis=0).astype(np.float32)
        gap = self.means[False] - self.means[True]
        self.lean = gap * (PROBE_LEAN / max(float(gap @ gap), 1e-6))  # from Korean towards the other language

    def probe(self, question: Analysis, vector: np.ndarray) -> np.ndarray | None:
        """A query vector leaning towards the other language's documents (None for a corpus of one language)."""
        if not self.means:
            return None
        return (vector + self.lean if question.korean else vector - self.lean).astype(np.float32)

    def shift(self, question: Analysis, vector: np.ndarray) -> np.ndarray | None:
        """What to add to each chunk's cosine (None for a corpus of one language)."""
        if not self.means:
            return None
        own = bool(question.korean)
        return self.other[own] * float(vector @ (self.means[own] - self.means[not own]))


class Retriever:
    """Everything per-index is built here once; `search` only scores one question."""

    def __init__(self, index: LoadedIndex, embedder, *, dense_weight: float = DENSE_WEIGHT):
        self.index = index
        self.embedder = embedder
        self.dense_weight = dense_weight
        self.chunks = index.chunks
        self.keywords = index.keywords
        self.stats = CorpusStats(index.keywords, [bool(c.statements) for c in self.chunks])
        self.passages = passages(self.chunks)
        self.centres = LanguageCentres(index)
        self.passage_of = np.zeros(len(self.chunks), dtype=np.int64)
        self.passages_of: dict[str, list[int]] = {}  # document -> its passages, in order
        for n, members in enumerate(self.passages):
            self.passage_of[members] = n
            self.passages_of.setdefault(self.chunks[members[0]].source, []).append(n)
        # A passage none of whose units states anything (a heading or title alone) holds no answer: searches
        # pass over it, unless the corpus states nothing at all.
        self.hollow = [not any(self.chunks[i].statements for i in members) for members in self.passages]
        if all(self.hollow):
            self.hollow = [False] * len(self.passages)

    def encode(self, question: str) -> np.ndarray:
        return self.embedder.embed_queries([question])[0]

    def signals(
        self, question: Analysis, depth: int = 100, query_vector: np.ndarray | None = None, laps: Laps | None = None
    ):
        """Score every chunk for a question: dense cosines, normalised BM25, and how known its words are.

        Returns (dense, keyword, known) where `known` is the share of the question's words that
        occur in the corpus at all.
        """
        n = len(self.chunks)
        vector = self.encode(question.text) if query_vector is None else query_vector
        dense = np.full(n, np.nan, dtype=np.float32)
        # Each chunk has several vectors (see aiqa.chunk.chunk_views); its dense score is the best of them.
        search = self.index.search
        views = search.vector_count / max(1, n)
        laps = laps or Laps()
        scores, ids = search.dense(vector, int(views * depth))
        found = ids >= 0
        np.fmax.at(dense, self.index.owners[ids[found]], scores[found])
        probe = self.centres.probe(question, vector)
        if probe is not None and found.any():
            # The other language's nearest vectors, scored against the question itself; kept where, centred,
            # they reach the first search's last score (where they would have stood with centred cosines).
            floor = float(np.nanmin(dense))
            _, more = search.dense(probe, int(views * depth))
            more = np.setdiff1d(more[more >= 0], ids[found])
            if len(more):
                exact = np.concatenate(search.rows_of([(int(row), 1) for row in more])) @ vector.astype(np.float32)
                owners = self.index.owners[more]
                shift = self.centres.shift(question, vector)
                keep = exact + (shift[owners] if shift is not None else 0.0) >= floor
                np.fmax.at(dense, owners[keep], exact[keep])
        laps.lap("dense")
        terms = self.stats.normalize(question.tokens, question.stems)
        keyword = search.keyword(terms)
        keyword = keyword / keyword.max() if keyword.max() > 0 else np.zeros(n, dtype=np.float32)
        laps.lap("keyword")
        unigrams = [t for t in terms if "_" not in t]
        known = sum(1 for t in unigrams if t in self.stats.vocabulary) / len(unigrams) if unigrams else 0.0
        return dense, keyword, known

    def search(
        self,
        question: str | Analysis,
        k: int = 5,
        *,
        query_vector: np.ndarray | None = None,
        laps: Laps | None = None,
        also: Callable[[Chunk], bool] | None = None,
    ) -> list[Hit]:
        """Return the k best chunks for a question (text or its Analysis), best first.

        `also` names units a question asks for by structure (the article it names, the reason section of
        the document it is about): up to ALSO_PASSAGES passages of the k best ones' documents that hold
        such a unit come after the k best, though they did not score among them. `laps`, if given, gets
        the time of each step: embed, dense, keyword, fuse.
        """
        if not self.chunks:
            return []
        laps = laps or Laps()
        analysis = analyse(question) if isinstance(question, str) else question
        vector = self.encode(analysis.text) if query_vector is None else query_vector
        laps.lap("embed")
        dense, keyword, known = self.signals(analysis, max(100, 4 * k), vector, laps)
        shift = self.centres.shift(analysis, vector)
        # Hits keep the plain cosine (the answer decision reads it); only the ranking is centred.
        fused = fuse(dense if shift is None else dense + shift, keyword, known, self.dense_weight)
        order = np.argsort(-fused, kind="stable")
        best: dict[int, int] = {}  # passage -> its best unit, in rank order
        for i in order:
            if self.hollow[self.passage_of[i]]:
                continue
            best.setdefault(int(self.passage_of[i]), int(i))
            if len(best) == k:
                break
        if also is not None:
            self._add_wanted(best, also, fused)
        units = [j for p in best for j in self.passages[p]]
        cosines = dict(zip(units, self.statement_dense(units, vector), strict=True))

        def unit(i: int, rank: int) -> Hit:
            score, cosine = float(fused[i]), float(np.nan_to_num(dense[i], nan=-1.0))
            return Hit(self.chunks[i], i, score, cosine, float(keyword[i]), rank, cosines[i])

        hits = []
        for rank, (p, top) in enumerate(best.items(), start=1):
            members = self.passages[p]
            inside = tuple(unit(i, rank) for i in members) if len(members) > 1 else ()
            first, last = self.chunks[members[0]], self.chunks[members[-1]]
            text = self.index.documents[first.source].text[first.start : last.end] if inside else ""
            hits.append(replace(unit(top, rank), units=inside, passage=text))
        laps.lap("fuse")
        return hits

    def _add_wanted(self, best: dict[int, int], also: Callable[[Chunk], bool], fused: np.ndarray) -> None:
        """Add to `best` (passage -> its best unit) the passages of its documents that hold a wanted unit."""
        sources = list(dict.fromkeys(self.chunks[i].source for i in best.values()))
        added = 0
        for source in sources:
            for p in self.passages_of[source]:
                if p in best or not any(also(self.chunks[j]) for j in self.passages[p]):
                    continue
                best[p] = max(self.passages[p], key=lambda j: fused[j])
                added += 1
                if added == ALSO_PASSAGES:
                    return

    def statement_dense(self, chunk_ids: list[int], vector: np.ndarray) -> list[tuple[float, ...]]:
        """Cosines of the question and each statement of each chunk (its views after the context).

        The chunks' rows are read in one call: on Milvus that is one round trip for all hits.
        """
        spans = [(int(self.index.offsets[i]) + 1, len(self.chunks[i].statements)) for i in chunk_ids]
        rows = self.index.search.rows_of([span for span in spans if span[1]])
        query = vector.astype(np.float32)
        found = iter(rows)
        return [tuple(float(x) for x in next(found) @ query) if n else () for _, n in spans]


def fuse(dense: np.ndarray, keyword: np.ndarray, known: float, dense_weight: float = DENSE_WEIGHT) -> np.ndarray:
    """Mix min-max scaled dense scores with BM25, trusting keywords as far as the words are known.

    An English question over Korean text shares few words with it; then the dense score decides.
    """
    keyword_weight = (1 - dense_weight) * known
    return (1 - keyword_weight) * _minmax(dense) + keyword_weight * keyword


def _minmax(scores: np.ndarray) -> np.ndarray:
    """Scale the scored (non-NaN) entries to 0..1; chunks beyond the dense search depth get 0."""
    out = np.zeros_like(scores)
    scored = ~np.isnan(scores)
    low, high = float(np.min(scores[scored])), float(np.max(scores[scored]))
    out[scored] = (scores[scored] - low) / (high - low) if high > low else 1.0
    return out
