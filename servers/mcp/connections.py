"""HTTP connections under slow or hostile clients: deadlines, a connection cap, quiet logs.

uvicorn reads request headers without a deadline and accepts connections until the process
runs out of file descriptors; asyncio then logs every failed ``accept()`` with a traceback,
thousands of times a second. :func:`protocol_class` returns uvicorn's h11 protocol with

- a **header deadline**: a connection must finish a request's headers within
  ``header_timeout`` seconds of connecting (or of the request's first byte on a kept-alive
  connection), before any token is checked;
- a **body deadline**: the body must arrive within ``body_timeout`` seconds of the headers;
- a **connection cap**: at the cap, a new connection replaces the oldest one that has not
  finished its headers (then the oldest kept-alive one idle between requests); only when
  every connection is busy is the new one refused with 503. A client that sends its request
  at once is served even while the cap is full of half-open connections.

:class:`QuietLogs` rate-limits repeated log lines, and :func:`quiet_accept_errors` turns
asyncio's accept-error tracebacks into one counted line at most every few seconds.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("sleuth.servers.mcp.http")

FD_RESERVE = 24
"""File descriptors kept for the server's own files (case store, images, pipes)."""

MAX_ACCEPT_BATCH = 128
"""Connections asyncio accepts in one pass (uvicorn's ``backlog``), at most."""

BATCHES_IN_FLIGHT = 4
"""Accept passes between a connection's accept and the close of the one it replaced."""

LISTEN_QUEUE = 1024
"""Connections the kernel holds before the server accepts them."""

REPORT_INTERVAL = 60.0
"""Seconds between two reports of one kind of dropped connection."""

REFUSED = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
TIMED_OUT = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


def connection_limits(wanted: int) -> tuple[int, int]:
    """Return the connection cap and the accept batch that fit the open-file limit.

    asyncio accepts up to ``backlog`` connections in each pass of its loop, and a connection
    replaced at the cap closes a few passes later, so the cap, a few batches and
    :data:`FD_RESERVE` must fit in the limit; then ``accept()`` does not fail for want of a
    descriptor.

    Parameters
    ----------
    wanted : int
        The ``http_max_connections`` setting.

    Returns
    -------
    tuple of int
        The cap (at most ``wanted``) and the batch (uvicorn's ``backlog``).
    """
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted, MAX_ACCEPT_BATCH
    room = max(2, soft - FD_RESERVE)
    batch = max(1, min(MAX_ACCEPT_BATCH, room // (2 * BATCHES_IN_FLIGHT)))
    return max(1, min(wanted, room - BATCHES_IN_FLIGHT * batch)), batch


async def widen_listen_queue(server: Any, backlog: int = LISTEN_QUEUE) -> None:
    """Let the kernel queue ``backlog`` connections once ``server`` (uvicorn) listens.

    uvicorn's ``backlog`` is both the kernel's listen queue and the number of connections
    asyncio accepts in one pass; a small pass keeps descriptors within the limit, and a
    long queue keeps a burst of clients from waiting a second for a SYN to be resent.
    """
    while not server.started and not server.should_exit:
        await asyncio.sleep(0.05)
    for listening in getattr(server, "servers", []):
        for sock in listening.sockets:
            with socket.socket(fileno=os.dup(sock.fileno())) as same:
                same.listen(backlog)


@dataclass
class SlowClientGuard:
    """Deadlines and the connection cap shared by every connection of one server.

    Parameters
    ----------
    header_timeout : float
        Seconds to send a request's headers.
    body_timeout : float
        Seconds to send a request's body once its headers are in.
    max_connections : int
        Connections open at once (see :func:`connection_limits`).
    """

    header_timeout: float
    body_timeout: float
    max_connections: int
    open: dict[Any, None] = field(default_factory=dict)  # insertion-ordered: oldest first
    counts: dict[str, int] = field(default_factory=dict)
    _reported: dict[str, float] = field(default_factory=dict)

    def admit(self, connection: Any) -> bool:
        """Register a new connection; make room by dropping an idle one, or refuse it."""
        if len(self.open) >= self.max_connections:
            idle = [c for c in self.open if c.waiting_for_request()]  # oldest first
            # half-open or silent ones before kept-alive ones that have been answered
            victim = next((c for c in idle if not c.answered), idle[0] if idle else None)
            if victim is None:
                self.note("refused at the connection cap")
                return False
            victim.drop(TIMED_OUT)
            self.forget(victim)
            self.note("replaced at the connection cap")
        self.open[connection] = None
        return True

    def forget(self, connection: Any) -> None:
        """Unregister a closed connection."""
        self.open.pop(connection, None)

    def note(self, what: str) -> None:
        """Count an event; report each kind at most once a minute (one warning line)."""
        self.counts[what] = self.counts.get(what, 0) + 1
        now = time.monotonic()
        if what in self._reported and now - self._reported[what] < REPORT_INTERVAL:
            return
        log.warning(
            "slow or idle HTTP clients: %d %s since the last report (header timeout %gs, "
            "body timeout %gs, cap %d connections)",
            self.counts.pop(what),
            what,
            self.header_timeout,
            self.body_timeout,
            self.max_connections,
        )
        self._reported[what] = now


def protocol_class(guard: SlowClientGuard) -> type[H11Protocol]:
    """Return uvicorn's h11 protocol under ``guard`` (pass it as ``uvicorn.Config(http=...)``)."""

    class GuardedH11Protocol(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None
        _phase: str = ""
        answered = False  # a response went out on this connection

        def on_response_complete(self) -> None:
            self.answered = True
            super().on_response_complete()

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if not guard.admit(self):
                self.drop(REFUSED)
                return
            self._arm("headers", guard.header_timeout)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            state = self.conn.their_state
            if state is h11.IDLE:
                self._arm("headers", guard.header_timeout)
            elif state is h11.SEND_BODY:
                self._arm("body", guard.body_timeout)
            else:
                self._disarm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            guard.forget(self)
            super().connection_lost(exc)

        def waiting_for_request(self) -> bool:
            """Whether no request is in flight (headers still coming in, or idle)."""
            in_flight = self.cycle is not None and not self.cycle.response_complete
            return self.conn.their_state is h11.IDLE and not in_flight

        def drop(self, response: bytes) -> None:
            """Close the connection, answering first when no response has started."""
            self._disarm()
            if self.transport.is_closing():
                return
            if self.waiting_for_request():
                self.transport.write(response)
            self.transport.close()

        def _arm(self, phase: str, seconds: float) -> None:
            if self._phase == phase and self._deadline is not None:
                return  # a deadline runs from the phase's start, not from the last byte
            self._disarm()
            self._phase = phase
            self._deadline = self.loop.call_later(seconds, self._expire, phase)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            self._deadline, self._phase = None, ""

        def _expire(self, phase: str) -> None:
            self._deadline, self._phase = None, ""
            guard.note(f"dropped for slow {phase}")
            self.drop(TIMED_OUT)

    return GuardedH11Protocol


class QuietLogs(logging.Filter):
    """Let through at most ``burst`` records with the same message per ``interval`` seconds.

    The first record after a quiet spell says how many were held back.

    Parameters
    ----------
    burst : int
        Records of one message let through per interval.
    interval : float
        Seconds.
    """

    def __init__(self, burst: int = 3, interval: float = 10.0) -> None:
        super().__init__()
        self.burst = burst
        self.interval = interval
        self._windows: dict[tuple[str, str], list[float]] = {}
        self._held: dict[tuple[str, str], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        """Return whether ``record`` is logged (within its message's budget)."""
        key = (record.name, str(record.msg))
        now = time.monotonic()
        window = [t for t in self._windows.get(key, []) if now - t < self.interval]
        if len(window) >= self.burst:
            self._windows[key] = window
            self._held[key] = self._held.get(key, 0) + 1
            return False
        self._windows[key] = [*window, now]
        held = self._held.pop(key, 0)
        if held:
            record.msg = f"{record.getMessage()} ({held} more like it not logged)"
            record.args = None
        return True


ACCEPT_ERROR = "socket.accept() out of system resource"


def quiet_accept_errors(
    fallback: Callable[[asyncio.AbstractEventLoop, dict[str, Any]], None] | None = None,
) -> Callable[[asyncio.AbstractEventLoop, dict[str, Any]], None]:
    """Return an event-loop exception handler that logs failed accepts as one short line.

    asyncio reports every failed ``accept()`` (too many open files) with a traceback, and
    on Python 3.11 once per pending connection per loop pass. This handler logs one line
    through ``sleuth.servers.mcp.http`` (rate-limited by :class:`QuietLogs`); anything else goes
    to ``fallback`` (by default the loop's own handler).
    """

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if context.get("message") == ACCEPT_ERROR:
            error = context.get("exception")
            reason = getattr(error, "strerror", None) or str(error)
            log.error(
                "cannot accept HTTP connections: %s; lower http_max_connections or raise "
                "the open-file limit",
                reason,
            )
            return
        if fallback is not None:
            fallback(loop, context)
        else:
            loop.default_exception_handler(context)

    return handle


def quiet_logging() -> None:
    """Rate-limit the server's own and uvicorn's error logs (malformed requests, accepts)."""
    for name in ("sleuth.servers.mcp.http", "uvicorn.error", "asyncio"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, QuietLogs) for f in logger.filters):
            logger.addFilter(QuietLogs())
