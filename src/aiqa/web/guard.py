"""Who may use the chat and how fast: sign-in for the Gradio routes, per-client rate limits, token checks.

The rule is the one of /api/ask, for every route that answers a question or accepts a file:
while AIQA_API_TOKEN is unset everything is open (one machine, one user); once it is set, a
request must show who it is. The Gradio app mounted at / is guarded deny-by-default: only the
page shell, its static assets and the login form are public; every other path (queue, call,
run, upload, file, info, config...) needs one of

- a Gradio login (the login form; the password is the read token), its cookie checked here;
- the user header named by AIQA_TRUSTED_USER_HEADER, honoured only when the connection comes
  from an address in AIQA_TRUSTED_PROXIES (the company's reverse proxy / SSO sets it), and
  refused when it comes twice;
- `Authorization: Bearer <token>` (read or admin token), for scripts; Gradio itself honours it
  only with AIQA_TRUSTED_USER_HEADER (with the login form it wants its cookie: gradio_client's
  `auth=`).

Gradio's upload route takes files only with the admin token (the admin tab puts it in the
`aiqa-admin` cookie of that route once typed): the read token is in every portal page.
The API's token rule (tokens.py) runs here too, before the body is read.

Every POST counts against the client's AIQA_RATE_LIMIT (429 with Retry-After past it); tokens and
logins that aiqa refuses count against AIQA_BAD_TOKEN_LIMIT, and past that the client's further
attempts get 429 until the window frees. A client is the connecting address, or, when that is a
trusted proxy, the last address in its X-Forwarded-For; uvicorn's own proxy handling is off
(limits.py), so this is the one place that decides whom to believe.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from collections.abc import Callable
from urllib.parse import unquote

from limits import RateLimitItem, parse, storage, strategies
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aiqa.config import Settings
from aiqa.errors import AiqaError
from aiqa.web.access import reply
from aiqa.web.bodies import GRADIO_UPLOAD
from aiqa.web.limits import Limits
from aiqa.web.tokens import ADMIN_ROUTES, ASK_ROUTES, bearer_token, refusal, same_secret, token_groups

log = logging.getLogger("aiqa.web.guard")

# Gradio paths anyone may GET: the page shell (it shows the login form), assets and login itself.
PUBLIC_EXACT = {"/", "/favicon.ico", "/robots.txt", "/theme.css", "/gradio_api/theme.css", "/login", "/logout"}
PUBLIC_PREFIXES = ("/assets/", "/static/", "/svelte/")
# Our own routes: /api/* checks tokens itself (server.py); the widget and docs pages are static.
OWN_PREFIXES = ("/api/", "/v1/", "/widget", "/docs", "/openapi.json")
# Gradio's traffic dashboard tells who asks what when: not served at all.
BLOCKED_PREFIXES = ("/monitoring",)
# The cookie in which the admin tab hands the admin token to Gradio's upload route (ui.py).
ADMIN_COOKIE = "aiqa-admin"


def _rate(value: str, name: str) -> RateLimitItem | None:
    """Parse a rate such as "60/minute"; an empty value turns the limit off."""
    if not value:
        return None
    try:
        return parse(value)
    except ValueError:
        raise AiqaError(f"{name}={value!r} is not a rate: write it like 60/minute or 5/second") from None


class Throttle:
    """Per-client windows for requests, refused tokens and uploads (the `limits` library, in memory)."""

    def __init__(self, settings: Settings, limits: Limits | None = None):
        limits = limits or Limits.from_settings(settings)
        self.store = storage.MemoryStorage()
        self.window = strategies.MovingWindowRateLimiter(self.store)
        self.requests = _rate(settings.rate_limit, "AIQA_RATE_LIMIT")
        self.bad = _rate(settings.bad_token_limit, "AIQA_BAD_TOKEN_LIMIT")
        self.upload_files = parse(f"{limits.upload_files_per_hour}/hour")
        self.upload_mb = parse(f"{math.ceil(limits.upload_bytes_per_hour / 1_000_000)}/hour")
        self.proxies = [ipaddress.ip_network(p, strict=False) for p in settings.trusted_proxies]

    def trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.proxies)

    @staticmethod
    def peer(scope: Scope) -> str:
        """The address of the connection itself (uvicorn's proxy handling is off: limits.py)."""
        return (scope.get("client") or ("unknown", 0))[0]

    def client(self, scope: Scope) -> str:
        """The client's address; behind a trusted proxy, the last address it added to X-Forwarded-For."""
        peer = self.peer(scope)
        forwarded = ",".join(Headers(scope=scope).getlist("x-forwarded-for"))
        if forwarded and self.trusted(peer):
            return forwarded.split(",")[-1].strip() or peer
        return peer

    def _wait(self, item: RateLimitItem, *ids: str) -> int:
        reset = self.window.get_window_stats(item, *ids).reset_time
        return max(1, math.ceil(reset - time.time()))

    def hit(self, key: str) -> int:
        """Count a request; return 0, or the seconds to wait when the client is over its limit."""
        if self.requests is None or self.window.hit(self.requests, "req", key):
            return 0
        return self._wait(self.requests, "req", key)

    def blocked(self, key: str) -> int:
        """Seconds the client must wait before trying a token again (0: it may try now)."""
        if self.bad is None or self.window.test(self.bad, "bad", key):
            return 0
        return self._wait(self.bad, "bad", key)

    def refused(self, key: str) -> None:
        """Record a refused token or login."""
        if self.bad is not None:
            self.window.hit(self.bad, "bad", key)

    def upload_wait(self, key: str, files: int, nbytes: int, spend: bool) -> int:
        """Seconds before the client may upload `files` files of `nbytes` through Gradio (0: now);
        with `spend`, count them."""
        mb = max(1, math.ceil(nbytes / 1_000_000))
        for item, name, cost in ((self.upload_files, "up-files", files), (self.upload_mb, "up-mb", mb)):
            if not self.window.test(item, name, key, cost=cost):
                return self._wait(item, name, key)
        if spend:
            self.window.hit(self.upload_files, "up-files", key, cost=files)
            self.window.hit(self.upload_mb, "up-mb", key, cost=mb)
        return 0


class ChatUsers:
    """Tell who sends a request to the chat: a login cookie, the proxy's user header or a bearer token."""

    def __init__(self, settings: Settings, throttle: Throttle):
        self.settings = settings
        self.throttle = throttle
        self.logins: Callable[[], dict[str, str]] = dict  # Gradio's login tokens, set by mount_ui

    def __call__(self, scope: Scope) -> str | None:
        s = self.settings
        headers = Headers(scope=scope)
        token = bearer_token(headers.get("authorization"))
        if token_groups(s, token)[0]:
            return "token"
        if s.trusted_user_header and self.throttle.trusted(Throttle.peer(scope)):
            users = headers.getlist(s.trusted_user_header)
            # Twice: the client sent its own and the proxy added one, instead of replacing it.
            if len(users) == 1 and (user := users[0].strip()):
                return user
        logins = self.logins()
        for part in headers.get("cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name.startswith("access-token") and value in logins:
                return logins[value]
        return None

    def groups(self, scope: Scope) -> frozenset[str] | None:
        """The access groups of whoever sends a request, or None when they may read every document.

        Each credential shown adds its groups: a token's (tokens.token_groups), the proxy's groups
        header (honoured once and only from AIQA_TRUSTED_PROXIES), a chat login (the read token's).
        Nothing shown: the documents everyone may read."""
        s = self.settings
        headers = Headers(scope=scope)
        known, groups = token_groups(s, bearer_token(headers.get("authorization")))
        if known and groups is None:
            return None  # the admin token
        found = set(groups or ())
        if s.trusted_groups_header and self.throttle.trusted(Throttle.peer(scope)):
            sent = headers.getlist(s.trusted_groups_header)
            if len(sent) == 1:  # twice: the client's own came through; neither is believed
                found |= {g.strip() for g in sent[0].split(",") if g.strip()}
        logins = self.logins()
        for part in headers.get("cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name.startswith("access-token") and value in logins:
                found |= s.api_token_groups
        return frozenset(found)

    def login(self, username: str, password: str) -> bool:
        """Gradio's login form: any user name, the read token as password."""
        return same_secret(password, self.settings.api_token)


def error_body(path: str, status: int, message: str) -> dict:
    """The JSON of a refusal: {"error": message}, or OpenAI's error object on the /v1/ routes."""
    if not path.startswith("/v1/"):
        return {"error": message}
    kind = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_exceeded"}.get(status)
    code = {401: "invalid_api_key", 429: "rate_limit_exceeded"}.get(status)
    return {"error": {"message": message, "type": kind or "invalid_request_error", "param": None, "code": code}}


def _cookie(headers: Headers, name: str) -> str | None:
    for part in headers.get("cookie", "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


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

    def refusal(self, scope: Scope, headers: Headers) -> tuple[int, str, bool] | None:
        """(status, message, whether a token was wrong) for a request aiqa refuses before the app sees it."""
        path = scope["path"].rstrip("/")
        token = bearer_token(headers.get("authorization"))
        if scope.get("method") == "POST" and (path in ASK_ROUTES or path in ADMIN_ROUTES):  # their one method
            if refused := refusal(self.settings, path, token):
                return refused[0], refused[1], refused[0] == 401 and "authorization" in headers
            return None
        if self.needs_user(scope) and self.chat_user(scope) is None:
            message = "sign in first: open / and log in with the read token, or send Authorization: Bearer <token>"
            if len(headers.getlist(self.settings.trusted_user_header or "-")) > 1:
                message = "the user header came twice: the proxy must remove the client's own before it sets it"
            return 401, message, "authorization" in headers
        if path.endswith(GRADIO_UPLOAD):
            admin = self.settings.admin_token
            if admin is None:
                return 403, "uploading is off: set AIQA_ADMIN_TOKEN on the server to use the admin tab", False
            given = [t for t in (token, unquote(_cookie(headers, ADMIN_COOKIE) or "")) if t]
            if not any(same_secret(t, admin) for t in given):
                message = "uploading needs the admin token: type it in the admin tab first, then choose the files"
                return 403, message, bool(given)
        return None

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
            await reply(send, 429, error_body(path, 429, message), {"retry-after": str(wait)})
            return
        if refused := self.refusal(scope, headers):
            status, message, wrong = refused
            if wrong:
                self.throttle.refused(key)
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            auth = {"www-authenticate": "Bearer"} if status == 401 else None
            await reply(send, status, error_body(path, status, message), auth)
            return
        if scope.get("method") == "POST" and (wait := self.throttle.hit(key)):
            log.warning("rate limit: %s on %s, told to wait %d s", key, path, wait)
            message = f"too many requests from {key} (limit {self.settings.rate_limit}, AIQA_RATE_LIMIT): wait {wait} s"
            await reply(send, 429, error_body(path, 429, message), {"retry-after": str(wait)})
            return

        async def watch(message: Message) -> None:
            # Only what aiqa itself refuses counts: a wrong password on the login form (its check is
            # ChatUsers.login). Gradio's own 401s (it wants its cookie) are no wrong token.
            start = message["type"] == "http.response.start"
            if start and message["status"] == 400 and path.rstrip("/") == "/login" and scope.get("method") == "POST":
                self.throttle.refused(key)
            await send(message)

        await self.app(scope, receive, watch)
