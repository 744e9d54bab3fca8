"""A bound on the server's blocking work: a few jobs run, a few more wait, the rest are refused.

Analyses and tool runs are CPU-bound and synchronous; they run in worker threads, at most
``running`` at a time (a thread whose analysis runs in a worker process,
:mod:`sleuth.servers.mcp.pool`, waits there on the worker's pipe, so the bound holds for
both). Up to ``waiting`` more calls queue for a free slot; a call beyond that gets
:class:`Busy` at once, a clear error the client can retry, instead of an ever-growing
queue.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from sleuth.tools import SleuthError

T = TypeVar("T")


class Busy(SleuthError, RuntimeError):
    """Every worker is busy and the queue is full; try again shortly."""


class Gate:
    """Run blocking functions in worker threads under a concurrency bound.

    Parameters
    ----------
    running : int
        Jobs at once.
    waiting : int
        Jobs that may wait for a slot; more are refused with :class:`Busy`.
    """

    def __init__(self, running: int, waiting: int) -> None:
        if running < 1 or waiting < 0:
            raise ValueError("running must be >= 1 and waiting >= 0")
        self.running = running
        self.waiting = waiting
        self._admitted = 0
        self._limiter: anyio.CapacityLimiter | None = None

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` in a worker thread once a slot is free.

        Raises
        ------
        Busy
            When ``running + waiting`` jobs are already admitted.
        """
        if self._limiter is None:  # made inside the event loop that uses it
            self._limiter = anyio.CapacityLimiter(self.running)
        if self._admitted >= self.running + self.waiting:
            raise Busy(
                f"the server is busy ({self.running} jobs running, {self.waiting} waiting); "
                "try again in a moment"
            )
        self._admitted += 1
        try:
            return await anyio.to_thread.run_sync(fn, *args, limiter=self._limiter)
        finally:
            self._admitted -= 1
