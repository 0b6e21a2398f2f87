"""Who may use the chat and how fast: sign-in for the Gradio routes, per-client rate limits, token checks.

The rule is the one of /api/ask, for every route that answers a question or accepts a file:
while AIQA_API_TOKEN is unset everything is open (one machine, one user); once it is set, a
request must show who it is. The Gradio app mounted at / is guarded deny-by-default: only the
page shell, its static assets and the login form are public; every other path (queue, call,
run, upload, file, info, config...) needs one of

- a Gradio login (the login form; the password is the read token), its cookie checked here;
- the user header named by AIQA_TRUSTED_USER_HEADER, honoured only when the request comes from
  an address in AIQA_TRUSTED_PROXIES (the company's reverse proxy / SSO sets it);
- `Authorization: Bearer <token>` (read or admin token), for scripts.

Every POST counts against the client's AIQA_RATE_LIMIT (429 with Retry-After past it); answers
that refuse a token or a login count against AIQA_BAD_TOKEN_LIMIT, and past that the client's
further attempts get 429 until the window frees. A client is its address, or the address a
trusted proxy puts last in X-Forwarded-For. ApiAccess holds the token checks of the JSON API
(the read token asks, only the admin token rebuilds or uploads) and bounds its waiting line.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import math
import secrets
import time
from collections.abc import Callable
from typing import Annotated

import anyio
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from limits import parse, storage, strategies
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aiqa.config import Settings
from aiqa.errors import AiqaError
from aiqa.web.access import reply

log = logging.getLogger("aiqa.web.guard")

# Engine calls over HTTP at once; with the chat's queue (ui.py) at most 4 run on the 2-core box.
API_CONCURRENCY = 2
# Largest /api/ask body: a question of 1,000 characters and a capped history fit many times over.
MAX_ASK_BYTES = 256_000
_BEARER = HTTPBearer(auto_error=False, description="AIQA_API_TOKEN to ask, AIQA_ADMIN_TOKEN to change the index")
_Creds = Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]

# Gradio paths anyone may GET: the page shell (it shows the login form), assets and login itself.
PUBLIC_EXACT = {"/", "/favicon.ico", "/robots.txt", "/theme.css", "/gradio_api/theme.css", "/login", "/logout"}
PUBLIC_PREFIXES = ("/assets/", "/static/", "/svelte/")
# Our own routes: /api/* checks tokens itself (server.py); the widget and docs pages are static.
OWN_PREFIXES = ("/api/", "/widget", "/docs", "/openapi.json")
# Gradio's traffic dashboard tells who asks what when: not served at all.
BLOCKED_PREFIXES = ("/monitoring",)


def same_secret(given: str | None, expected: str | None) -> bool:
    """Compare a token in constant time; an unset secret matches nothing."""
    return expected is not None and given is not None and secrets.compare_digest(given.encode(), expected.encode())


def _rate(value: str, name: str):
    """Parse a rate such as "60/minute"; an empty value turns the limit off."""
    if not value:
        return None
    try:
        return parse(value)
    except ValueError:
        raise AiqaError(f"{name}={value!r} is not a rate: write it like 60/minute or 5/second") from None


class Throttle:
    """Per-client windows for requests and for refused tokens (the `limits` library, in memory)."""

    def __init__(self, settings: Settings):
        self.store = storage.MemoryStorage()
        self.window = strategies.MovingWindowRateLimiter(self.store)
        self.requests = _rate(settings.rate_limit, "AIQA_RATE_LIMIT")
        self.bad = _rate(settings.bad_token_limit, "AIQA_BAD_TOKEN_LIMIT")
        self.proxies = [ipaddress.ip_network(p, strict=False) for p in settings.trusted_proxies]

    def trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.proxies)

    def client(self, scope: Scope) -> str:
        """The client's address; behind a trusted proxy, the last address it added to X-Forwarded-For."""
        peer = (scope.get("client") or ("unknown", 0))[0]
        forwarded = Headers(scope=scope).get("x-forwarded-for")
        if forwarded and self.trusted(peer):
            return forwarded.split(",")[-1].strip() or peer
        return peer

    def _wait(self, item, key: str) -> int:
        reset = self.window.get_window_stats(item, key).reset_time
        return max(1, math.ceil(reset - time.time()))

    def hit(self, key: str) -> int:
        """Count a request; return 0, or the seconds to wait when the client is over its limit."""
        if self.requests is None or self.window.hit(self.requests, "req", key):
            return 0
        return self._wait(self.requests, key)

    def blocked(self, key: str) -> int:
        """Seconds the client must wait before trying a token again (0: it may try now)."""
        if self.bad is None or self.window.test(self.bad, "bad", key):
            return 0
        return self._wait(self.bad, key)

    def refused(self, key: str) -> None:
        """Record a refused token or login."""
        if self.bad is not None:
            self.window.hit(self.bad, "bad", key)


class ChatUsers:
    """Tell who sends a request to the chat: a login cookie, the proxy's user header or a bearer token."""

    def __init__(self, settings: Settings, throttle: Throttle):
        self.settings = settings
        self.throttle = throttle
        self.logins: Callable[[], dict[str, str]] = dict  # Gradio's login tokens, set by mount_ui

    def __call__(self, scope: Scope) -> str | None:
        s = self.settings
        headers = Headers(scope=scope)
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and (same_secret(token, s.api_token) or same_secret(token, s.admin_token)):
            return "token"
        peer = (scope.get("client") or ("", 0))[0]
        if s.trusted_user_header and self.throttle.trusted(peer) and (user := headers.get(s.trusted_user_header)):
            return user.strip() or None
        logins = self.logins()
        for part in headers.get("cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name.startswith("access-token") and value in logins:
                return logins[value]
        return None

    def login(self, username: str, password: str) -> bool:
        """Gradio's login form: any user name, the read token as password."""
        return same_secret(password, self.settings.api_token)


def _credentials(scope: Scope, headers: Headers) -> bool:
    return "authorization" in headers or (scope.get("method") == "POST" and scope["path"].rstrip("/") == "/login")


class Guard:
    """Pure ASGI middleware in front of the whole app (API and Gradio alike)."""

    def __init__(self, app: ASGIApp, settings: Settings, throttle: Throttle, chat_user: Callable[[Scope], str | None]):
        self.app = app
        self.settings = settings
        self.throttle = throttle
        self.chat_user = chat_user

    def needs_user(self, scope: Scope) -> bool:
        path = scope["path"]
        if self.settings.api_token is None or path.startswith(OWN_PREFIXES):
            return False
        if path.rstrip("/") == "/login":
            return False
        public = path in PUBLIC_EXACT or path.startswith(PUBLIC_PREFIXES)
        return not (public and scope.get("method") in ("GET", "HEAD"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith(BLOCKED_PREFIXES):
            await reply(send, 404, {"error": f"{path} is not served: see docs/SECURITY.md"})
            return
        key = self.throttle.client(scope)
        headers = Headers(scope=scope)
        if _credentials(scope, headers) and (wait := self.throttle.blocked(key)):
            log.warning("wrong tokens: %s on %s, told to wait %d s", key, path, wait)
            message = f"too many wrong tokens or logins from {key}: wait {wait} s"
            await reply(send, 429, {"error": message}, {"retry-after": str(wait)})
            return
        if self.needs_user(scope) and self.chat_user(scope) is None:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            message = "sign in first: open / and log in with the read token, or send Authorization: Bearer <token>"
            await reply(send, 401, {"error": message}, {"www-authenticate": "Bearer"})
            return
        if scope.get("method") == "POST" and (wait := self.throttle.hit(key)):
            log.warning("rate limit: %s on %s, told to wait %d s", key, path, wait)
            message = f"too many requests from {key} (limit {self.settings.rate_limit}, AIQA_RATE_LIMIT): wait {wait} s"
            await reply(send, 429, {"error": message}, {"retry-after": str(wait)})
            return

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start" and _credentials(scope, headers):
                status = message["status"]
                if status == 401 or (status == 400 and path.rstrip("/") == "/login"):
                    self.throttle.refused(key)
            await send(message)

        await self.app(scope, receive, watch)


class ApiAccess:
    """The API's FastAPI dependencies that check tokens, and its bounded thread pool for engine calls."""

    def __init__(self, settings: Settings, queue_size: int):
        self.settings = settings
        self.queue_size = queue_size
        self.limiter = functools.cache(lambda: anyio.CapacityLimiter(API_CONCURRENCY))  # made in the event loop
        self.waiting = 0

    def read(self, creds: _Creds) -> None:
        s = self.settings
        if s.api_token is None:
            return
        given = creds.credentials if creds else None
        if not (same_secret(given, s.api_token) or same_secret(given, s.admin_token)):
            message = "missing or wrong token: send Authorization: Bearer <AIQA_API_TOKEN>"
            raise HTTPException(401, message, {"WWW-Authenticate": "Bearer"})

    def admin(self, creds: _Creds) -> None:
        s = self.settings
        if s.admin_token is None:
            message = "changing the index over HTTP is off: set AIQA_ADMIN_TOKEN on the server to enable it"
            raise HTTPException(403, message)
        if not same_secret(creds.credentials if creds else None, s.admin_token):
            message = (
                "missing or wrong admin token: send Authorization: Bearer <AIQA_ADMIN_TOKEN> "
                "(the read token does not open this route)"
            )
            raise HTTPException(401, message, {"WWW-Authenticate": "Bearer"})

    @staticmethod
    def small_body(request: Request) -> None:
        if int(request.headers.get("content-length") or 0) > MAX_ASK_BYTES:
            raise HTTPException(413, f"request body is over {MAX_ASK_BYTES // 1000} KB: send a shorter history")

    async def run(self, fn, *args):
        """Run an engine call in a worker thread; refuse with 503 when too many already wait."""
        if self.waiting >= self.queue_size:
            raise HTTPException(503, "the server is busy: try again in a few seconds", {"Retry-After": "5"})
        self.waiting += 1
        try:
            return await anyio.to_thread.run_sync(functools.partial(fn, *args), limiter=self.limiter())
        finally:
            self.waiting -= 1
