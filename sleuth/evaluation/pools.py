"""Process pools of the evaluation, whose workers share the cores: one math thread each.

A worker forked from a parent that loaded numpy inherits its BLAS thread pool (as many
threads as cores). With ``--jobs`` workers on as many cores, each matrix product then
starts threads that wait for cores the other workers hold: on 2 cores, ``sleuth eval``
on 60 images and every track took 91 s that way and 58 s with these pools. ``sleuth scan``'s
workers start from a fresh interpreter with the thread variables set; these are limited
after the fork, with threadpoolctl.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

_LIMITS: list[Any] = []  # keeps the limit in force for the worker's life


def one_math_thread() -> None:
    """Limit this process's BLAS and OpenMP pools to one thread each."""
    from threadpoolctl import threadpool_limits

    _LIMITS.append(threadpool_limits(limits=1))


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
