"""A working session over the case store: analyse images, ask about cases, prune.

:class:`Session` is what every surface drives (the Python API, the CLI, the MCP server);
:class:`SessionConfig` is everything it needs, frozen, built by the front door's settings
(:meth:`sleuth.settings.Settings.session_config`), so nothing here reads the environment.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from langgraph.checkpoint.base import BaseCheckpointSaver

from sleuth.agent.backends import Backend, BackendOptions, make_backend
from sleuth.agent.backends.base import BackendError
from sleuth.agent.backends.offline import OfflineBackend
from sleuth.agent.cases import (
    CaseFiles,
    CaseStore,
    CaseSummary,
    new_case_id,
    open_checkpointer,
)
from sleuth.agent.context import AgentContext
from sleuth.agent.graph import build_graph
from sleuth.agent.retention import MB, PruneReport, make_room, prune
from sleuth.agent.state import CaseState
from sleuth.agent.verdict import Answer, Case, Step, Verdict
from sleuth.agent.view import CaseView
from sleuth.tools import ImageLimits, LoadedImage, SleuthError, ToolRegistry, load_image
from sleuth.tools.isolation import TOOL_SECONDS

DURABILITY = {"run": "exit", "step": "sync"}
"""LangGraph durability per :attr:`SessionConfig.checkpoints`: "exit" still writes when a
run fails."""

logger = logging.getLogger(__name__)

StepCallback = Callable[[Step], None]
"""Called with every step as it completes (survey tools, model turns, tool calls)."""


class AnalysisInterrupted(SleuthError, RuntimeError):
    """The run stopped before a verdict; the case is stored and can be resumed."""

    def __init__(self, message: str, *, case_id: str) -> None:
        super().__init__(message)
        self.case_id = case_id


@dataclass(frozen=True, kw_only=True)
class SessionConfig:
    """Everything a :class:`Session` needs, resolved.

    Attributes
    ----------
    data_dir : Path
        Case images and artifacts (and the SQLite store by default).
    case_store : str
        SQLite file or ``postgres://`` URL of the case state.
    backend : str
        ``provider:model`` of the reasoning backend.
    backend_options : BackendOptions
        Its options.
    backend_given : bool
        The backend was chosen explicitly: a stored case is then continued with it,
        otherwise with the backend that made its verdict.
    fallback : bool
        Answer with the offline analyst if the model fails.
    checkpoints : {'run', 'step'}
        Write case state once a run ends, or after every step as well.
    context : AgentContext
        Budgets and thresholds of each run.
    image_limits : ImageLimits
        Limits on the images read.
    max_store_mb, case_ttl_days : float
        Store quota and age limit (0: none).
    tools_enabled, tools_blocked
        Which installed tools load.
    tool_seconds : float
        Wall-clock budget of one tool call in the registry the session discovers (0: none).
    """

    data_dir: Path
    case_store: str
    backend: str = "offline"
    backend_options: BackendOptions = field(default_factory=BackendOptions)
    backend_given: bool = False
    fallback: bool = False
    checkpoints: Literal["run", "step"] = "run"
    context: AgentContext = field(default_factory=AgentContext)
    image_limits: ImageLimits = field(default_factory=ImageLimits)
    max_store_mb: float = 0.0
    case_ttl_days: float = 0.0
    tools_enabled: tuple[str, ...] | None = None
    tools_blocked: tuple[str, ...] = ()
    tool_seconds: float = TOOL_SECONDS


class Session:
    """A working session over the case store: use as a context manager.

    Parameters
    ----------
    config : SessionConfig
        Usually :meth:`sleuth.settings.Settings.session_config`.
    registry : ToolRegistry, optional
        Defaults to the installed tools the config allows.

    Examples
    --------
    >>> with Session(Settings.load().session_config()) as session:  # doctest: +SKIP
    ...     verdict = session.analyze("photo.jpg")
    ...     answer = session.ask(verdict.case_id, "what did ELA show in box 1?")
    """

    def __init__(self, config: SessionConfig, registry: ToolRegistry | None = None) -> None:
        self.config = config
        self.registry = registry
        self._stack: ExitStack | None = None
        self._store: CaseStore | None = None

    def __enter__(self) -> Session:
        c = self.config
        self.registry = self.registry or ToolRegistry.discover(
            enabled=None if c.tools_enabled is None else list(c.tools_enabled),
            blocked=list(c.tools_blocked),
            tool_seconds=c.tool_seconds,
        )
        self.files = CaseFiles(c.data_dir)
        self.files.tighten()
        self._stack = ExitStack()
        self.checkpointer: BaseCheckpointSaver = self._stack.enter_context(
            open_checkpointer(c.case_store)
        )
        self._store = CaseStore(self.files, self.checkpointer)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stack is not None:
            self._stack.close()

    # -- analysis ------------------------------------------------------------------

    def analyze(
        self,
        image: str | Path | bytes | LoadedImage,
        question: str | None = None,
        *,
        progress: StepCallback | None = None,
        name: str | None = None,
    ) -> Verdict:
        """Investigate an image and return the verdict; the case is stored.

        ``name`` is shown with the case (``cases list``, the report); by default the file
        name of a path.

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
        c = self._config
        loaded = (
            image if isinstance(image, LoadedImage) else load_image(image, limits=c.image_limits)
        )
        make_room(
            self.files,
            self.checkpointer,
            incoming=0 if self.files.has_image(loaded.sha256) else len(loaded.raw),
            max_mb=c.max_store_mb,
            ttl_days=c.case_ttl_days,
        )
        self.files.save_image(loaded)
        case_id = new_case_id(loaded.sha256)
        if name is None and isinstance(image, str | Path):
            name = Path(image).name
        graph_input = {"image_id": loaded.sha256, "question": question, "name": name}
        self._run(case_id, graph_input, self._backend(), progress)
        return self._verdict(case_id)

    def resume(self, case_id: str, *, progress: StepCallback | None = None) -> Verdict:
        """Continue an interrupted analysis from its last stored step."""
        state = self.store.state(case_id)
        if state.get("verdict"):
            return self._verdict(case_id)
        self._run(case_id, None, self._backend(state), progress)
        return self._verdict(case_id)

    def ask(self, case_id: str, question: str, *, progress: StepCallback | None = None) -> Answer:
        """Ask a follow-up question about a stored case (resuming it first if needed).

        The case's own backend answers unless the config names one explicitly.
        """
        if not isinstance(question, str) or not question.strip():
            raise SleuthError("the question is empty; ask something about the case")
        state = self.store.state(case_id)
        backend = self._backend(state)
        if not state.get("verdict"):
            self._run(case_id, None, backend, progress)
            state = self.store.state(case_id)
        graph_input = {"image_id": state["image_id"], "question": question.strip()}
        self._run(case_id, graph_input, backend, progress)
        return self.case(case_id).answers[-1]

    # -- reading cases -------------------------------------------------------------

    def case(self, case_id: str) -> Case:
        """Return a stored case: its verdict and follow-up answers."""
        return self.store.case(case_id)

    def cases(self) -> list[CaseSummary]:
        """Return every stored case, most recently updated first."""
        return self.store.summaries()

    def earlier_cases(self, case_id: str) -> list[CaseSummary]:
        """Return the other cases of the same image (same sha256), most recent first."""
        image_id = self.store.state(case_id)["image_id"]
        return [c for c in self.cases() if c.image_id == image_id and c.case_id != case_id]

    def image(self, case_id: str) -> LoadedImage:
        """Return a stored case's image."""
        image_id = self.store.state(case_id)["image_id"]
        return self.files.load_image(image_id, self._config.image_limits)

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
            When no limit is given here and none is configured.
        """
        c = self._config
        if older_than_days is None and max_mb is None:
            older_than_days, max_mb = c.case_ttl_days or None, c.max_store_mb or None
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
    def store(self) -> CaseStore:
        """The case store (open while the session is)."""
        if self._store is None:
            raise RuntimeError("use the session as a context manager: with Session(config) as s")
        return self._store

    @property
    def _config(self) -> SessionConfig:
        self.store  # noqa: B018 - raises outside a with block
        return self.config

    def _backend(self, state: dict[str, Any] | None = None) -> Backend:
        """Make the configured backend; a stored case keeps its own unless one is given."""
        c = self._config
        spec, options = c.backend, c.backend_options
        verdict = (state or {}).get("verdict")
        if verdict and not c.backend_given:
            recorded = verdict["backend"]
            spec = f"{recorded['provider']}:{recorded['model']}"
            base_url = options.base_url or recorded.get("base_url")
            options = dataclasses.replace(options, base_url=base_url)
        backend = make_backend(spec, options)
        close = getattr(backend, "close", None)
        if close is not None and self._stack is not None:  # closed with the session, not at GC
            self._stack.callback(close)
        return backend

    def _graph(self, backend: Backend) -> Any:
        c = self._config
        return build_graph(
            self.registry or ToolRegistry(),
            backend,
            self.files,
            checkpointer=self.checkpointer,
            fallback=OfflineBackend() if c.fallback else None,
            limits=c.image_limits,
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
                    context=self._config.context,
                    stream_mode="updates",
                    durability=DURABILITY[self._config.checkpoints],
                )
            ):
                if progress is not None:
                    for step in update.get("steps", []):
                        progress(Step.model_validate(step))
        except BackendError as err:
            raise AnalysisInterrupted(
                f"{err}. The case {case_id} is stored and can be resumed once the model "
                "server is back, or answered by the offline analyst with fallback set.",
                case_id=case_id,
            ) from err
        finally:
            self.store.record(case_id)
            self.files.seal_case(case_id)

    def _verdict(self, case_id: str) -> Verdict:
        verdict = CaseView(cast(CaseState, self.store.state(case_id))).verdict
        if verdict is None:
            raise AnalysisInterrupted(
                f"case {case_id} has no verdict yet; resume it first", case_id=case_id
            )
        return verdict


def _updates(stream: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Flatten LangGraph's ``updates`` stream to the state updates of each node."""
    for chunk in stream:
        for update in chunk.values():
            if isinstance(update, dict):
                yield update
