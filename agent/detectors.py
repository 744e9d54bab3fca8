"""Calibrated tools: a plugin's probability of AI generation as a capped log-odds term.

A tool declared with ``calibrated=Calibration(on=..., weight=..., cap=...)``
(:class:`sleuth.tools.Calibration`, which explains the defaults) says that the score of
its finding on the whole image is a calibrated probability of AI generation. The fusion
(:func:`sleuth.agent.fusion.contributions`) adds, for its first scored finding on the
whole image, ``clip(weight * logit(score), -cap, cap)``. Regional re-runs, error findings
and the scores of tools without the declaration add nothing. The weight is the declared
one unless the fusion's coefficients file holds one fitted by ``sleuth train-fusion``;
the cap is always the declared one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from sleuth.agent.verdict import Evidence
from sleuth.tools.base import Calibration

SCORE_CLIP = 1e-6
"""Scores are clipped to ``[SCORE_CLIP, 1 - SCORE_CLIP]`` before the logit (the cap then
decides how far a score of exactly 0 or 1 counts)."""


class Scored(Protocol):
    """What a calibrated score is read from: an agent ``Evidence`` or a tool ``Finding``."""

    @property
    def tool(self) -> str:
        """The tool's name."""

    @property
    def kind(self) -> str:
        """``provenance``, ``signal``, ``observation`` or ``error``."""

    @property
    def score(self) -> float | None:
        """The tool's score."""


def detector_item(items: Sequence[Scored], tool: str) -> int | None:
    """Return the index of the item whose score counts for the calibrated tool ``tool``.

    That is the tool's first finding on the whole image (an item with a ``region`` is a
    regional re-run) that has a score and is not an error; None when there is none.
    """
    for index, item in enumerate(items):
        whole = getattr(item, "region", None) is None
        if item.tool == tool and whole and item.kind != "error" and item.score is not None:
            return index
    return None


def detector_log_odds(score: float, *, weight: float, cap: float) -> float:
    """Return ``clip(weight * logit(score), -cap, cap)``: a calibrated score's term.

    Examples
    --------
    >>> detector_log_odds(0.9999, weight=1.0, cap=1.0)  # logit 9.2, cut to the cap
    1.0
    """
    p = min(max(score, SCORE_CLIP), 1.0 - SCORE_CLIP)
    return min(max(weight * math.log(p / (1.0 - p)), -cap), cap)


@dataclass(frozen=True)
class DetectorTerm:
    """What one calibrated tool's score added to the fused log-odds.

    Attributes
    ----------
    id : str
        The evidence item it was read from.
    tool : str
    score : float
        The tool's probability of AI generation.
    weight, cap : float
        As applied: the fitted weight when the coefficients file has one, else the
        declared one; the declared cap.
    term : float
        ``clip(weight * logit(score), -cap, cap)``.
    capped : bool
        Whether the cap cut the term.
    on : str
        What the tool says its score was calibrated on.
    """

    id: str
    tool: str
    score: float
    weight: float
    cap: float
    term: float
    capped: bool
    on: str


def detector_terms(
    evidence: Iterable[Evidence],
    calibrated: Mapping[str, Calibration],
    fitted: Mapping[str, float],
) -> list[DetectorTerm]:
    """Return the term of every calibrated tool that has a whole-image score, in tool order.

    Parameters
    ----------
    evidence : iterable of Evidence
    calibrated : mapping of str to Calibration
        The calibrated tools, by name (``registry.calibrations()``).
    fitted : mapping of str to float
        Weights fitted by ``sleuth train-fusion`` (``FusionWeights.plugins``); each
        replaces the declared weight of its tool.
    """
    items = list(evidence)
    out = []
    for tool, declared in calibrated.items():
        index = detector_item(items, tool)
        score = items[index].score if index is not None else None
        if index is None or score is None:
            continue
        weight = fitted.get(tool, declared.weight)
        term = detector_log_odds(score, weight=weight, cap=declared.cap)
        raw = detector_log_odds(score, weight=weight, cap=math.inf)
        out.append(
            DetectorTerm(
                id=items[index].id,
                tool=tool,
                score=score,
                weight=weight,
                cap=declared.cap,
                term=term,
                capped=term != raw,
                on=declared.on,
            )
        )
    return out
