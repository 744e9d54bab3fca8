"""Analyses and follow-up questions run in the background; the page polls their progress.

A job runs in a worker thread with its own :class:`~sleuth.agent.session.Session`. At most
``running`` jobs run and ``waiting`` more queue; beyond that :class:`Busy` is raised at once
(the page says so) instead of an ever-growing queue. The last :data:`KEPT` jobs are
remembered, so a page that polls late still finds its result.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from sleuth.agent.session import AnalysisInterrupted, Session
from sleuth.agent.verdict import Step
from sleuth.servers.mcp.gate import Busy
from sleuth.settings import Settings
from sleuth.tools import SleuthError, ToolRegistry

logger = logging.getLogger(__name__)

KEPT = 200
Status = Literal["queued", "running", "done", "failed"]


@dataclass
class Job:
    """One analysis or question, as the page sees it.

    Attributes
    ----------
    id : str
        Random, unguessable.
    kind : {"analysis", "question"}
    status : {"queued", "running", "done", "failed"}
    steps : list of str
        One line per completed step.
    case_id : str or None
        The case, once known (an analysis knows it when it is done).
    error : str or None
        One sentence, for the reader.
    """

    id: str
    kind: Literal["analysis", "question"]
    status: Status = "queued"
    steps: list[str] = field(default_factory=list)
    case_id: str | None = None
    error: str | None = None
    started: float = field(default_factory=time.monotonic)

    def public(self) -> dict[str, Any]:
        """Return what the page may read."""
        return {
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "steps": list(self.steps),
            "case_id": self.case_id,
            "error": self.error,
            "seconds": round(time.monotonic() - self.started, 1),
        }


class Jobs:
    """The workbench's background work.

    Parameters
    ----------
    settings : Settings
        Case store, backend, limits.
    registry : ToolRegistry
        The forensic tools.
    running, waiting : int
        Jobs at once, and jobs that may queue before :class:`Busy`.
    """

    def __init__(
        self, settings: Settings, registry: ToolRegistry, *, running: int, waiting: int
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.limit = running + waiting
        self._pool = ThreadPoolExecutor(max_workers=running, thread_name_prefix="sleuth-ui")
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()

    def session(self) -> Session:
        """Return a session over the case store."""
        return Session(self.settings.session_config(), self.registry)

    def analyse(self, data: bytes, name: str | None) -> Job:
        """Start analysing an image (its bytes); the case is stored under ``name``."""

        def work(session: Session, job: Job) -> None:
            verdict = session.analyze(data, progress=self._progress(job), name=name)
            job.case_id = verdict.case_id

        return self._submit("analysis", work)

    def ask(self, case_id: str, question: str) -> Job:
        """Start answering a follow-up question about a stored case."""

        def work(session: Session, job: Job) -> None:
            session.ask(case_id, question, progress=self._progress(job))

        job = self._submit("question", work)
        job.case_id = case_id
        return job

    def get(self, job_id: str) -> Job | None:
        """Return a job by id, or None when unknown (or long gone)."""
        with self._lock:
            return self._jobs.get(job_id)

    def close(self) -> None:
        """Stop taking work; running jobs finish."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _submit(self, kind: Literal["analysis", "question"], work: Callable[..., None]) -> Job:
        job = Job(id=secrets.token_urlsafe(12), kind=kind)
        with self._lock:
            active = sum(j.status in ("queued", "running") for j in self._jobs.values())
            if active >= self.limit:
                raise Busy(f"{active} analyses are running or waiting; try again in a moment")
            self._jobs[job.id] = job
            while len(self._jobs) > KEPT:
                self._jobs.popitem(last=False)
        self._pool.submit(self._run, job, work)
        return job

    def _run(self, job: Job, work: Callable[[Session, Job], None]) -> None:
        job.status = "running"
        try:
            with self.session() as session:
                work(session, job)
            job.status = "done"
        except AnalysisInterrupted as err:
            job.case_id, job.error, job.status = err.case_id, str(err), "failed"
        except SleuthError as err:
            job.error, job.status = str(err), "failed"
        except Exception as err:  # noqa: BLE001 - the page must learn the job ended
            job.error = f"the analysis failed unexpectedly ({type(err).__name__}); see the log"
            job.status = "failed"
            logger.exception("job %s failed", job.id)

    @staticmethod
    def _progress(job: Job) -> Callable[[Step], None]:
        def record(step: Step) -> None:
            what = f" {step.tool}" if step.tool else ""
            job.steps.append(f"{step.index} {step.kind}{what}: {step.result[:160]}")

        return record
