"""The investigation's run-time context: budgets and thresholds, frozen for a run."""

from __future__ import annotations

from dataclasses import dataclass

from sleuth.tools.errors import SleuthError
from sleuth.tools.variants import STABILITY_VARIANTS

RANGES: dict[str, tuple[float, float]] = {
    "max_steps": (1, 50),
    "threshold": (0.5, 1.0),
    "abstain_low": (0.0, 0.5),
    "abstain_high": (0.5, 1.0),
    "candidates": (0, 20),
    "stability_variants": (0, STABILITY_VARIANTS),
}
"""Valid range (inclusive) of each :class:`AgentContext` field: the settings, the CLI and
the MCP tools read their bounds from here."""


class AgentConfigError(SleuthError, ValueError):
    """A context value is out of range; the message names it and the valid range."""


@dataclass(frozen=True, kw_only=True)
class AgentContext:
    """Budgets and thresholds for one run of the graph (LangGraph ``context_schema``).

    Parameters
    ----------
    max_steps : int
        Most reasoning turns per question (each turn may call several tools). Reaching it
        ends the investigation with the label ``uncertain`` and the evidence so far.
    threshold : float
        Confidence that ends the loop early: stop once ``max(p_ai, 1 - p_ai)`` reaches it.
    abstain_low, abstain_high : float
        The abstain band: a final ``p_ai`` inside ``[abstain_low, abstain_high]`` is
        labelled ``uncertain``.
    candidates : int
        Most candidate regions the survey proposes for a closer look.
    stability_variants : int
        Web-style copies of the image (downscaled, re-encoded, cropped: the first this
        many) on which the survey's pixel tools run again; when the label moves on one,
        the verdict is ``uncertain``. 0 switches the check off.
    """

    max_steps: int = 6
    threshold: float = 0.85
    abstain_low: float = 0.35
    abstain_high: float = 0.65
    candidates: int = 3
    stability_variants: int = 2

    def __post_init__(self) -> None:
        for name, (low, high) in RANGES.items():
            value = getattr(self, name)
            if not low <= value <= high:
                raise AgentConfigError(f"{name}={value!r} is out of range; use {low}..{high}")

    @property
    def band(self) -> tuple[float, float]:
        """The abstain band ``(low, high)``."""
        return (self.abstain_low, self.abstain_high)
