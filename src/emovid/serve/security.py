"""Who may talk to the server from a browser: the Host and Origin checks, and the headers every answer carries.

Without a token, the loopback address is the only guard, and a browser is the way round it: any web page the
user visits can send it requests. A page on another origin can post a simple form (no CORS preflight), and a
page whose domain name is rebound to 127.0.0.1 reads the answers as its own. Checking ``Host`` stops the
second, checking ``Origin`` the first.
"""

from __future__ import annotations

from collections.abc import Collection

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# The page and /docs load only their own scripts and styles; uploads are shown from blob: URLs.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
                           "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
                           "form-action 'self'; frame-ancestors 'none'")
HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),  # frame-ancestors for browsers without CSP 2
    (b"referrer-policy", b"no-referrer"),
]


def host_name(value: str) -> str:
    """The name in a ``Host`` header or ``--allowed-host`` value: no port, lower case (``[::1]`` keeps brackets)."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[: value.find("]") + 1]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class Guard:
    """ASGI middleware: refuse a foreign ``Host`` (HTTP 400) and a cross-origin unsafe request or WebSocket
    handshake (HTTP 403), and add the security headers to every answer.

    Args:
        app: the application behind.
        hosts: the ``Host`` names accepted (:func:`host_name` form); None accepts any (a token guards the API).
        origins: the origins allowed beside the server's own (``--cors``); None skips the Origin check.
    """

    def __init__(self, app: ASGIApp, hosts: Collection[str] | None, origins: Collection[str] | None) -> None:
        self.app = app
        self.hosts = None if hosts is None else {host_name(h) for h in hosts}
        self.origins = None if origins is None else {o.rstrip("/").lower() for o in origins}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []), *(h for h in HEADERS if h[0] not in present)]
            await send(message)

        # A WebSocket handshake has no method; no browser rule keeps a page from opening one to any server, so its
        # Origin is checked as an unsafe request's is.
        refusal = self.refusal(scope.get("method", "WEBSOCKET"), Headers(scope=scope))
        if refusal is not None:
            status, text = refusal
            await JSONResponse({"error": text}, status)(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)

    def refusal(self, method: str, headers: Headers) -> tuple[int, str] | None:
        """Why a request is refused, as (status, one line), or None to let it through."""
        host = headers.get("host", "")
        if self.hosts is not None and host_name(host) not in self.hosts:
            shown = host_name(host) or "(none)"
            return 400, (f"the Host header {shown!r} does not name this server; start it with --allowed-host {shown} "
                         f"to accept that name")
        origin = headers.get("origin")
        if self.origins is None or method in SAFE_METHODS or origin is None:
            return None  # no browser sent it cross-origin (browsers always send Origin on a cross-origin POST)
        origin = origin.rstrip("/").lower()
        if origin in self.origins or origin.split("://", 1)[-1] == host.lower():
            return None
        return 403, (f"cross-origin request from {origin!r} refused; start the server with --cors {origin} to "
                     f"allow that origin")
