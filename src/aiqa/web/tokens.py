"""The JSON API's tokens: the read token asks, only the admin token rebuilds or uploads.

`refusal()` is the one rule; guard.py applies it before a request's body is read (a body of any
size from a client without the token costs nothing), and the routes' FastAPI dependencies apply
it again, which also draws the bearer scheme in /openapi.json. ApiAccess bounds the line of
engine calls waiting for a worker thread.
"""

from __future__ import annotations

import functools
import secrets
from typing import Annotated

import anyio
from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException

from aiqa.config import Settings
from aiqa.web.limits import Limits

_BEARER = HTTPBearer(auto_error=False, description="AIQA_API_TOKEN to ask, AIQA_ADMIN_TOKEN to change the index")
_Creds = Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]
ASK_ROUTES = ("/api/ask", "/api/feedback", "/v1/chat/completions")
ADMIN_ROUTES = ("/api/index", "/api/documents")
BEARER = {"WWW-Authenticate": "Bearer"}


def same_secret(given: str | None, expected: str | None) -> bool:
    """Compare a token in constant time; an unset secret matches nothing."""
    return expected is not None and given is not None and secrets.compare_digest(given.encode(), expected.encode())


def token_groups(settings: Settings, token: str | None) -> tuple[bool, frozenset[str] | None]:
    """(whether `token` is one of the server's, the access groups it reads as: None for every document).

    The admin token reads everything; the read token as AIQA_API_TOKEN_GROUPS (the portal's public);
    each token of AIQA_READ_TOKENS as its own groups. Every token is compared, in constant time."""
    found: tuple[bool, frozenset[str] | None] = (False, frozenset())
    for secret, groups in settings.read_tokens.items():
        if same_secret(token, secret):
            found = (True, groups)
    if same_secret(token, settings.api_token):
        found = (True, settings.api_token_groups)
    if same_secret(token, settings.admin_token):
        found = (True, None)
    return found


def bearer_token(authorization: str | None) -> str | None:
    scheme, _, token = (authorization or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def refusal(settings: Settings, path: str, token: str | None) -> tuple[int, str] | None:
    """(status, message) when `token` may not use the API route `path`; None when it may."""
    path = path.rstrip("/")
    if path in ADMIN_ROUTES:
        if settings.admin_token is None:
            return 403, "changing the index over HTTP is off: set AIQA_ADMIN_TOKEN on the server to enable it"
        if not same_secret(token, settings.admin_token):
            return 401, (
                "missing or wrong admin token: send Authorization: Bearer <AIQA_ADMIN_TOKEN> "
                "(the read token does not open this route)"
            )
    elif path in ASK_ROUTES and settings.api_token is not None and not token_groups(settings, token)[0]:
        return 401, "missing or wrong token: send Authorization: Bearer <AIQA_API_TOKEN>"
    return None


class ApiAccess:
    """The API's FastAPI dependencies that check tokens, and its bounded thread pool for engine calls."""

    def __init__(self, settings: Settings, limits: Limits):
        self.settings = settings
        self.queue_size = limits.queue_size
        self.limiter = functools.cache(lambda: anyio.CapacityLimiter(limits.api_concurrency))  # made in the loop
        self.waiting = 0

    def _check(self, path: str, creds: HTTPAuthorizationCredentials | None) -> None:
        if refused := refusal(self.settings, path, creds.credentials if creds else None):
            status, message = refused
            raise HTTPException(status, message, BEARER if status == 401 else None)

    def read(self, creds: _Creds) -> None:
        self._check(ASK_ROUTES[0], creds)

    def admin(self, creds: _Creds) -> None:
        self._check(ADMIN_ROUTES[0], creds)

    async def run(self, fn, *args):
        """Run an engine call in a worker thread; refuse with 503 when too many already wait."""
        if self.waiting >= self.queue_size:
            raise HTTPException(503, "the server is busy: try again in a few seconds", {"Retry-After": "5"})
        self.waiting += 1
        try:
            return await anyio.to_thread.run_sync(functools.partial(fn, *args), limiter=self.limiter())
        finally:
            self.waiting -= 1
