"""A stored case as the workbench shows it: plain data for the template and the page's script.

Nothing here is markup. Text read from the image or written by a model stays text: the
template escapes it (Jinja2 autoescape) and the script sets it with ``textContent``.
Citations are split out of explanations and answers (:func:`cited`), so the page links
``[E3]`` to its card without ever trusting the text as HTML.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from sleuth.agent.verdict import Answer, Case, Evidence
from sleuth.agent.weighing import UNRECORDED, effect, effects, ranked, recorded
from sleuth.present.overlay import overlay_placement
from sleuth.tools import Box
from sleuth.tools.base import read_artifact

CITATION = re.compile(r"\[(E\d+)\]")
MAX_METRICS = 40


def cited(text: str, known: set[str]) -> list[dict[str, str]]:
    """Split text into plain parts and citations of known evidence ids.

    Examples
    --------
    >>> cited("noise [E2] and [E9]", {"E2"})
    [{'text': 'noise '}, {'cite': 'E2'}, {'text': ' and [E9]'}]
    """
    parts: list[dict[str, str]] = []
    last = 0
    for match in CITATION.finditer(text):
        if match.group(1) not in known:
            continue
        if match.start() > last:
            parts.append({"text": text[last : match.start()]})
        parts.append({"cite": match.group(1)})
        last = match.end()
    if last < len(text):
        parts.append({"text": text[last:]})
    merged: list[dict[str, str]] = []
    for part in parts:  # keep text runs whole
        if merged and "text" in part and "text" in merged[-1]:
            merged[-1] = {"text": merged[-1]["text"] + part["text"]}
        else:
            merged.append(part)
    return merged


def box_list(box: Box | None) -> list[int] | None:
    """Return a box as ``[x0, y0, x1, y1]`` (None stays None)."""
    return None if box is None else [box.x0, box.y0, box.x1, box.y1]


def layers(
    evidence: Evidence, artifact: Callable[[str], Path], size: tuple[int, int]
) -> list[dict[str, Any]]:
    """Return an evidence item's artifacts: maps with their place on the image, crops, others."""
    out = []
    for name in evidence.artifacts:
        path = artifact(name)
        described = read_artifact(path) if path.is_file() else None
        kind = described.kind if described else "unknown"
        placement = overlay_placement(described, size) if described else None
        out.append(
            {
                "name": name,
                "kind": kind,
                "description": described.description if described else "",
                "placement": list(placement) if placement else None,
                "missing": not path.is_file(),
            }
        )
    return out


def evidence_view(
    item: Evidence,
    contribution: float | None,
    recorded_weights: bool,
    artifact: Callable[[str], Path],
    size: tuple[int, int],
) -> dict[str, Any]:
    """Return one evidence card's data."""
    found = effect(contribution) if recorded_weights else UNRECORDED
    metrics = list(item.metrics.items())[:MAX_METRICS]
    return {
        "id": item.id,
        "tool": item.tool,
        "summary": item.summary,
        "kind": item.kind,
        "direction": item.direction,
        "score": item.score,
        "towards": found.towards,
        "words": found.words,
        "contribution": found.contribution,
        "region": box_list(item.region),
        "boxes": [box_list(b) for b in item.boxes],
        "metrics": [[k, _metric(v)] for k, v in metrics],
        "caveats": list(item.caveats),
        "layers": layers(item, artifact, size),
        "step": item.step,
    }


def case_view(
    case: Case,
    size: tuple[int, int],
    artifact: Callable[[str], Path],
    earlier: Iterable[Any] = (),
) -> dict[str, Any]:
    """Return everything the case page shows, as plain data.

    Parameters
    ----------
    case : Case
        The stored case.
    size : (int, int)
        The image's width and height.
    artifact : callable
        Maps an artifact name to its file in the case's folder.
    earlier : iterable of CaseSummary
        Other cases of the same image.
    """
    verdict = case.verdict
    weights = recorded(verdict) if verdict else None
    cards: list[dict[str, Any]] = []
    known: set[str] = set()
    view: dict[str, Any] = {
        "case_id": case.case_id,
        "name": case.name,
        "status": case.status,
        "width": size[0],
        "height": size[1],
        "earlier": [{"case_id": c.case_id, "label": c.label, "p_ai": c.p_ai} for c in earlier],
        "label": None,
        "explanation": [],
        "regions": [],
        "failed_tools": [],
    }
    if verdict is not None:
        order = ranked(verdict.evidence, weights)
        known = {e.id for e in order}
        contributions: Mapping[str, float] = weights or {}
        cards = [
            evidence_view(e, contributions.get(e.id), weights is not None, artifact, size)
            for e in order
        ]
        view |= {
            "label": verdict.label,
            "p_ai": verdict.p_ai,
            "p_signals": verdict.p_signals,
            "abstain_band": list(verdict.abstain_band),
            "stopped": verdict.stopped,
            "backend": f"{verdict.backend.provider}:{verdict.backend.model}",
            "explanation": cited(verdict.explanation, known),
            "regions": [box_list(b) for b in verdict.regions],
            "failed_tools": list(verdict.failed_tools),
            "effects_recorded": weights is not None,
        }
    view["evidence"] = cards
    view["answers"] = []
    for answer in case.answers:  # each answer shows the items no earlier card showed
        view["answers"].append(_answer_view(answer, known, weights, artifact, size))
        known |= {e.id for e in answer.evidence}
    return view


def _answer_view(
    answer: Answer,
    known: set[str],
    weights: Mapping[str, float] | None,
    artifact: Callable[[str], Path],
    size: tuple[int, int],
) -> dict[str, Any]:
    ids = known | {e.id for e in answer.evidence}
    new = [e for e in answer.evidence if e.id not in known]
    found = effects(new, weights)
    return {
        "question": answer.question,
        "answer": cited(answer.answer, ids),
        "understood": answer.understood,
        "cites": [e.id for e in answer.evidence],
        "evidence": [
            evidence_view(e, found[e.id].contribution, weights is not None, artifact, size)
            for e in new
        ],
    }


def _metric(value: object) -> str:
    if isinstance(value, bool) or value is None:
        return "—" if value is None else str(value).lower()
    return f"{value:.4g}" if isinstance(value, float) else str(value)
