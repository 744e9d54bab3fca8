"""The public API: analyse an image, ask about a stored case, list and read cases."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from pydantic import BaseModel, ConfigDict

from sleuth.agent.backends import Backend, make_backend
from sleuth.agent.backends.base import BackendError
from sleuth.agent.backends.offline import OfflineBackend
from sleuth.agent.context import AgentContext
from sleuth.agent.graph import build_graph
from sleuth.agent.retention import MB, PruneReport, make_room, prune
from sleuth.agent.state import CaseView
from sleuth.agent.store import (
    CaseFiles,
    UnknownCaseError,
    check_case_id,
    latest_checkpoints,
    new_case_id,
    open_checkpointer,
)
from sleuth.agent.verdict import Answer, Case, Step, Verdict
from sleuth.settings import Settings
from sleuth.tools import LoadedImage, SleuthError, ToolRegistry, load_image

# LangGraph durability per ``Settings.checkpoints``: "exit" still writes when a run fails.
DURABILITY = {"run": "exit", "step": "sync"}

logger = logging.getLogger(__name__)

StepCallback = Callable[[Step], None]
"""Called with every step as it completes (survey tools, model turns, tool calls)."""


class AnalysisInterrupted(SleuthError, RuntimeError):
    """The run stopped before a verdict; the case is stored and can be resumed."""

    def __init__(self, message: str, *, case_id: str) -> None:
        super().__init__(message)
        self.case_id = case_id


class CaseSummary(BaseModel):
    """One row of the case list."""

    model_config = ConfigDict(extra="forbid")

    case_id: str
    image_id: str
    label: str | None
    p_ai: float | None
    backend: str | None
    questions: int
    updated: str


@dataclass
class Investigator:
    """A working session over the case store: use as a context manager.

    Parameters
    ----------
    settings : Settings, optional
        Defaults to :meth:`Settings.load`.
    registry : ToolRegistry, optional
        Defaults to the installed tools allowed by ``settings``.

    Examples
    --------
    >>> with Investigator() as sleuth:  # doctest: +SKIP
    ...     verdict = sleuth.analyze("photo.jpg")
    ...     answer = sleuth.ask(verdict.case_id, "what did ELA show in box 1?")
    """

    settings: Settings | None = None
    registry: ToolRegistry | None = None

    def __enter__(self) -> Investigator:
        self.settings = self.settings or Settings.load()
        self.registry = self.registry or ToolRegistry.discover(
            enabled=self.settings.tools_enabled, blocked=self.settings.tools_blocked
        )
        self.files = CaseFiles(self.settings.data_dir)
        self.files.tighten()
        self._stack = ExitStack()
        self.checkpointer: BaseCheckpointSaver = self._stack.enter_context(
            open_checkpointer(self.settings.case_store_target)
        )
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    # -- analysis ------------------------------------------------------------------

    def analyze(
        self,
        image: str | Path | bytes | LoadedImage,
        question: str | None = None,
        *,
        progress: StepCallback | None = None,
    ) -> Verdict:
        """Investigate an image and return the verdict; the case is stored.

        Raises
        ------
        ImageLoadError
            For an unreadable, truncated, oversized or unsupported image.
        CaseStoreError
            When the case store is unreadable, or full (``max_store_mb``) with cases in use.
        AnalysisInterrupted
            When the model backend fails and no fallback is configured; the case is
            stored and :meth:`resume` continues it.
        """
        settings = self._settings
        loaded = (
            image
            if isinstance(image, LoadedImage)
            else load_image(image, limits=settings.image_limits)
        )
        make_room(
            self.files,
            self.checkpointer,
            incoming=0 if self.files.has_image(loaded.sha256) else len(loaded.raw),
            max_mb=settings.max_store_mb,
            ttl_days=settings.case_ttl_days,
        )
        self.files.save_image(loaded)
        case_id = new_case_id(loaded.sha256)
        graph_input = {"image_id": loaded.sha256, "question": question}
        self._run(case_id, graph_input, self._backend(), progress)
        return self._verdict(case_id)

    def resume(self, case_id: str, *, progress: StepCallback | None = None) -> Verdict:
        """Continue an interrupted analysis from its last stored step."""
        state = self._state(case_id)
        if state.get("verdict"):
            return self._verdict(case_id)
        self._run(case_id, None, self._backend(state), progress)
        return self._verdict(case_id)

    def ask(self, case_id: str, question: str, *, progress: StepCallback | None = None) -> Answer:
        """Ask a follow-up question about a stored case (resuming it first if needed).

        The case's own backend answers unless the settings name one explicitly.
        """
        if not isinstance(question, str) or not question.strip():
            raise SleuthError("the question is empty; ask something about the case")
        state = self._state(case_id)
        backend = self._backend(state)
        if not state.get("verdict"):
            self._run(case_id, None, backend, progress)
            state = self._state(case_id)
        graph_input = {"image_id": state["image_id"], "question": question.strip()}
        self._run(case_id, graph_input, backend, progress)
        return self.case(case_id).answers[-1]

    # -- reading cases -------------------------------------------------------------

    def case(self, case_id: str) -> Case:
        """Return a stored case: its verdict and follow-up answers."""
        state = self._state(case_id)
        view = CaseView(state)
        by_id = {e.id: e for e in view.evidence}
        answers = [
            Answer(
                question=a["question"],
                answer=a["answer"],
                evidence=[by_id[i] for i in a["evidence"] if i in by_id],
                backend=a["backend"],
            )
            for a in state.get("answers", [])
        ]
        return Case(
            case_id=case_id,
            image_id=state["image_id"],
            status="concluded" if view.verdict else "interrupted",
            verdict=view.verdict,
            answers=answers,
        )

    def cases(self) -> list[CaseSummary]:
        """Return every stored case, most recently updated first."""
        rows = []
        for thread, item in latest_checkpoints(self.checkpointer).items():
            values = item.checkpoint["channel_values"]
            if "image_id" not in values:
                continue
            verdict = values.get("verdict") or {}
            backend = verdict.get("backend") or {}
            rows.append(
                CaseSummary(
                    case_id=thread,
                    image_id=values["image_id"],
                    label=verdict.get("label"),
                    p_ai=verdict.get("p_ai"),
                    backend=f"{backend['provider']}:{backend['model']}" if backend else None,
                    questions=len(values.get("answers", [])),
                    updated=item.checkpoint["ts"],
                )
            )
        return sorted(rows, key=lambda r: r.updated, reverse=True)

    def image(self, case_id: str) -> LoadedImage:
        """Return a stored case's image."""
        return self.files.load_image(self._state(case_id)["image_id"], self._settings.image_limits)

    # -- retention -----------------------------------------------------------------

    def prune(
        self,
        older_than_days: float | None = None,
        max_mb: float | None = None,
        *,
        dry_run: bool = False,
        now: float | None = None,
    ) -> PruneReport:
        """Remove old cases, then the least recently used ones to fit a size.

        Parameters
        ----------
        older_than_days : float, optional
            Remove cases not used for this many days.
        max_mb : float, optional
            Then remove the least recently used cases until the store holds at most this
            many megabytes (cases used in the last hour are kept).
        dry_run : bool
            Report what would be removed; remove nothing.
        now : float, optional
            The present in seconds since the epoch (default: the clock).

        Returns
        -------
        PruneReport
            The removed cases, images (those no remaining case refers to), leftover files,
            and the store's size before and after.

        Raises
        ------
        SleuthError
            When no limit is given here and none is set (``case_ttl_days``, ``max_store_mb``).
        """
        s = self._settings
        if older_than_days is None and max_mb is None:
            older_than_days, max_mb = s.case_ttl_days or None, s.max_store_mb or None
        if older_than_days is None and max_mb is None:
            raise SleuthError(
                "nothing to prune by: give an age or a size (--older-than DAYS, --max-mb MB), "
                "or set case_ttl_days or max_store_mb"
            )
        return prune(
            self.files,
            self.checkpointer,
            older_than_days=older_than_days,
            max_bytes=None if max_mb is None else int(max_mb * MB),
            dry_run=dry_run,
            now=now,
        )

    # -- internals -----------------------------------------------------------------

    @property
    def _settings(self) -> Settings:
        if self.settings is None:
            raise RuntimeError("use Investigator as a context manager: with Investigator() as s")
        return self.settings

    def _context(self) -> AgentContext:
        s = self._settings
        return AgentContext(
            max_steps=s.max_steps,
            threshold=s.threshold,
            abstain_low=s.abstain_low,
            abstain_high=s.abstain_high,
            stability_variants=s.stability_variants,
        )

    def _backend(self, state: dict[str, Any] | None = None) -> Backend:
        """Make the configured backend; a stored case keeps its own unless one is set."""
        s = self._settings
        spec, base_url = s.backend, s.base_url
        verdict = (state or {}).get("verdict")
        if verdict and "backend" not in s.model_fields_set:
            recorded = verdict["backend"]
            spec = f"{recorded['provider']}:{recorded['model']}"
            base_url = base_url or recorded.get("base_url")
        backend = make_backend(spec, s.backend_options(base_url))
        close = getattr(backend, "close", None)
        if close is not None:  # its HTTP connections end with this session, not at some GC
            self._stack.callback(close)
        return backend

    def _graph(self, backend: Backend) -> Any:
        s = self._settings
        return build_graph(
            self.registry or ToolRegistry(),
            backend,
            self.files,
            checkpointer=self.checkpointer,
            fallback=OfflineBackend() if s.fallback else None,
            limits=s.image_limits,
        )

    def _run(
        self,
        case_id: str,
        graph_input: dict[str, Any] | None,
        backend: Backend,
        progress: StepCallback | None,
    ) -> None:
        config = {"configurable": {"thread_id": case_id}}
        graph = self._graph(backend)
        self.files.open_case(case_id)
        try:
            for update in _updates(
                graph.stream(
                    graph_input,
                    config,
                    context=self._context(),
                    stream_mode="updates",
                    durability=DURABILITY[self._settings.checkpoints],
                )
            ):
                if progress is not None:
                    for step in update.get("steps", []):
                        progress(Step.model_validate(step))
        except BackendError as err:
            raise AnalysisInterrupted(
                f"{err}. The case {case_id} is stored: run `sleuth cases resume {case_id}` "
                "once the model server is back, or set fallback to let the offline analyst "
                "answer.",
                case_id=case_id,
            ) from err
        finally:
            self.files.seal_case(case_id)

    def _state(self, case_id: str) -> dict[str, Any]:
        check_case_id(case_id)
        snapshot = self._graph(OfflineBackend()).get_state({"configurable": {"thread_id": case_id}})
        if not snapshot.values or "image_id" not in snapshot.values:
            raise UnknownCaseError(f"no case {case_id} in the case store (see `sleuth cases list`)")
        return dict(snapshot.values)

    def _verdict(self, case_id: str) -> Verdict:
        verdict = CaseView(self._state(case_id)).verdict
        if verdict is None:
            raise AnalysisInterrupted(
                f"case {case_id} has no verdict yet; resume it with `sleuth cases resume "
                f"{case_id}`",
                case_id=case_id,
            )
        return verdict


def _updates(stream: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Flatten LangGraph's ``updates`` stream to the state updates of each node."""
    for chunk in stream:
        for update in chunk.values():
            if isinstance(update, dict):
                yield update


def analyze(
    image: str | Path | bytes | LoadedImage,
    question: str | None = None,
    *,
    settings: Settings | None = None,
    progress: StepCallback | None = None,
    **overrides: Any,
) -> Verdict:
    """Investigate an image: survey, look closer, conclude. The case is stored.

    Parameters
    ----------
    image : path, bytes or LoadedImage
        The image.
    question : str, optional
        What the investigator wants to know, passed to the model.
    settings : Settings, optional
        Defaults to :meth:`Settings.load` with ``overrides``.
    progress : callable, optional
        Called with every step as it completes.
    **overrides
        Settings by name, e.g. ``backend="openai:Qwen/Qwen2.5-VL-7B-Instruct"``,
        ``base_url=...``, ``max_steps=4``, ``threshold=0.9``.

    Returns
    -------
    Verdict
        With ``case_id`` for follow-up questions (:func:`ask`).
    """
    with Investigator(settings or Settings.load(**overrides)) as session:
        return session.analyze(image, question, progress=progress)


def ask(
    case_id: str,
    question: str,
    *,
    settings: Settings | None = None,
    progress: StepCallback | None = None,
    **overrides: Any,
) -> Answer:
    """Ask a follow-up question about a stored case, in this process or any later one.

    Parameters
    ----------
    case_id : str
        From a verdict (``verdict.case_id``) or ``sleuth cases list``.
    question : str
        E.g. "what did ELA show in box 2?", "zoom on the left half".
    settings, progress, **overrides
        As for :func:`analyze`.

    Returns
    -------
    Answer
        The answer and the evidence gathered for it.
    """
    with Investigator(settings or Settings.load(**overrides)) as session:
        return session.ask(case_id, question, progress=progress)
