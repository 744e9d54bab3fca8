"""Keep the workbench to its user: Host and Origin checks, a token off loopback, safe headers.

Bound to loopback (the default), the app answers only requests whose ``Host`` is a
loopback name, so a web page cannot reach it through DNS rebinding. A request with an
``Origin`` header must come from the app itself or an allowed origin, so another site
cannot post to it. With a token (required off loopback) the browser presents it once in
the URL the server prints (``/?token=...``); the app answers with an HttpOnly,
SameSite=Strict cookie and a redirect that drops it from the address bar. Scripts may also
send ``Authorization: Bearer <token>``. Every response forbids framing, sniffing and
outside requests (:data:`CSP`).
"""

from __future__ import annotations

import hmac
import urllib.parse
from collections.abc import Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sleuth.servers.mcp.http import is_loopback

COOKIE = "sleuth_ui"
CSP = (
    "default-src 'none'; img-src 'self' data: blob:; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]


def host_name(host: str) -> str:
    """Return the name part of a ``Host`` header (``[::1]:80`` gives ``::1``).

    Examples
    --------
    >>> host_name("127.0.0.1:8766"), host_name("[::1]:80"), host_name("localhost")
    ('127.0.0.1', '::1', 'localhost')
    """
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class BrowserGuard:
    """ASGI middleware in front of the workbench.

    Parameters
    ----------
    app : ASGI app
        The workbench.
    loopback : bool
        Whether the server is bound to loopback: then only loopback ``Host`` names pass.
    token : str or None
        Required (cookie, bearer header, or once as ``?token=``) when given.
    origins : sequence of str
        Origins allowed besides the app's own (``scheme://host:port``).
    """

    def __init__(
        self, app: ASGIApp, *, loopback: bool, token: str | None, origins: Sequence[str] = ()
    ) -> None:
        self.app = app
        self.loopback = loopback
        self.token = token
        self.origins = frozenset(o.rstrip("/") for o in origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check an HTTP request, then pass it on with the safe headers added."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        if self.loopback and not is_loopback(host_name(host)):
            await respond(send, 403, "this workbench answers on a loopback address only")
            return
        origin = headers.get("origin")
        if origin is not None and origin.rstrip("/") not in self.origins | {
            f"{scope.get('scheme', 'http')}://{host}"
        }:
            await respond(send, 403, "requests from other sites are not allowed")
            return
        if self.token is not None:
            query = urllib.parse.parse_qs(scope.get("query_string", b"").decode("latin-1"))
            offered = query.get("token", [None])[0]
            if offered is not None and scope["method"] == "GET" and self._valid(offered):
                await redirect_with_cookie(send, scope["path"], self.token)
                return
            if not (self._valid(_cookie(headers.get("cookie", ""))) or self._bearer(headers)):
                await respond(
                    send, 401, "open the address `sleuth ui` printed (it carries the token)"
                )
                return

        async def send_safely(message: Message) -> None:
            if message["type"] == "http.response.start":
                given = list(message.get("headers", []))
                if not any(k.lower() == b"cache-control" for k, _ in given):
                    given.append((b"cache-control", b"no-store"))
                message = {**message, "headers": [*given, *HEADERS]}
            await send(message)

        await self.app(scope, receive, send_safely)

    def _valid(self, offered: str | None) -> bool:
        if self.token is None or offered is None:
            return False
        return hmac.compare_digest(offered.encode(), self.token.encode())

    def _bearer(self, headers: dict[str, str]) -> bool:
        scheme, _, value = headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and self._valid(value.strip())


def _cookie(header: str) -> str | None:
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE:
            return value
    return None


async def respond(send: Send, status: int, message: str) -> None:
    """Send a short plain-text refusal."""
    body = message.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                *HEADERS,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def redirect_with_cookie(send: Send, path: str, token: str) -> None:
    """Set the token cookie and send the browser back to ``path`` without the token."""
    cookie = f"{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/"
    location = path if path.startswith("/") and not path.startswith("//") else "/"
    await send(
        {
            "type": "http.response.start",
            "status": 303,
            "headers": [
                (b"location", location.encode("latin-1", "replace")),
                (b"set-cookie", cookie.encode()),
                (b"content-length", b"0"),
                *HEADERS,
            ],
        }
    )
    await send({"type": "http.response.body", "body": b""})
