"""HTTP API, embeddable widget and chat page: a thin FastAPI layer over Engine and the index builder.

Routes: POST /api/ask, GET /api/health, POST /api/index, POST /api/documents, GET /v1/models and POST
/v1/chat/completions (openai_api.py), GET /widget.js,
GET /widget, GET /docs (API reference from /openapi.json), and the Gradio chat at /.

Access control (docs/SECURITY.md): access.py checks the Host and the browser's Origin, guard.py
signs in the chat and limits the rate per client; here, AIQA_API_TOKEN (the read token), when
set, is required as `Authorization: Bearer <token>` by /api/ask, and AIQA_ADMIN_TOKEN by
/api/index and /api/documents, which are refused outright while no admin token is configured.
The read token never opens an admin route.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import AsyncIterator, Callable, Generator
from pathlib import Path
from typing import Any

import anyio
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel, Field, StrictBool, StrictInt, StrictStr
from starlette.exceptions import HTTPException

from aiqa import __version__
from aiqa.config import Settings
from aiqa.contract import events, final_json, health_json, reply_json, writes
from aiqa.engine import Engine
from aiqa.errors import (
    AiqaError,
    BadRequest,
    EmptyCorpus,
    IndexBusy,
    IndexMismatch,
    IndexNotFound,
    IndexReadOnly,
    StoreUnavailable,
)
from aiqa.feedback import new_answer_id
from aiqa.web.access import AccessControl, frame_ancestors
from aiqa.web.bodies import BodyLimit
from aiqa.web.guard import ChatUsers, Guard, Throttle, error_body
from aiqa.web.health import HealthView, scrubbed
from aiqa.web.idle import GiveBackWhenIdle
from aiqa.web.limits import Limits
from aiqa.web.openai_api import add_openai_routes
from aiqa.web.ratings import Recorder, add_feedback_route
from aiqa.web.tokens import ApiAccess
from aiqa.web.uploads import UploadRejected, rebuild, upload_and_rebuild

log = logging.getLogger("aiqa.web.server")
STATIC = Path(__file__).with_name("static")
_STATUS = {
    BadRequest: 400,
    IndexBusy: 409,
    EmptyCorpus: 409,
    IndexReadOnly: 409,
    IndexNotFound: 503,
    IndexMismatch: 503,
    StoreUnavailable: 503,
}


class AskRequest(BaseModel):
    question: StrictStr = Field(description="the question, 1 to 1000 characters", examples=["미국의 AI 칩은?"])
    k: StrictInt = Field(5, description="how many passages to return (1 to 50)")
    history: list[Any] = Field(
        default_factory=list,
        description="earlier questions, oldest first: strings or {role, content} messages",
        examples=[["미국의 AI 반도체는?"]],
    )
    stream: StrictBool = Field(
        False,
        description="answer as server-sent events: `extractive` (the quoted answer) at once, then `token` events "
        "while the LLM server writes (when AIQA_LLM_URL is set), then `answer` (the final JSON)",
    )


def _error(
    status: int, message: str, headers: dict[str, str] | None = None, path: str = "", exc: Exception | None = None
) -> JSONResponse:
    """{"error": message}; on the OpenAI-compatible routes, OpenAI's error object."""
    body = error_body(path, status, message)
    if isinstance(body["error"], dict) and exc is not None:
        body["error"].update({k: getattr(exc, k) for k in ("param", "code") if getattr(exc, k, None)})
    return JSONResponse(body, status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> tuple[int, str]:
    shape = 'send JSON like {"question": "...", "k": 5, "history": []}'
    parts = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p != "body"]
        if err.get("type") == "json_invalid":
            reason = err.get("ctx", {}).get("error", "parse error")
            return 400, f"request body is not valid JSON ({reason}): {shape}"
        if not loc:
            return (
                400,
                f"request body is missing or not a JSON object (Content-Type: application/json): {shape}",
            )
        parts.append(f"{'.'.join(loc)}: {err.get('msg', 'invalid')}")
    return 422, "; ".join(parts) + f" ({shape})"


def _install_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        status, message = _validation_message(exc)
        return _error(status, message, path=request.url.path)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), getattr(exc, "headers", None), request.url.path)

    @app.exception_handler(AiqaError)
    async def _domain(request: Request, exc: AiqaError) -> JSONResponse:
        status = getattr(exc, "status", None) or next((s for t, s in _STATUS.items() if isinstance(exc, t)), 500)
        if status >= 500:
            log.error("%s %s: %s", request.method, request.url.path, exc)
        return _error(status, str(exc), path=request.url.path, exc=exc)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _error(500, "internal error: the server log has the details", path=request.url.path)


def _sse(kind: str, data: dict[str, Any]) -> str:
    return f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


async def _event_stream(events: Generator[tuple[str, dict[str, Any]]], writers: anyio.Semaphore) -> AsyncIterator[str]:
    """Send the quoted answer at once, then (holding one of the writers' places) the model's tokens and
    the final answer; the model's reply is read in a worker thread."""
    try:
        yield _sse(*next(events))
        async with writers:
            while (item := await anyio.to_thread.run_sync(next, events, None)) is not None:
                yield _sse(*item)
    finally:
        await anyio.to_thread.run_sync(events.close)  # a client that left: stop reading the model


def _scrubbed_events(
    events: Generator[tuple[str, dict[str, Any]]], llm_url: str | None
) -> Generator[tuple[str, dict[str, Any]]]:
    try:
        for kind, data in events:
            yield kind, scrubbed(data, llm_url)
    finally:
        events.close()  # a client that left: the model's reply is not read on


def _new_app() -> FastAPI:
    return FastAPI(
        title="aiqa",
        version=__version__,
        description="Ask questions about the company's documents; every answer cites its sources.",
        docs_url=None,  # the stock page loads Swagger UI from a CDN, which an offline box cannot reach
        redoc_url=None,
    )


def _add_ask_routes(
    app: FastAPI,
    limits: Limits,
    engine: Engine,
    access: ApiAccess,
    users: ChatUsers,
    signed_in: Callable[[Any], bool],
    recorder: Recorder,
) -> None:
    # Answers being written by the LLM server at once; more wait (their quoted answer is sent first).
    writers = functools.cache(lambda: anyio.Semaphore(limits.llm_writers))  # made in the event loop
    llm_url = engine.settings.llm_url

    @app.post("/api/ask", dependencies=[Depends(access.read)], tags=["ask"])
    async def ask(body: AskRequest, request: Request) -> Any:
        """Answer a question from the documents, with numbered citations (the `aiqa ask --json` contract).

        With an LLM server set (AIQA_LLM_URL) the answer is written by it and checked sentence by
        sentence (`mode`: "generated"), else quoted (`mode`: "extractive")."""
        groups = users.groups(request.scope)
        reply = await access.run(engine.ask, body.question, body.k, body.history, groups)
        if body.stream:
            stream = recorder.events(_scrubbed_events(events(reply, engine.generator), llm_url), groups)
            return StreamingResponse(
                _event_stream(stream, writers()),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        if not writes(reply, engine.generator):
            result = reply_json(reply)
        else:
            async with writers():
                result = scrubbed(await anyio.to_thread.run_sync(final_json, reply, engine.generator), llm_url)
        return await anyio.to_thread.run_sync(recorder.keep, new_answer_id(), result, groups)

    add_openai_routes(app, engine, access, users, writers, recorder)
    add_feedback_route(app, access, recorder)
    view = HealthView()

    @app.get("/api/health", tags=["ask"])
    async def health(request: Request) -> dict[str, Any]:
        """Report the live index: version, documents, chunks and model; "degraded" with a warning when a
        newer version on disk is damaged and the previous one is still served. The LLM server's state
        (`llm`) is shown only with a token or a chat sign-in."""
        counts = await access.run(health_json, engine, users.groups(request.scope))  # of what the caller may read
        return view(counts, signed_in(request.scope))


_UPLOAD_BODY = {
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["files"],
                "properties": {"files": {"type": "array", "items": {"type": "string", "format": "binary"}}},
            }
        }
    }
}


def _add_admin_routes(app: FastAPI, settings: Settings, limits: Limits, engine: Engine, access: ApiAccess) -> None:
    @app.post("/api/index", dependencies=[Depends(access.admin)], tags=["admin"])
    async def index() -> dict[str, Any]:
        """Rebuild the index from the corpus folder (only new and changed files are embedded)."""
        return await anyio.to_thread.run_sync(rebuild, settings, lambda: engine.embedder)

    @app.post(
        "/api/documents",
        dependencies=[Depends(access.admin)],
        tags=["admin"],
        openapi_extra={"requestBody": _UPLOAD_BODY},
    )
    async def documents(request: Request) -> dict[str, Any]:
        """Upload documents (multipart field `files`) into the corpus folder, then rebuild the index."""
        try:  # the body's size and its number of files are capped as it arrives (bodies.py)
            form = await request.form(max_files=limits.upload_files + 1)
        except Exception as exc:  # starlette's MultiPartException and friends
            log.info("unreadable upload: %s", exc)
            raise UploadRejected("cannot read the upload: send multipart/form-data with the field 'files'") from None
        try:
            files = [(f.filename or "", f.file) for f in form.getlist("files") if not isinstance(f, str)]
            return await anyio.to_thread.run_sync(upload_and_rebuild, settings, files, lambda: engine.embedder)
        finally:
            await form.close()

    any_method = ["GET", "POST", "PUT", "DELETE", "PATCH"]

    @app.api_route("/api/{rest:path}", methods=any_method, include_in_schema=False)
    async def unknown(rest: str) -> None:
        methods = {m for r in app.routes if getattr(r, "path", "") == f"/api/{rest}" for m in getattr(r, "methods", ())}
        if methods:
            allow = ", ".join(sorted(methods))
            raise HTTPException(405, f"use {allow} for /api/{rest}: see /docs", {"Allow": allow})
        raise HTTPException(404, f"no API route /api/{rest}: see /docs")


def _add_pages(app: FastAPI, settings: Settings) -> None:
    @app.get("/widget.js", include_in_schema=False)
    async def widget_js() -> FileResponse:
        no_cache = {"Cache-Control": "no-cache"}
        return FileResponse(STATIC / "widget.js", media_type="text/javascript", headers=no_cache)

    @app.get("/widget", include_in_schema=False)
    async def widget_page() -> HTMLResponse:
        csp = (
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
            f"connect-src 'self'; base-uri 'none'; form-action 'none'; {frame_ancestors(settings)}"
        )
        html = (STATIC / "widget.html").read_text(encoding="utf-8")
        return HTMLResponse(html, headers={"Content-Security-Policy": csp, "Cache-Control": "no-cache"})

    @app.get("/docs", include_in_schema=False)
    async def docs() -> FileResponse:
        """The API reference, drawn in the browser from /openapi.json with no CDN."""
        return FileResponse(STATIC / "docs.html", media_type="text/html")


def create_app(
    settings: Settings, engine: Engine | None = None, host: str = "127.0.0.1", limits: Limits | None = None
) -> FastAPI:
    """Build the FastAPI app: JSON API, widget, docs and the Gradio chat mounted at /.

    `host` is the address the server binds to: one of the Host names it answers to by default.
    """
    from aiqa.web.ui import mount_ui

    engine = engine or Engine(settings)
    limits = limits or Limits.from_settings(settings)
    app = _new_app()
    app.state.engine = engine
    app.state.limits = limits
    access = ApiAccess(settings, limits)
    throttle = Throttle(settings, limits)
    users = ChatUsers(settings, throttle)
    _install_handlers(app)
    recorder = Recorder(settings, lambda: engine.index.version)
    app.state.recorder = recorder
    _add_ask_routes(
        app,
        limits,
        engine,
        access,
        users,
        lambda scope: settings.api_token is None or users(scope) is not None,
        recorder,
    )
    _add_admin_routes(app, settings, limits, engine, access)
    _add_pages(app, settings)
    mount_ui(app, engine, settings, users, throttle, limits=limits, recorder=recorder)
    # The last one added runs first: Host and Origin, then sign-in and rate limits, then body caps.
    app.add_middleware(BodyLimit, limits=limits, client=throttle.client, upload_budget=throttle.upload_wait)
    app.add_middleware(Guard, settings=settings, throttle=throttle, chat_user=users)
    app.add_middleware(AccessControl, settings=settings, bind=host)
    app.add_middleware(GiveBackWhenIdle)  # outermost: after every request, whatever answered it
    return app
