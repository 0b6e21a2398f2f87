"""What /api/health shows, and to whom: the index to anyone, the LLM server's state only to a signed-in caller.

The route needs no sign-in (a load balancer polls it), so nothing in it may help an attacker: a URL
is shown without its user name, password, query or fragment (AIQA_LLM_URL=http://user:pw@host/v1),
and the LLM server's error body, which can echo the prompt and so quote the documents, goes to the
server log only; the reply says that the server fails and what to check.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import regex

log = logging.getLogger("aiqa.web.health")
# The part of an LLM error message that repeats what the server sent (generate/client.py).
_SERVER_TEXT = regex.compile(
    r"(answered \d{3}|reported an error|is not an OpenAI chat-completions stream): .*?(?=; check |$)", regex.S
)


def shown_url(url: str) -> str:
    """A URL as it may be shown: scheme, host, port and path only."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        netloc = f"[{host}]" if ":" in host else host
        if parts.port is not None:
            netloc += f":{parts.port}"
    except ValueError:
        return "(a URL that cannot be read: check AIQA_LLM_URL)"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _error_shown(error: str, url: str) -> str:
    return _SERVER_TEXT.sub(r"\1 (its message is in the server log)", error.replace(url, shown_url(url)))


class HealthView:
    """Turns Engine.health() into the reply of one caller; logs each new LLM failure once, in full."""

    def __init__(self) -> None:
        self.logged: str | None = None

    def __call__(self, health: dict[str, Any], signed_in: bool) -> dict[str, Any]:
        out = dict(health)
        llm = health.get("llm")
        if not llm:
            return out
        url, error = llm.get("url") or "", llm.get("last_error")
        if error and llm.get("last_error_at") != self.logged:
            self.logged = llm.get("last_error_at")
            log.warning("the LLM server fails: %s", error)
        if error and "warning" in out:
            # The engine's warning quotes the error: name the failure, keep its text for the log.
            shown = _error_shown(error, url) if signed_in else "send a token to see why; the server log has it"
            out["warning"] = out["warning"].replace(f"({error})", f"({shown})")
        if not signed_in:
            del out["llm"]
            return out
        out["llm"] = {**llm, "url": shown_url(url), "last_error": _error_shown(error, url) if error else None}
        return out


def scrubbed(answer: dict[str, Any], llm_url: str | None) -> dict[str, Any]:
    """An answer JSON whose `generation.fallback` (why the quoted answer stands) holds no credentials
    and none of the text the LLM server sent back."""
    generation = answer.get("generation")
    if not (llm_url and isinstance(generation, dict) and generation.get("fallback")):
        return answer
    return {**answer, "generation": {**generation, "fallback": _error_shown(generation["fallback"], llm_url)}}
