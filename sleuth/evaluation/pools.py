"""Process pools of the evaluation, whose workers share the cores: one math thread each.

A worker forked from a parent that loaded numpy inherits its BLAS thread pool (as many
threads as cores); with ``--jobs`` workers on as many cores each product waits for threads
the others hold (:mod:`sleuth.tools.threads`), so these workers are limited after the fork.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from sleuth.tools.threads import one_math_thread


def _start(initializer: Callable[..., None] | None, initargs: tuple[Any, ...]) -> None:
    one_math_thread()
    if initializer is not None:
        initializer(*initargs)


def worker_pool(
    jobs: int, initializer: Callable[..., None] | None = None, initargs: tuple[Any, ...] = ()
) -> ProcessPoolExecutor:
    """Return a pool of ``jobs`` processes with one math thread each, then ``initializer``.

    Parameters
    ----------
    jobs : int
        Worker processes.
    initializer : callable, optional
        Run in each worker after the thread limit, with ``initargs``.
    initargs : tuple
    """
    return ProcessPoolExecutor(jobs, initializer=_start, initargs=(initializer, initargs))
