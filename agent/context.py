"""The investigation's run-time context: budgets and thresholds, frozen for a run."""

from __future__ import annotations

from dataclasses import dataclass

from sleuth.tools.errors import SleuthError


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
    """

    max_steps: int = 6
    threshold: float = 0.85
    abstain_low: float = 0.35
    abstain_high: float = 0.65
    candidates: int = 3

    def __post_init__(self) -> None:
        checks = {
            "max_steps": 1 <= self.max_steps <= 50,
            "threshold": 0.5 <= self.threshold <= 1.0,
            "abstain_low": 0.0 <= self.abstain_low <= 0.5,
            "abstain_high": 0.5 <= self.abstain_high <= 1.0,
            "candidates": 0 <= self.candidates <= 20,
        }
        ranges = {
            "max_steps": "1..50",
            "threshold": "0.5..1",
            "abstain_low": "0..0.5",
            "abstain_high": "0.5..1",
            "candidates": "0..20",
        }
        for name, ok in checks.items():
            if not ok:
                raise AgentConfigError(
                    f"{name}={getattr(self, name)!r} is out of range; use {ranges[name]}"
                )

    @property
    def band(self) -> tuple[float, float]:
        """The abstain band ``(low, high)``."""
        return (self.abstain_low, self.abstain_high)
