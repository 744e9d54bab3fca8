"""Where the server's CPU-bound jobs run: worker processes (one per core), or its own threads.

An analysis is Python and NumPy work that holds the GIL most of the time, so analyses in
threads of one process share about one core. :class:`Processes` keeps up to ``size``
worker processes, each started from multiprocessing's forkserver (a clean, single-threaded
process: a fork of the multithreaded server could inherit a held native lock), each
discovering its tools once, limited to one math thread (the workers share the cores:
:mod:`sleuth.tools.threads`), and then running one job at a time. A job is a module-level
function ``job(bench, progress, *args)``; its arguments and result cross a pipe, and so do
its progress steps, which the caller receives as they happen. :class:`InThreads` runs the
same jobs in the calling thread, for ``--workers threads`` and for servers made with a
registry of their own (tools defined in a test, say, which a worker could not import).

The caller bounds concurrency (the server's :class:`~sleuth.servers.mcp.gate.Gate`): a
call here blocks until a worker is free. A worker that dies (a plugin calling ``os._exit``,
a crash in native code, the system killing it for memory) fails only the job it was
running, with :class:`WorkerDied`; the next job starts a fresh worker. Workers are also
replaced after :data:`RECYCLE_AFTER` jobs, which bounds what leaks (a tool's thread left
running past its budget, fragmented memory), and stopped when the pool is collected or the
server exits.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing import forkserver
from multiprocessing.connection import Connection
from typing import Any, Protocol, TypeVar

from mcp.server.mcpserver.exceptions import ToolError

from sleuth.agent.cases import UnknownCaseError
from sleuth.agent.session import Session
from sleuth.agent.verdict import Step
from sleuth.settings import Settings
from sleuth.tools import SleuthError, ToolRegistry
from sleuth.tools.threads import one_math_thread
from sleuth.tools.worker import forkserver_context, without_main_module

T = TypeVar("T")

logger = logging.getLogger(__name__)

RECYCLE_AFTER = 200
"""Jobs a worker process runs before it is replaced by a fresh one."""
STOP_SECONDS = 5.0
"""How long a stopped worker may take to exit before it is killed."""

Progress = Callable[[Step], None]
"""Called with each step of a job as it completes (in the thread that called the runner)."""


@dataclass(frozen=True)
class Bench:
    """What a job works with: the settings and the forensic tools.

    Attributes
    ----------
    settings : Settings
        Case store, backend, limits.
    registry : ToolRegistry
        The forensic tools.
    """

    settings: Settings
    registry: ToolRegistry

    def session(self, overrides: dict[str, Any] | None = None) -> Session:
        """Return a session over the case store (``overrides``: settings by name)."""
        chosen = self.settings.model_copy(update=overrides) if overrides else self.settings
        return Session(chosen.session_config(), self.registry)


class Runner(Protocol):
    """Runs jobs: :class:`Processes` or :class:`InThreads`."""

    def call(self, job: Callable[..., T], args: tuple[Any, ...], progress: Progress) -> T:
        """Run ``job(bench, progress, *args)`` and return its result (blocks)."""
        ...


class WorkerDied(SleuthError, RuntimeError):
    """The worker process running a job exited before replying."""


def tool_error(err: SleuthError) -> ToolError:
    """Return the one-line tool error a client receives for a sleuth error."""
    if isinstance(err, UnknownCaseError):
        return ToolError(f"{err}; use a case_id that analyze_image returned")
    return ToolError(str(err))


class InThreads:
    """Run jobs in the calling thread (a worker thread of the server)."""

    def __init__(self, bench: Bench) -> None:
        self.bench = bench

    def call(self, job: Callable[..., T], args: tuple[Any, ...], progress: Progress) -> T:
        """Run ``job(bench, progress, *args)`` here."""
        return job(self.bench, progress, *args)


class Processes:
    """Run jobs in up to ``size`` worker processes.

    Parameters
    ----------
    settings : Settings
        Sent to each worker, which discovers its tools from them.
    size : int
        Workers at most; a call blocks while all are busy.
    log_level : int, optional
        Level of the workers' log lines (to standard error); the root logger's by default.
    warm : bool
        Start the workers now, in the background (each takes a few seconds to import and
        discover its tools), instead of when the first calls need them.
    """

    def __init__(
        self, settings: Settings, size: int, log_level: int | None = None, *, warm: bool = False
    ) -> None:
        if size < 1:
            raise ValueError("size must be >= 1")
        self.settings = settings
        self.size = size
        self.log_level = logging.getLogger().getEffectiveLevel() if log_level is None else log_level
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._idle: list[_Worker] = []
        self._starting = 0
        self._all: set[_Worker] = set()  # shared with the finalizer, which must not hold self
        self._finalizer = weakref.finalize(self, _stop_all, self._all, self._lock)
        if warm:
            threading.Thread(target=self._warm, name="sleuth-workers", daemon=True).start()

    def call(self, job: Callable[..., T], args: tuple[Any, ...], progress: Progress) -> T:
        """Run ``job(bench, progress, *args)`` in a worker process; return its result.

        Raises
        ------
        ToolError
            What the job raised as a sleuth error or a tool error, as one line.
        WorkerDied
            When the worker exited before replying (it is replaced for the next job).
        RuntimeError
            For any other exception in the job (a bug), with its type and message.
        """
        worker = self._take()
        keep = False
        try:
            result = worker.call(job, args, progress)
            keep = True
            return result
        except (ToolError, _JobFailed):
            keep = True
            raise
        finally:
            self._put_back(worker, keep)

    def close(self) -> None:
        """Stop every worker (a job still running fails with :class:`WorkerDied`)."""
        self._finalizer()

    @property
    def workers(self) -> int:
        """Worker processes alive now."""
        with self._lock:
            return sum(1 for w in self._all if w.process.is_alive())

    def _take(self) -> _Worker:
        """Return an idle worker, or start one while fewer than ``size`` exist, or wait."""
        with self._changed:
            while not self._idle and len(self._all) + self._starting >= self.size:
                self._changed.wait()
            if self._idle:
                return self._idle.pop()
            self._starting += 1
        return self._start()

    def _start(self) -> _Worker:
        """Start a worker, counted in ``_starting`` until now."""
        worker = None
        try:
            worker = _Worker.start(self.settings, self.log_level)
            return worker
        finally:
            with self._changed:
                self._starting -= 1
                if worker is not None:
                    self._all.add(worker)
                self._changed.notify()

    def _warm(self) -> None:
        with self._changed:
            wanted = self.size - len(self._all) - self._starting
            self._starting += max(0, wanted)
        for _ in range(wanted):
            try:
                self._put_back(self._start(), keep=True)
            except Exception:  # noqa: BLE001 -- a call will start one and report why
                logger.warning("could not start a worker process", exc_info=True)

    def _put_back(self, worker: _Worker, keep: bool) -> None:
        with self._changed:
            if keep and worker.jobs < RECYCLE_AFTER and worker in self._all:
                self._idle.append(worker)
                self._changed.notify()
                return
            self._all.discard(worker)
            self._changed.notify()
        worker.stop()


class _JobFailed(RuntimeError):
    """A job raised something other than a sleuth error (a bug); its worker is fine."""


class _Worker:
    """One worker process and the parent's end of its pipe."""

    def __init__(self, process: Any, connection: Connection) -> None:
        self.process = process
        self.connection = connection
        self.jobs = 0

    @classmethod
    def start(cls, settings: Settings, log_level: int) -> _Worker:
        context = forkserver_context()
        ours, theirs = context.Pipe(duplex=True)
        process = context.Process(
            target=_serve, args=(theirs, settings, log_level), name="sleuth-worker"
        )
        try:
            with without_main_module():
                process.start()
        finally:
            theirs.close()  # the worker's end: its exit must end our reads
        return cls(process, ours)

    def call(self, job: Callable[..., T], args: tuple[Any, ...], progress: Progress) -> T:
        self.jobs += 1
        try:
            self.connection.send((job, args))
            while True:
                kind, value = self.connection.recv()
                if kind == "step":
                    try:
                        progress(value)
                    except Exception:  # noqa: BLE001 -- a lost notification must not stop the job
                        logger.debug("a progress notification failed", exc_info=True)
                elif kind == "done":
                    return value  # type: ignore[no-any-return]
                elif kind == "error":
                    raise ToolError(value)
                else:
                    raise _JobFailed(value)
        except (EOFError, OSError):
            raise self._died() from None

    def _died(self) -> WorkerDied:
        self.process.join(STOP_SECONDS)
        code = self.process.exitcode
        if code is None:
            self.process.kill()
            self.process.join()
            how = "stopped answering"
        elif code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            how = f"was killed by {name}" + (" (out of memory?)" if -code == signal.SIGKILL else "")
        else:
            how = f"exited with code {code}"
        return WorkerDied(
            f"the worker process running this call {how} before it finished; an installed "
            "tool plugin may have crashed it. The case may be incomplete: try the call again "
            "(a fresh worker takes it)"
        )

    def stop(self) -> None:
        try:
            self.connection.send(None)
        except (OSError, ValueError):
            pass
        self.connection.close()
        self.process.join(STOP_SECONDS)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


def _stop_all(workers: set[_Worker], lock: threading.Lock) -> None:
    with lock:
        stopping = list(workers)
        workers.clear()
    for worker in stopping:
        worker.stop()


def _serve(connection: Connection, settings: Settings, log_level: int) -> None:
    """Run a worker process: discover the tools, then run jobs until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server decides when workers stop
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stdout may be the MCP stdio channel
    logging.basicConfig(
        stream=sys.stderr, level=log_level, format="%(asctime)s %(name)s %(message)s"
    )
    bench: Bench | None = None
    broken = ""
    try:
        bench = Bench(settings, settings.tool_registry())
    except Exception as err:  # noqa: BLE001 -- every job is told, the server goes on
        broken = f"the worker process could not load the tools: {type(err).__name__}: {err}"
    one_math_thread()  # the workers share the cores
    if settings.decode_seconds > 0:  # this worker's decodes fork from its own forkserver
        forkserver_context()
        forkserver.ensure_running()
    sending = threading.Lock()

    def send(message: tuple[str, Any]) -> None:
        with sending:
            connection.send(message)

    def progress(step: Step) -> None:
        send(("step", step))

    while True:
        try:
            message = connection.recv()
        except (EOFError, OSError):
            return  # the server is gone
        if message is None:
            return
        job, args = message
        try:
            if bench is None:
                raise RuntimeError(broken)
            reply: tuple[str, Any] = ("done", job(bench, progress, *args))
        except ToolError as err:
            reply = ("error", str(err))
        except SleuthError as err:
            reply = ("error", str(tool_error(err)))
        except Exception as err:  # noqa: BLE001 -- a bug: the caller gets it, the worker goes on
            logger.exception("a job failed in the worker process")
            reply = ("bug", f"{type(err).__name__}: {err}")
        try:
            send(reply)
        except (EOFError, OSError):
            return
        except Exception as err:  # noqa: BLE001 -- a result that cannot be pickled (a bug)
            send(("bug", f"the worker could not send its result: {type(err).__name__}: {err}"))
