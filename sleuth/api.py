"""The public API: analyse an image, ask about a stored case, open a session.

A thin facade over :mod:`sleuth.agent.session`: it resolves :class:`Settings` (arguments,
``SLEUTH_*`` variables, the config file) into the session's frozen config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sleuth.agent.session import AnalysisInterrupted, Session, StepCallback
from sleuth.agent.verdict import Answer, Verdict
from sleuth.settings import Settings
from sleuth.tools import LoadedImage, ToolRegistry

__all__ = ["AnalysisInterrupted", "Session", "analyze", "ask", "open_session"]


def open_session(settings: Settings | None = None, registry: ToolRegistry | None = None) -> Session:
    """Return a session over the case store; use it as a context manager.

    Parameters
    ----------
    settings : Settings, optional
        Defaults to :meth:`Settings.load`.
    registry : ToolRegistry, optional
        Defaults to the installed tools the settings allow.

    Examples
    --------
    >>> with open_session() as session:  # doctest: +SKIP
    ...     verdict = session.analyze("photo.jpg")
    ...     answer = session.ask(verdict.case_id, "what did ELA show in box 1?")
    """
    return Session((settings or Settings.load()).session_config(), registry)


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
    with open_session(settings or Settings.load(**overrides)) as session:
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
    with open_session(settings or Settings.load(**overrides)) as session:
        return session.ask(case_id, question, progress=progress)
