"""The OpenAI-compatible endpoint: GET /v1/models and POST /v1/chat/completions over the same Engine.

So Open WebUI, LibreChat, chat bots and any script using the `openai` package can use aiqa as a
model named `aiqa`. The last user message is the question and the earlier user messages the
history; the answer is aiqa's answer (quoted, or written by the LLM server and checked) with its
[n] markers and a list of its sources in the message text, and the structured citations in the
extra field `citations` of the completion. The read token is the API key, and the same rate
limits, caps and access groups apply as to /api/ask. Errors are OpenAI's error objects
({"error": {"message", "type", "param", "code"}}, guard.error_body).

A streamed answer sends the final answer (after the LLM server's sentences were checked) in pieces:
an OpenAI client cannot take back text already shown, so nothing unchecked is sent.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import regex
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from aiqa.contract import final_json
from aiqa.engine import Engine
from aiqa.errors import BadRequest
from aiqa.feedback import new_answer_id
from aiqa.web.guard import ChatUsers
from aiqa.web.health import scrubbed
from aiqa.web.ratings import Recorder
from aiqa.web.tokens import ApiAccess

MODEL = "aiqa"
CREATED = 1_767_225_600  # 2026-01-01: the model's "created" time in /v1/models
SOURCES = {"ko": "출처", "en": "Sources"}
_PIECE = regex.compile(r"\S+\s*|\s+")


class OpenAIError(BadRequest):
    """A request the OpenAI-compatible routes refuse, with OpenAI's error fields."""

    def __init__(self, message: str, status: int = 400, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.param, self.code = status, param, code


def _text(content: Any, where: str) -> str:
    """A message's text: a string, or the text parts of a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(p, dict) for p in content):
        if any(p.get("type") != "text" for p in content):
            raise OpenAIError(f"{where}: only text content parts are read", param=where)
        return "\n".join(str(p.get("text", "")) for p in content)
    raise OpenAIError(f"{where}.content must be a string or a list of text parts", param=f"{where}.content")


def read_request(body: Any) -> tuple[str, list[dict[str, str]], bool]:
    """(question, earlier messages, stream) of a chat-completions body; raise OpenAIError saying what is wrong."""
    if not isinstance(body, dict):
        raise OpenAIError('send a JSON object like {"model": "aiqa", "messages": [{"role": "user", "content": "..."}]}')
    model = body.get("model")
    if model != MODEL:
        shown = json.dumps(model, ensure_ascii=False)[:80]
        raise OpenAIError(f"the model {shown} does not exist: use {MODEL!r}", 404, "model", "model_not_found")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise OpenAIError("messages must be a non-empty list of {role, content}", param="messages")
    read: list[dict[str, str]] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict) or message.get("role") not in ("system", "developer", "user", "assistant"):
            raise OpenAIError(f"{where} needs a role of system, user or assistant", param=f"{where}.role")
        read.append({"role": message["role"], "content": _text(message.get("content"), where)})
    users = [i for i, m in enumerate(read) if m["role"] == "user"]
    if not users:
        raise OpenAIError("messages hold no user message: the last user message is the question", param="messages")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise OpenAIError("stream must be true or false", param="stream")
    last = users[-1]
    earlier = [m for m in read[:last] if m["role"] in ("user", "assistant")]
    return read[last]["content"], earlier, stream


def message_text(answer: dict[str, Any]) -> str:
    """The answer with its [n] markers, then its numbered sources."""
    lines = [
        f"[{c['n']}] {c['source']}" + (f", {c['locator']}" if c.get("locator") else "") for c in answer["citations"]
    ]
    if not lines:
        return answer["answer"]
    return f"{answer['answer']}\n\n{SOURCES.get(answer.get('language', 'ko'), 'Sources')}:\n" + "\n".join(lines)


def _extra(answer: dict[str, Any]) -> dict[str, Any]:
    return {
        "citations": answer["citations"],
        "aiqa": {
            k: answer.get(k) for k in ("answer_id", "abstained", "mode", "confidence", "language", "resolved_question")
        },
    }


def completion(answer: dict[str, Any], ident: str) -> dict[str, Any]:
    text = message_text(answer)
    return {
        "id": ident,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": MODEL,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop", "logprobs": None}
        ],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        **_extra(answer),
    }


def chunks(answer: dict[str, Any], ident: str) -> Iterator[str]:
    """The answer as chat.completion.chunk events, then [DONE]."""
    created = int(time.time())

    def event(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        data = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": MODEL}
        return f"data: {json.dumps({**data, 'choices': [choice], **extra}, ensure_ascii=False)}\n\n"

    yield event({"role": "assistant", "content": ""})
    for piece in _PIECE.findall(message_text(answer)):
        yield event({"content": piece})
    yield event({}, "stop", **_extra(answer))
    yield "data: [DONE]\n\n"


def add_openai_routes(
    app: FastAPI,
    engine: Engine,
    access: ApiAccess,
    users: ChatUsers,
    writers: Callable[[], anyio.Semaphore],
    recorder: Recorder,
) -> None:
    llm_url = engine.settings.llm_url

    @app.get("/v1/models", dependencies=[Depends(access.read)], tags=["openai"])
    async def models() -> dict[str, Any]:
        """The one model: `aiqa`, answering from the documents."""
        return {"object": "list", "data": [{"id": MODEL, "object": "model", "created": CREATED, "owned_by": "aiqa"}]}

    @app.get("/v1/models/{name}", dependencies=[Depends(access.read)], tags=["openai"])
    async def model(name: str) -> dict[str, Any]:
        if name != MODEL:
            raise OpenAIError(f"the model {name[:80]!r} does not exist: use {MODEL!r}", 404, "model", "model_not_found")
        return {"id": MODEL, "object": "model", "created": CREATED, "owned_by": "aiqa"}

    @app.post("/v1/chat/completions", dependencies=[Depends(access.read)], tags=["openai"])
    async def chat_completions(request: Request) -> Any:
        """Answer the last user message from the documents (OpenAI's chat-completions shape)."""
        try:
            body = await request.json()
        except ValueError:
            raise OpenAIError("request body is not valid JSON: send the chat-completions object") from None
        question, history, stream = read_request(body)
        groups = users.groups(request.scope)
        reply = await access.run(engine.ask, question, 5, history, groups)
        async with writers():
            answer = scrubbed(await anyio.to_thread.run_sync(final_json, reply, engine.generator), llm_url)
        answer = await anyio.to_thread.run_sync(recorder.keep, new_answer_id(), answer, groups)
        ident = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        if stream:
            headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
            return StreamingResponse(chunks(answer, ident), media_type="text/event-stream", headers=headers)
        return JSONResponse(completion(answer, ident))

    @app.api_route("/v1/{rest:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"], include_in_schema=False)
    async def unknown(rest: str) -> None:
        raise OpenAIError(f"no route /v1/{rest[:80]}: aiqa serves /v1/models and /v1/chat/completions", 404)
