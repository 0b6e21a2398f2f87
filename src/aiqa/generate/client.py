"""Talk to an OpenAI-compatible chat-completions server (vLLM, Ollama, llama.cpp's server, a cloud endpoint).

Only the part of the protocol aiqa needs: POST {url}/chat/completions with messages, a token
budget and temperature 0, read whole or as server-sent events. Every failure of the server or of
the network becomes GenerationFailed, whose message says what went wrong and what to check.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import httpx

from aiqa.errors import GenerationFailed


@dataclass(frozen=True)
class ChatClient:
    url: str  # the API base, e.g. http://llm.internal:8000/v1
    model: str
    api_key: str | None = None
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 60.0  # longest wait for the next bytes (a whole reply, or the next streamed token)
    max_tokens: int = 400

    @property
    def endpoint(self) -> str:
        return f"{self.url.rstrip('/')}/chat/completions"

    def complete(self, messages: list[dict[str, str]]) -> str:
        """The whole reply's text."""
        return "".join(self.stream(messages))

    def stream(self, messages: list[dict[str, str]]) -> Iterator[str]:
        """The reply's text as the server sends it, piece by piece; GenerationFailed on any failure."""
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        body = {
            "model": self.model,
            "messages": messages,
            "max_tokens": self.max_tokens,
            "temperature": 0,  # the passages' wording, not variety, is wanted
            "stream": True,  # also for a whole reply: a slow server is then told apart from a dead one
        }
        timeout = httpx.Timeout(self.read_timeout_s, connect=self.connect_timeout_s)
        try:
            with httpx.stream("POST", self.endpoint, json=body, headers=headers, timeout=timeout) as response:
                if response.status_code != 200:
                    response.read()
                    raise GenerationFailed(
                        f"the LLM server at {self.url} answered {response.status_code}: "
                        f"{response.text[:200].strip() or 'no message'}; check AIQA_LLM_URL, AIQA_LLM_MODEL "
                        "and AIQA_LLM_API_KEY"
                    )
                finished = False
                for line in response.iter_lines():
                    piece, done = _event(line, self.url)
                    finished = finished or done
                    if piece:
                        yield piece
                if not finished:
                    raise GenerationFailed(f"the LLM server at {self.url} closed the reply before its end")
        except httpx.TimeoutException as exc:
            raise GenerationFailed(
                f"the LLM server at {self.url} did not answer within {self.read_timeout_s:g} s "
                f"({type(exc).__name__}): raise AIQA_LLM_TIMEOUT or check the server's load"
            ) from exc
        except httpx.HTTPError as exc:
            raise GenerationFailed(
                f"cannot reach the LLM server at {self.url} ({type(exc).__name__}: {exc}): check AIQA_LLM_URL "
                "and that the server runs"
            ) from exc


def _event(line: str, url: str) -> tuple[str, bool]:
    """One line of the event stream -> (text piece, whether the reply is complete)."""
    if not line.startswith("data:"):
        return "", False  # blank separators, comments (": ping") and other fields
    data = line[5:].strip()
    if data == "[DONE]":
        return "", True
    try:
        event = json.loads(data)
        if "error" in event:
            raise GenerationFailed(f"the LLM server at {url} reported an error: {str(event['error'])[:200]}")
        choice = event["choices"][0] if event.get("choices") else {}
        piece = (choice.get("delta") or {}).get("content") or ""
        if not isinstance(piece, str):
            raise TypeError("content is not text")
        return piece, choice.get("finish_reason") is not None
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise GenerationFailed(
            f"the LLM server at {url} sent something that is not an OpenAI chat-completions stream: {data[:120]!r}"
        ) from exc
