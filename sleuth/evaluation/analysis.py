"""Analyse one labelled image on one track with a backend, as a JSON-ready result row."""

from __future__ import annotations

import atexit
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from sleuth.agent.features import extract_features
from sleuth.agent.verdict import Evidence
from sleuth.evaluation.features import track_image
from sleuth.evaluation.sources import Sample
from sleuth.tools import SleuthError, load_image

_SESSION: dict[str, Any] = {}


def open_session(backend: str, base_url: str | None = None) -> None:
    """Open this process's session: a throw-away case store, the given backend.

    Parameters
    ----------
    backend : str
        The reasoning backend (``provider:model``); every row names it.
    base_url : str, optional
        The OpenAI-compatible server (else the settings' ``base_url``).
    """
    from sleuth.api import open_session as session_for
    from sleuth.settings import Settings

    close_session()  # one session per process: a later backend replaces the earlier one
    folder = Path(tempfile.mkdtemp(prefix="sleuth-eval-"))
    update: dict[str, Any] = {"data_dir": folder, "backend": backend, "case_store": None}
    if base_url:
        update["base_url"] = base_url
    settings = Settings.load().model_copy(update=update)
    session = session_for(settings).__enter__()
    _SESSION.update(session=session, folder=folder, backend=backend)
    atexit.unregister(close_session)
    atexit.register(close_session)


def close_session() -> None:
    """Close the session and delete its case store."""
    if (session := _SESSION.pop("session", None)) is not None:
        session.__exit__(None, None, None)
    if (folder := _SESSION.pop("folder", None)) is not None:
        shutil.rmtree(folder, ignore_errors=True)
    _SESSION.pop("backend", None)


class Analyst:
    """One worker of ``sleuth eval --engine ray``: a session once, then one row per item.

    Parameters
    ----------
    backend : str
        The reasoning backend (``provider:model``).
    base_url : str, optional
        The OpenAI-compatible server (else the settings' ``base_url``).
    """

    def __init__(self, backend: str, base_url: str | None = None) -> None:
        open_session(backend, base_url)

    def __call__(self, item: tuple[Sample, str]) -> dict[str, Any]:
        """Return the result row of ``(sample, track)``."""
        sample, track = item
        return analyse(sample, track)


def metadata_rule(evidence: list[Evidence]) -> float:
    """Baseline: a declared AI origin's score, else a capture origin's, else 0.5."""
    whole = [e for e in evidence if e.tool == "provenance" and e.region is None]
    ai = [e.score for e in whole if e.direction == "ai" and e.score is not None]
    real = [e.score for e in whole if e.direction == "real" and e.score is not None]
    if ai:
        return max(ai)
    return min(real) if real else 0.5


def spectral_detector(evidence: list[Evidence]) -> float:
    """Baseline: the spectrum tool's whole-image score on its own (0.5 when absent)."""
    scores = [e.score for e in evidence if e.tool == "spectrum" and e.region is None]
    return next((s for s in scores if s is not None), 0.5)


def analyse(sample: Sample, track: str) -> dict[str, Any]:
    """Return the result row of ``sample`` on ``track`` (an error row when it fails)."""
    row: dict[str, Any] = {
        "file": sample.key,
        "track": track,
        "backend": _SESSION["backend"],
        "label": sample.label,
        "y": sample.y,
        **sample.meta,
    }
    start = time.perf_counter()
    try:
        image = track_image(load_image(sample.path), track)
        verdict = _SESSION["session"].analyze(image)
    except (SleuthError, OSError) as err:
        row["error"] = f"{type(err).__name__}: {err}"
        return row
    evidence = verdict.evidence
    features = extract_features(evidence).values
    row.update(
        p_ai=verdict.p_ai,
        verdict=verdict.label,
        stopped=verdict.stopped,
        p_signals=verdict.p_signals,
        metadata_rule=metadata_rule(evidence),
        spectral=spectral_detector(evidence),
        fusion=verdict.versions.get("fusion"),
        features={k: (None if v != v else round(v, 6)) for k, v in features.items()},
        seconds=round(time.perf_counter() - start, 3),
    )
    return row
