"""The streamable-HTTP app: the MCP endpoint behind a bearer-token and Origin check.

Bound to loopback by default, where the SDK also checks the Host header against DNS
rebinding. Anywhere else a token is required (:func:`check_binding`). A request with an
``Origin`` header must come from an allowed origin (loopback pages by default), so a web
page the user happens to open cannot drive the server.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import math
import stat
from collections.abc import Sequence
from pathlib import Path

from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Receive, Scope, Send

from sleuth.servers.mcp.connections import (
    SlowClientGuard,
    connection_limits,
    protocol_class,
    quiet_accept_errors,
    quiet_logging,
    widen_listen_queue,
)
from sleuth.settings import Settings
from sleuth.tools import SleuthError

LOOPBACK_ORIGINS = ("http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*")
LOOPBACK_HOSTS = ("127.0.0.1:*", "localhost:*", "[::1]:*")
MIN_TOKEN_LENGTH = 24
MIN_TOKEN_BITS = 96


class ServeError(SleuthError, ValueError):
    """The server cannot start as asked (e.g. a public bind without a token)."""


def is_loopback(host: str) -> bool:
    """Tell whether ``host`` is a loopback name or address."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def read_token(path: Path) -> str:
    """Read a bearer token from a file (one word, hard enough to guess).

    Raises
    ------
    ServeError
        For a missing, empty or group/world-readable file, or a weak token
        (see :func:`check_token`).
    """
    try:
        mode = path.stat().st_mode
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeError) as err:
        reason = getattr(err, "strerror", None) or str(err)
        raise ServeError(f"cannot read the token file {path}: {reason}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ServeError(f"the token file {path} is readable by others; chmod 600 it")
    check_token(token, path)
    return token


def token_bits(token: str) -> float:
    """Estimate a token's strength: its length times log2 of its distinct characters.

    Examples
    --------
    >>> token_bits("a" * 20)
    0.0
    >>> round(token_bits("0123456789abcdef" * 4))
    256
    """
    return len(token) * math.log2(len(set(token))) if token else 0.0


def check_token(token: str, path: Path) -> None:
    """Refuse a token that is short, spaced or too regular to be secret.

    Raises
    ------
    ServeError
        For fewer than ``MIN_TOKEN_LENGTH`` characters, whitespace inside, or fewer than
        ``MIN_TOKEN_BITS`` estimated bits (:func:`token_bits`).
    """
    hint = "make one with `openssl rand -hex 32`"
    if len(token) < MIN_TOKEN_LENGTH or any(c.isspace() for c in token):
        raise ServeError(
            f"the token in {path} must be one word of at least {MIN_TOKEN_LENGTH} "
            f"characters; {hint}"
        )
    bits = token_bits(token)
    if bits < MIN_TOKEN_BITS:
        raise ServeError(
            f"the token in {path} is too easy to guess ({len(set(token))} distinct "
            f"characters, about {bits:.0f} bits; at least {MIN_TOKEN_BITS} needed); {hint}"
        )


def check_binding(host: str, token: str | None) -> None:
    """Refuse to bind anywhere but loopback without a token.

    Raises
    ------
    ServeError
        For a non-loopback ``host`` and no ``token``.
    """
    if not is_loopback(host) and not token:
        raise ServeError(
            f"binding to {host} exposes the server beyond this machine: give --token-file"
        )


class Guard:
    """ASGI middleware: bearer token (when set) and Origin allow-list, before the MCP app.

    Parameters
    ----------
    app : ASGI app
        The MCP app.
    token : str or None
        Required as ``Authorization: Bearer <token>`` when given.
    origins : sequence of str
        Allowed ``Origin`` values; ``scheme://host:*`` matches any port.
    """

    def __init__(self, app: ASGIApp, *, token: str | None, origins: Sequence[str]) -> None:
        self.app = app
        self.token = token.encode() if token else None
        self.origins = tuple(origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check an HTTP request, then pass it on (other scopes pass through)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v for k, v in scope.get("headers", [])}
        origin = headers.get("origin")
        if origin is not None and not self._origin_allowed(origin.decode("latin-1")):
            await _deny(send, 403, "origin not allowed", {})
            return
        if self.token is not None:
            given = headers.get("authorization", b"")
            scheme, _, value = given.partition(b" ")
            if scheme.lower() != b"bearer" or not hmac.compare_digest(value.strip(), self.token):
                challenge = {"www-authenticate": 'Bearer realm="sleuth"'}
                await _deny(send, 401, "a valid bearer token is required", challenge)
                return
        await self.app(scope, receive, send)

    def _origin_allowed(self, origin: str) -> bool:
        for allowed in self.origins:
            if origin == allowed:
                return True
            if allowed.endswith(":*") and origin.startswith(allowed[:-1]):
                port = origin[len(allowed) - 1 :]
                if port.isdigit():
                    return True
        return False


async def _deny(send: Send, status: int, message: str, extra: dict[str, str]) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in extra.items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def http_app(
    server: MCPServer,
    *,
    host: str,
    token: str | None,
    origins: Sequence[str] = (),
    max_body_bytes: int,
) -> ASGIApp:
    """Return the guarded streamable-HTTP app (endpoint ``/mcp``).

    Raises
    ------
    ServeError
        For a non-loopback ``host`` without a token.
    """
    check_binding(host, token)
    allowed_origins = [*LOOPBACK_ORIGINS, *origins]
    security = (
        TransportSecuritySettings(
            allowed_hosts=list(LOOPBACK_HOSTS), allowed_origins=allowed_origins
        )
        if is_loopback(host)
        else TransportSecuritySettings(enable_dns_rebinding_protection=False)
    )
    app = server.streamable_http_app(
        host=host, transport_security=security, max_request_body_size=max_body_bytes
    )
    return Guard(app, token=token, origins=allowed_origins)


def run_http(app: ASGIApp, *, host: str, port: int, settings: Settings, log_level: str) -> None:
    """Serve ``app`` with uvicorn until stopped, guarded against slow clients.

    Header and body deadlines and the connection cap come from ``settings``
    (``http_header_timeout``, ``http_body_timeout``, ``http_max_connections``,
    ``http_keep_alive``; see :mod:`sleuth.servers.mcp.connections`); repeated error lines
    (failed accepts, malformed requests) are rate-limited.
    """
    import asyncio

    import uvicorn

    cap, batch = connection_limits(settings.http_max_connections)
    guard = SlowClientGuard(
        header_timeout=settings.http_header_timeout,
        body_timeout=settings.http_body_timeout,
        max_connections=cap,
    )
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level.lower(),
        http=protocol_class(guard),
        timeout_keep_alive=settings.http_keep_alive,  # type: ignore[arg-type]
        backlog=batch,
    )
    quiet_logging()
    if cap < settings.http_max_connections:
        logging.getLogger("sleuth.servers.mcp.http").warning(
            "at most %d HTTP connections (http_max_connections %d) to fit the open-file limit",
            cap,
            settings.http_max_connections,
        )
    server = uvicorn.Server(config)

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(quiet_accept_errors(loop.get_exception_handler()))
        widening = asyncio.create_task(widen_listen_queue(server))
        await server.serve()
        widening.cancel()

    asyncio.run(serve())
