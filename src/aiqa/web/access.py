"""Which browser origins may call the API or frame the chat: allow-list, CORS and security headers.

Rules, for a request that carries an Origin header (browsers send one on cross-origin fetches
and on every POST):

- same origin (the Origin's host:port is the request's Host, or its X-Forwarded-Host behind a
  proxy): allowed;
- an origin in AIQA_ALLOWED_ORIGINS: allowed, and /api/* answers carry
  Access-Control-Allow-Origin for it (preflights included);
- no allow-list configured: a localhost page may call a server reached as localhost, a
  convenience for trying the widget on one machine; nothing else;
- anything else, "null" (file:// pages, sandboxed frames) included: 403 on /api/* and on the
  chat's own /gradio_api/*.

Requests without an Origin (curl, scripts, gradio_client) are not browsers and pass; the tokens
(guard.py, server.py) are what guard them.

Before any of that, the Host header must name this server (AIQA_ALLOWED_HOSTS; by default the
bind address, localhost, 127.0.0.1, ::1 and the hosts of AIQA_ALLOWED_ORIGINS): a page on an
attacker's domain that re-points its DNS name at this server (DNS rebinding) is refused.

Every response gets nosniff and a Referrer-Policy; HTML gets
`Content-Security-Policy: frame-ancestors 'self' <allowed origins>` unless it sets its own.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aiqa.config import Settings

LOOPBACK = {"localhost", "127.0.0.1", "::1", "[::1]"}
_PREFLIGHT = {
    "access-control-allow-methods": "GET, POST, OPTIONS",
    "access-control-allow-headers": "Authorization, Content-Type",
    "access-control-max-age": "600",
}
_SECURITY = {"x-content-type-options": "nosniff", "referrer-policy": "same-origin"}


def frame_ancestors(settings: Settings) -> str:
    """The CSP directive that lets only this server and the allowed origins frame our pages."""
    return " ".join(["frame-ancestors 'self'", *settings.allowed_origins])


def _hostname(netloc: str) -> str:
    try:
        return (urlsplit(f"//{netloc}").hostname or "").lower()
    except ValueError:  # a malformed Host such as "[::1"
        return ""


def allowed_hosts(settings: Settings, bind: str) -> set[str] | None:
    """Host names the server answers to, or None for any ("*")."""
    if "*" in settings.allowed_hosts:
        return None
    if settings.allowed_hosts:
        return {h.lower().strip("[]") for h in settings.allowed_hosts}
    hosts = {"localhost", "127.0.0.1", "::1", *(_hostname(urlsplit(o).netloc) for o in settings.allowed_origins)}
    if bind not in ("", "0.0.0.0", "::"):
        hosts.add(bind.lower().strip("[]"))
    return hosts - {""}


async def reply(send: Send, status: int, body: dict | None, extra: dict[str, str] | None = None) -> None:
    """Answer a request directly from a middleware, as JSON."""
    data = json.dumps(body, ensure_ascii=False).encode() if body is not None else b""
    headers = {**_SECURITY, **(extra or {}), "vary": "Origin"}
    if body is not None:
        headers["content-type"] = "application/json"
    headers["content-length"] = str(len(data))
    raw = [(k.encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": data})


class AccessControl:
    """Pure ASGI middleware (streaming responses of the chat pass through untouched)."""

    def __init__(self, app: ASGIApp, settings: Settings, bind: str = "127.0.0.1"):
        self.app = app
        self.hosts = allowed_hosts(settings, bind)
        self.allowed = {o.lower() for o in settings.allowed_origins}
        self.csp = frame_ancestors(settings)

    def origin_allowed(self, origin: str, hosts: list[str]) -> tuple[bool, bool]:
        """Return (allowed, cross_origin) for a request's Origin and the hosts it was sent to."""
        origin = origin.lower().rstrip("/")
        netloc = urlsplit(origin).netloc
        if netloc and netloc in hosts:
            return True, False
        if origin in self.allowed:
            return True, True
        local = not self.allowed and _hostname(netloc) in LOOPBACK and _hostname(hosts[0]) in LOOPBACK
        return local, True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        headers = Headers(scope=scope)
        host = _hostname(headers.get("host", ""))
        if self.hosts is not None and host not in self.hosts:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            shown = headers.get("host", "(none)").encode("unicode_escape").decode("ascii")[:100]
            message = f"this server does not answer to host {shown}: add it to AIQA_ALLOWED_HOSTS"
            await reply(send, 421, {"error": message})
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        origin = headers.get("origin")
        api = path.startswith("/api/")
        cors_origin = None
        if origin is not None and (api or path.startswith("/gradio_api/")):
            # Behind a proxy that rewrites Host, X-Forwarded-Host names the public host; a web page
            # cannot set that header on a cross-origin request without a preflight, which is refused.
            hosts = [headers.get("host", "").lower()]
            hosts += [h.strip().lower() for h in headers.get("x-forwarded-host", "").split(",")[:1] if h.strip()]
            allowed, cross = self.origin_allowed(origin, hosts)
            if not allowed:
                shown = origin if origin != "null" else "null (a file:// page or a sandboxed frame)"
                await reply(
                    send,
                    403,
                    {"error": f"origin {shown} may not call this API: add it to AIQA_ALLOWED_ORIGINS"},
                )
                return
            if api and cross:
                cors_origin = origin
                if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
                    await reply(send, 204, None, {**_PREFLIGHT, "access-control-allow-origin": origin})
                    return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                for name, value in _SECURITY.items():
                    if name not in out:
                        out[name] = value
                if out.get("content-type", "").startswith("text/html") and "content-security-policy" not in out:
                    out["content-security-policy"] = self.csp
                if cors_origin is not None:
                    out["access-control-allow-origin"] = cors_origin
                    out.add_vary_header("Origin")
            await send(message)

        await self.app(scope, receive, send_with_headers)
