"""Screening: the survey's verdict on one image, without the closer look or a model.

What ``sleuth scan`` runs on every image: the survey tools on the whole image, the fusion,
and the stability check on web-style copies, exactly as the investigation's survey step
and its final fusion do (an offline investigation adds zoom and region findings, which do
not count in ``p_ai``). An unstable verdict is ``uncertain``, as in a case. Nothing is
stored and no artifact is written.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from sleuth.agent import stability as steady
from sleuth.agent.context import AgentContext
from sleuth.agent.evidence import failed_tools, to_evidence
from sleuth.agent.fusion import FusionWeights, contributions, fuse
from sleuth.agent.verdict import Evidence, Label, Stability, label_for
from sleuth.agent.view import CaseView
from sleuth.tools import LoadedImage, ToolRegistry
from sleuth.tools.survey import run_survey


@dataclass(frozen=True)
class Screening:
    """The survey's verdict on one image.

    Attributes
    ----------
    p_ai : float
        The fused probability (the tools' evidence alone).
    label : {"ai_generated", "real", "uncertain"}
        From ``p_ai`` and the abstain band; ``uncertain`` when the stability check failed.
    evidence : list of Evidence
        The survey's findings, numbered as in a case.
    contributions : dict of str to float
        Each item's log-odds contribution to ``p_ai``, by evidence id.
    stability : Stability or None
        The check on web-style copies (None when ``stability_variants`` is 0).
    failed : dict of str to str
        Tools that failed, with their error.
    seconds : float
        Wall-clock time.
    """

    p_ai: float
    label: Label
    evidence: list[Evidence]
    contributions: dict[str, float] = field(default_factory=dict)
    stability: Stability | None = None
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def screen(registry: ToolRegistry, image: LoadedImage, context: AgentContext) -> Screening:
    """Return the survey's verdict on ``image``.

    Parameters
    ----------
    registry : ToolRegistry
        The survey's tools (plugins with ``survey=True`` included).
    image : LoadedImage
        The image.
    context : AgentContext
        The abstain band and the number of stability variants.
    """
    start = time.perf_counter()
    done = run_survey(registry, image, top_k=0)
    view = CaseView({})
    evidence: list[Evidence] = []
    for step, result in enumerate(done.results.values()):
        evidence += to_evidence(result, view, offset=len(evidence), region=None, step=step)
    calibrated = registry.calibrations()
    band = context.band
    p_ai = fuse(evidence, band=band, calibrated=calibrated)
    label = label_for(p_ai, band)
    stability = None
    if context.stability_variants:
        stability = steady.check(
            registry, image, evidence, count=context.stability_variants, band=band
        )
        if not stability.stable:
            label = "uncertain"
    weights = contributions(evidence, FusionWeights.load(), band=band, calibrated=calibrated)
    return Screening(
        p_ai=round(p_ai, 4),
        label=label,
        evidence=evidence,
        contributions=weights,
        stability=stability,
        failed=failed_tools(evidence),
        seconds=round(time.perf_counter() - start, 4),
    )
