"""The composition root behind the CLI, the HTTP API and the chat: parts passed in, the live version reloaded.

An Engine holds the embedder, the answer decision and the optional LLM generator, and the Pipeline
of the live index version; when a build makes a new version live, the next question loads it.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import Any

from aiqa.answer.decision import Decision, load_decision
from aiqa.config import Settings
from aiqa.embedders.base import Embedder
from aiqa.errors import AiqaError
from aiqa.generate import Generator
from aiqa.index.access import view, view_key
from aiqa.index.format import LoadedIndex
from aiqa.laps import Laps
from aiqa.pipeline import Pipeline, QueryLimits, read_query
from aiqa.records import Reply
from aiqa.stores.registry import live_version, load_index

log = logging.getLogger("aiqa.engine")
# Readers' views kept built (one per set of groups that guard something in the live version).
VIEWS = 32
# The default generator: the one settings name (AIQA_LLM_URL), or none.
_FROM_SETTINGS: Any = object()


class Engine:
    """Answers questions from the live index version; swaps in a new one when a build lands."""

    def __init__(
        self,
        settings: Settings,
        *,
        embedder: Embedder | None = None,
        decision: Decision | None = None,
        generator: Generator | None = _FROM_SETTINGS,
        shared_batches: bool = False,
    ):
        """Parts not given are made from `settings`: the bundled model in the configured runtime, the
        decision file, the LLM server. `shared_batches`: embed questions that arrive together in one
        call (aiqa.embedders.batching); for servers."""
        self.settings = settings
        self.limits = QueryLimits.of(settings)
        self._shared_batches = shared_batches
        self._embedder = embedder
        self._decision = decision
        self.generator = Generator.from_settings(settings) if generator is _FROM_SETTINGS else generator
        self._lock = threading.Lock()
        self._live: Pipeline | None = None
        self._views: OrderedDict[tuple[str, frozenset[str]], Pipeline] = OrderedDict()
        self._views_lock = threading.Lock()
        self.failed: tuple[str, str] | None = None  # (version, why) of a new version that did not load

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            from aiqa.embedders.registry import load_embedder

            s = self.settings
            embedder = load_embedder(s.embed_model, s.cache_dir, s.encoder_runtime)
            if self._shared_batches:
                from aiqa.embedders.batching import SharedBatches

                embedder = SharedBatches(embedder)
            self._embedder = embedder
        return self._embedder

    @property
    def decision(self) -> Decision:
        if self._decision is None:
            self._decision = load_decision(self.settings.decision_file)
        return self._decision

    def pipeline(self, groups: frozenset[str] | None = None) -> Pipeline:
        """The Pipeline a reader with these groups asks (None: every document), over the live version.

        A reader who may not read every document gets a view of the version (aiqa.index.access), built
        on their first question and kept for the next ones of every reader with the same groups."""
        live = self._live_pipeline()
        key = view_key(live.index, groups)
        if key is None:
            return live
        with self._views_lock:
            found = self._views.get((live.version, key))
            if found is None:
                for old in [k for k in self._views if k[0] != live.version]:
                    del self._views[old]
                found = Pipeline.over(view(live.index, key), self.embedder, self.decision)
                self._views[live.version, key] = found
                while len(self._views) > VIEWS:
                    self._views.popitem(last=False)
            self._views.move_to_end((live.version, key))
            return found

    def _live_pipeline(self) -> Pipeline:
        """The live version's Pipeline, reloaded when the store names a new live version."""
        version = live_version(self.settings)
        live = self._live
        if live is not None and version in (live.version, (self.failed or ("",))[0]):
            return live  # the live one, or a damaged new one already tried: keep the good one
        with self._lock:
            if self._live is None or self._live.version != live_version(self.settings):
                try:
                    self._live = Pipeline.over(load_index(self.settings), self.embedder, self.decision)
                    self.failed = None
                except AiqaError as exc:
                    if self._live is None:
                        raise
                    # A damaged new version must not take down a good one already in memory.
                    self.failed = (version or "", str(exc))
                    log.error("%s; still serving index %s", exc, self._live.version)
            return self._live

    @property
    def index(self) -> LoadedIndex:
        """The live LoadedIndex (reloaded if a new version landed)."""
        return self._live_pipeline().index

    def index_for(self, groups: frozenset[str] | None) -> LoadedIndex:
        """What a reader with these groups may read of the live version (None: all of it)."""
        return self.pipeline(groups).index

    def load(self) -> Engine:
        """Load everything now instead of on the first question, and warm the model up."""
        self.pipeline()
        self.embedder.embed_queries(["warm-up"])  # the first forward pass is several times slower
        return self

    def ask(self, question: Any, k: Any = 5, history: Any = None, groups: frozenset[str] | None = None) -> Reply:
        """Answer one chat turn from the documents' statements: the Reply with every hit and the timings.

        `groups`: the asking reader's access groups; only documents they may read answer (None: all)."""
        laps = Laps()
        query = read_query(question, k, history, self.limits)
        pipeline = self.pipeline(groups)
        laps.lap("analyse")
        return pipeline.run(query, laps)
