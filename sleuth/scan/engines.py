"""Where images are screened: a local process pool (default) or Ray Data.

Both run :class:`~sleuth.scan.worker.Screener` on :class:`~sleuth.scan.sources.ImageRef`
and yield result rows as they complete, so they give the same rows for the same input
(apart from ``seconds``). The pool keeps at most a few images per worker in flight, so its
memory does not grow with the number of images.
"""

from __future__ import annotations

import functools
import json
import multiprocessing
import pickle
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Any

from sleuth.scan.sources import ImageRef
from sleuth.scan.worker import Screener, WorkerConfig, screen_in_worker, start_worker
from sleuth.tools import SleuthError
from sleuth.tools.threads import one_math_thread, worker_pool

IN_FLIGHT_PER_JOB = 4
RAY_BATCH = 4


class EngineError(SleuthError, RuntimeError):
    """An engine cannot start (Ray not installed, a cluster that does not answer)."""


def local_rows(
    refs: Iterable[ImageRef], config: WorkerConfig, jobs: int
) -> Iterator[dict[str, Any]]:
    """Screen images in a pool of ``jobs`` processes; yield rows as they complete.

    Each worker's math libraries use one thread (``jobs`` workers share the cores, as Ray's
    one-CPU actors do). Closing the generator (or Ctrl-C) cancels what has not started and
    stops the pool.
    """
    context = multiprocessing.get_context("forkserver")
    pool = worker_pool(jobs, start_worker, (config,), mp_context=context)
    pending: set[Future[dict[str, Any]]] = set()
    try:
        for ref in refs:
            pending.add(pool.submit(screen_in_worker, ref))
            if len(pending) >= jobs * IN_FLIGHT_PER_JOB:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                yield from (f.result() for f in done)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            yield from (f.result() for f in done)
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


def ray_rows(
    refs: Iterable[ImageRef], config: WorkerConfig, jobs: int, address: str | None
) -> Iterator[dict[str, Any]]:
    """Screen images with Ray Data (:func:`ray_map` of a :class:`Screener` per worker)."""
    return ray_map(functools.partial(Screener, config), refs, jobs, address)


def ray_map(
    make: Callable[[], Callable[[Any], dict[str, Any]]],
    items: Iterable[Any],
    jobs: int,
    address: str | None,
) -> Iterator[dict[str, Any]]:
    """Apply a worker to items with Ray Data (``map_batches`` over CPU actors); yield results.

    Parameters
    ----------
    make : callable
        Builds a worker once per actor (picklable: a class or a ``functools.partial``);
        the worker maps one item to a JSON-ready dict.
    items : iterable
        Picklable items (sent to the actors pickled).
    jobs : int
        Actors, one CPU each; also the CPUs of a local Ray instance.
    address : str or None
        A running cluster to join (``ray://...`` or ``auto``); without it a local Ray
        instance is started and stopped again.
    """
    try:
        import ray
    except ImportError:
        raise EngineError(
            "--engine ray needs Ray: pip install 'sleuth[ray]' (or use --engine local)"
        ) from None
    started = not ray.is_initialized()
    if started:
        try:
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                ray.init(num_cpus=jobs, include_dashboard=False, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise EngineError(f"cannot start or join Ray ({address or 'local'}): {err}") from None
    try:
        packed = [{"item": pickle.dumps(item)} for item in items]
        if not packed:
            return
        dataset = ray.data.from_items(packed).map_batches(
            _RayWorker,
            fn_constructor_args=(make,),
            batch_size=RAY_BATCH,
            concurrency=jobs,
            num_cpus=1,
        )
        for batch in dataset.iter_batches(batch_size=1, batch_format="numpy"):
            for text in batch["row"]:
                yield json.loads(str(text))
    finally:
        if started:
            ray.shutdown()


class _RayWorker:
    """A Ray Data actor: builds its worker once, maps each item to a result (as JSON)."""

    def __init__(self, make: Callable[[], Callable[[Any], dict[str, Any]]]) -> None:
        one_math_thread()  # one CPU per actor
        self.work = make()

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        rows = [json.dumps(self.work(pickle.loads(data))) for data in batch["item"]]  # noqa: S301 - our own items
        return {"row": np.array(rows, dtype=object)}
