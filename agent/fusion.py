"""Fuse tool evidence (and a model's own probability) into one ``p_ai``.

The fusion is a log-odds sum, the form a logistic model takes, with coefficients read
from a versioned JSON file that ships in the package (``weights/``). The current file
is set by hand from the tools' documented score meanings; a fitted, calibrated file
replaces it without code changes.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources

from sleuth.agent.verdict import Evidence

DEFAULT_WEIGHTS = "fusion-hand-v1.json"


@dataclass(frozen=True, kw_only=True)
class FusionWeights:
    """Coefficients of the log-odds fusion.

    Attributes
    ----------
    version : str
        Recorded in every verdict.
    bias : float
        Prior log-odds.
    weights : dict of str to float
        Per tool; tools not listed get ``default_weight``.
    default_weight : float
    regional_factor : float
        Multiplier for findings of tools re-run on a region.
    model_weight : float
        Weight of a model's own log-odds.
    score_clip : float
        Scores are clipped to ``[score_clip, 1 - score_clip]`` before the logit.
    temperature : float
        The summed log-odds are divided by it (calibration).
    """

    version: str
    bias: float = 0.0
    weights: dict[str, float] = field(default_factory=dict)
    default_weight: float = 0.3
    regional_factor: float = 0.5
    model_weight: float = 1.0
    score_clip: float = 0.02
    temperature: float = 1.0

    @classmethod
    @functools.cache
    def load(cls, name: str = DEFAULT_WEIGHTS) -> FusionWeights:
        """Load a packaged coefficients file."""
        text = resources.files("sleuth.agent").joinpath("weights", name).read_text("utf-8")
        data = json.loads(text)
        data.pop("description", None)
        return cls(**data)


def logit(p: float, clip: float = 1e-6) -> float:
    """Return ``log(p / (1 - p))`` with ``p`` clipped to ``[clip, 1 - clip]``."""
    p = min(max(p, clip), 1.0 - clip)
    return math.log(p / (1.0 - p))


def sigmoid(z: float) -> float:
    """Return ``1 / (1 + exp(-z))`` without overflow."""
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def contributions(evidence: Iterable[Evidence], weights: FusionWeights) -> dict[str, float]:
    """Return each evidence item's log-odds contribution, by evidence id.

    Per tool and per scope (whole image, regions), only the strongest finding counts,
    so a tool that reports the same trace twice is not counted twice. Neutral findings,
    and findings without a score, contribute nothing.
    """
    best: dict[tuple[str, bool], tuple[str, float]] = {}
    for item in evidence:
        if item.score is None or item.direction == "neutral":
            continue
        weight = weights.weights.get(item.tool, weights.default_weight)
        regional = item.region is not None
        if regional:
            weight *= weights.regional_factor
        value = weight * logit(item.score, weights.score_clip)
        key = (item.tool, regional)
        if key not in best or abs(value) > abs(best[key][1]):
            best[key] = (item.id, value)
    return dict(best.values())


def fuse(
    evidence: Iterable[Evidence],
    *,
    p_model: float | None = None,
    weights: FusionWeights | None = None,
) -> float:
    """Return the fused probability that the image is AI-generated.

    Parameters
    ----------
    evidence : iterable of Evidence
        Findings so far.
    p_model : float, optional
        A model's own probability, added with ``model_weight``.
    weights : FusionWeights, optional
        Defaults to the packaged file.

    Returns
    -------
    float
        ``sigmoid((bias + sum of contributions + model term) / temperature)``.
    """
    weights = weights or FusionWeights.load()
    z = weights.bias + sum(contributions(evidence, weights).values())
    if p_model is not None:
        z += weights.model_weight * logit(p_model, weights.score_clip)
    return sigmoid(z / weights.temperature)
