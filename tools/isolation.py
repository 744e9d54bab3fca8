"""Failure isolation: a tool that breaks becomes an error finding, and the analysis goes on.

:meth:`ToolRegistry.run <sleuth.tools.registry.ToolRegistry.run>` raises whatever a tool
raises, as a library call should. The survey, the agent's tool calls, the stability check
and the CLI call :func:`run_isolated` instead: a tool that raises (anything but
:class:`~sleuth.tools.errors.ToolInputError`, which still goes back to the caller), returns
something other than a :class:`~sleuth.tools.base.ToolResult` or runs past its time budget
gives one finding of kind ``error`` that names the cause in one line. The traceback goes to
the log (DEBUG), the cause to a WARNING line.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from sleuth.tools.base import Finding, ToolResult
from sleuth.tools.box import Box
from sleuth.tools.errors import ToolInputError, ToolTimeoutError, UnknownToolError
from sleuth.tools.image import LoadedImage

if TYPE_CHECKING:
    from sleuth.tools.registry import ToolRegistry

logger = logging.getLogger(__name__)

T = TypeVar("T")

TOOL_SECONDS = 120.0
"""Default wall-clock budget of one tool call, in seconds (setting ``tool_seconds``)."""
MAX_CAUSE = 200
"""Longest cause an error finding carries, in characters."""
ERROR_METRIC = "error"
"""Metric of an error finding holding its cause (no fusion feature reads it)."""


def call_with_budget(fn: Callable[[], T], seconds: float, *, name: str) -> T:
    """Return ``fn()``, or raise :class:`ToolTimeoutError` once ``seconds`` have passed.

    ``fn`` runs in a daemon worker thread and the caller stops waiting at the deadline. A
    Python thread cannot be stopped from outside, so a tool past its budget **keeps running
    in the background until it returns**; its result is then discarded (and any artifact
    file it writes late stays on disk). The process does not wait for it to exit.

    Parameters
    ----------
    fn : callable
        The work, without arguments.
    seconds : float
        The budget; 0 runs ``fn`` in the calling thread without one.
    name : str
        The tool's name, for the thread and the error.

    Raises
    ------
    ToolTimeoutError
        When ``fn`` has not returned within ``seconds``.
    """
    if seconds <= 0:
        return fn()
    outcome: list[tuple[bool, Any]] = []

    def work() -> None:
        try:
            outcome.append((True, fn()))
        except BaseException as err:  # handed to the caller, which raises it
            outcome.append((False, err))

    context = contextvars.copy_context()
    worker = threading.Thread(target=context.run, args=(work,), name=f"tool-{name}", daemon=True)
    worker.start()
    worker.join(seconds)
    if not outcome:
        raise ToolTimeoutError(
            f"timed out after {seconds:g} s (setting tool_seconds); the result is discarded"
        )
    done, value = outcome[0]
    if not done:
        raise value
    return value


def run_isolated(
    registry: ToolRegistry,
    name: str,
    image: LoadedImage,
    params: Mapping[str, Any] | BaseModel | None = None,
    *,
    region: Box | None = None,
    artifact_dir: Path | None = None,
    label: str = "",
) -> ToolResult:
    """Run a tool like :meth:`ToolRegistry.run`, turning its failure into an error finding.

    Parameters are those of :meth:`ToolRegistry.run`.

    Returns
    -------
    ToolResult
        The tool's result, or :func:`error_result` when the tool raised, returned the wrong
        type or ran past the registry's ``tool_seconds``.

    Raises
    ------
    ToolInputError
        For parameters or a region the caller can fix (not a failure of the tool).
    UnknownToolError
        When no tool of that name is registered.
    """
    try:
        return registry.run(
            name, image, params, region=region, artifact_dir=artifact_dir, label=label
        )
    except (ToolInputError, UnknownToolError):
        raise
    except Exception as err:
        return failed(name, err)


def failed(name: str, err: Exception) -> ToolResult:
    """Log a tool's failure (one WARNING line, the traceback at DEBUG); return its error result.

    Parameters
    ----------
    name : str
        The tool that failed.
    err : Exception
        What it raised.
    """
    cause = describe(err)
    logger.warning(
        "tool %r failed: %s; the analysis goes on without it "
        "(set tools_blocked=['%s'] to stop running it)",
        name,
        cause,
        name,
    )
    if not isinstance(err, ToolTimeoutError):
        logger.debug("traceback of the failure of tool %r", name, exc_info=err)
    return error_result(name, cause)


def describe(err: BaseException) -> str:
    """Return an exception as one bounded line: ``Type: message``."""
    message = " ".join(str(err).split())
    text = f"{type(err).__name__}: {message}" if message else type(err).__name__
    return text if len(text) <= MAX_CAUSE else text[: MAX_CAUSE - 3] + "..."


def error_result(name: str, cause: str) -> ToolResult:
    """Return the result standing in for a failed call: one neutral, unscored error finding.

    Parameters
    ----------
    name : str
        The tool that failed.
    cause : str
        One line, e.g. from :func:`describe`.
    """
    finding = Finding(
        tool=name,
        summary=f"The tool failed and gave no evidence: {cause}",
        kind="error",
        direction="neutral",
        score=None,
        metrics={ERROR_METRIC: cause},
    )
    return ToolResult(findings=[finding])


def failure(result: ToolResult) -> str | None:
    """Return the cause when ``result`` stands for a failed call (see :func:`error_result`)."""
    for finding in result.findings:
        if finding.kind == "error":
            return str(finding.metrics.get(ERROR_METRIC, finding.summary))
    return None
