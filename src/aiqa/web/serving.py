"""`aiqa serve`: bring the index up to date, load it, and return the server to run (cli.py prints what it did).

uvicorn runs with the options of limits.py: no proxy handling of its own, a header deadline and a
cap on connections, the same as the tests' ThreadedServer.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from aiqa.config import Settings
from aiqa.engine import Engine
from aiqa.errors import EmptyCorpus, IndexBusy, IndexReadOnly
from aiqa.web.access import allowed_hosts
from aiqa.web.idle import give_back_memory
from aiqa.web.limits import Limits
from aiqa.web.server import create_app
from aiqa.web.uploads import rebuild


@dataclass
class Serving:
    """What `aiqa serve` reports before it serves (cli.py prints it), and the server, ready to run."""

    report: dict[str, Any] | None  # the rebuild's BuildReport JSON; None when the index on disk is served as is
    kept_because: str | None  # why the index on disk is served as is (a busy or read-only index, no corpus)
    url: str  # where the chat is
    hosts: list[str] | None  # the only Host names answered to, when bound to every address
    server: Any  # uvicorn.Server

    def run(self) -> None:
        """Serve the chat, the API and the widget until interrupted."""
        self.server.run()


def rebuild_apart(settings: Settings) -> dict[str, Any]:
    """Bring the index up to date in a child process; return the BuildReport as JSON.

    What a build allocates (documents, chunks, Kiwi's analysis, the encoder's batches) is not given
    back to the system once freed: built here, a first start idled at about 1 GB against 0.46 GB
    for a later start on the same index. The child also runs the model's first conversion (in
    children of its own), so the server loads only the files it serves with.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(rebuild, settings).result()


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 7860) -> Serving:
    """Bring the index up to date and load it; return the server to run, with what to tell the operator."""
    import uvicorn

    from aiqa.stores.registry import live_version

    torch_runtime = settings.encoder_runtime.startswith("torch")  # the onnx runtimes pick their threads per call
    if "OMP_NUM_THREADS" not in os.environ and not settings.batch_questions and torch_runtime:
        import torch

        # Questions run side by side (the API's workers and the chat's queue): one torch thread
        # each keeps them from fighting over the cores (bench/soak.py: 2,000 questions from 50
        # clients in 87 s instead of 117 s on 2 cores, p95 2.6-2.8 s instead of 3.3 s). With shared
        # batches one thread embeds all questions, and torch may use every core for it.
        torch.set_num_threads(1)
    engine = Engine(settings, shared_batches=settings.batch_questions)
    report, kept = None, None
    try:
        report = rebuild_apart(settings)
    except (EmptyCorpus, IndexBusy, IndexReadOnly) as exc:
        if live_version(settings) is None:
            raise
        kept = str(exc)
    engine.load()
    give_back_memory()  # what loading the index freed
    limits = Limits.from_settings(settings)
    app = create_app(settings, engine, host, limits)
    shown = "localhost" if host in {"0.0.0.0", "::", ""} else host
    url = f"http://{f'[{shown}]' if ':' in shown else shown}:{port}"
    hosts = allowed_hosts(settings, host)
    listed = sorted(hosts) if hosts is not None and host in {"0.0.0.0", "::", ""} else None
    config = uvicorn.Config(
        app, host=host, port=port, access_log=False, log_level="warning", **limits.uvicorn_options()
    )
    return Serving(report, kept, url, listed, uvicorn.Server(config))
