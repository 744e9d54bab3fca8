"""One math thread per worker process, for pools whose workers share the cores.

NumPy's BLAS and any OpenMP runtime start one thread per core. A process that is one of
``N`` workers on ``N`` cores gains nothing from them: each product wakes threads that wait
for cores the other workers hold, and idle BLAS threads spin before they sleep. Measured
on 2 cores: ``sleuth eval`` on 60 images and every track took 91 s with the default pools
and 58 s with one thread per worker; one MCP analysis used about 1.0 s of CPU in 0.5 s of
wall time, and 0.5 s of CPU in the same wall time with one thread.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
"""Read by math libraries as they load (Ray sets the first for its one-CPU actors)."""

_LIMITS: list[Any] = []  # keeps the limit in force for the process's life


def one_math_thread() -> None:
    """Limit this process's math libraries to one thread each, loaded now or later.

    The libraries loaded already are limited with threadpoolctl; the thread variables are
    set (where unset) for those loaded later, in this process or its children. Call it in
    a worker process, never in one that runs a single job on every core.
    """
    from threadpoolctl import threadpool_limits

    for variable in THREAD_VARIABLES:
        os.environ.setdefault(variable, "1")
    _LIMITS.append(threadpool_limits(limits=1))


def _start(initializer: Callable[..., None] | None, initargs: tuple[Any, ...]) -> None:
    one_math_thread()
    if initializer is not None:
        initializer(*initargs)


def worker_pool(
    jobs: int,
    initializer: Callable[..., None] | None = None,
    initargs: tuple[Any, ...] = (),
    *,
    mp_context: Any = None,
) -> ProcessPoolExecutor:
    """Return a pool of ``jobs`` processes with one math thread each, then ``initializer``.

    Parameters
    ----------
    jobs : int
        Worker processes.
    initializer : callable, optional
        Run in each worker after the thread limit, with ``initargs``.
    initargs : tuple
    mp_context : multiprocessing context, optional
        How workers start (the platform's default, else: ``sleuth scan`` uses the
        forkserver).
    """
    return ProcessPoolExecutor(
        jobs, mp_context=mp_context, initializer=_start, initargs=(initializer, initargs)
    )
