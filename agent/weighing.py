"""What each evidence item did to ``p_ai``, in the words every surface uses.

The numbers are the fusion's log-odds contributions
(:func:`sleuth.agent.fusion.contributions`), recorded in the verdict when it is written.
This module turns them into words with one set of thresholds, so the offline
explanation, the console, the HTML report and the MCP text say the same thing about the
same item: it moves the probability towards AI or towards a real capture (weakly,
moderately or strongly), or it does not move it. The tool's own ``direction`` and
``score`` are the tool's reading of its statistic, not what the fusion made of it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from sleuth.agent.fusion import FusionWeights, contributions
from sleuth.agent.verdict import Evidence, Verdict

NEGLIGIBLE = 0.05
"""Below this absolute log-odds an item does not move the verdict."""
WEAK = 0.3
"""Below this (and from :data:`NEGLIGIBLE`) an item moves the probability weakly."""
MODERATE = 1.0
"""Below this an item moves it moderately; from it on, strongly."""

Towards = Literal["ai", "real", "none", "unknown"]
Strength = Literal["weak", "moderate", "strong"]

TOWARDS_WORDS: dict[Towards, str] = {
    "ai": "towards AI",
    "real": "towards a real capture",
    "none": "does not move p_ai",
    "unknown": "effect on p_ai not recorded",
}
NOT_COUNTED = "does not count in p_ai"
"""For an item the fusion gives no term at all (or exactly zero)."""


@dataclass(frozen=True)
class Effect:
    """What one evidence item did to ``p_ai``.

    Attributes
    ----------
    contribution : float or None
        Its log-odds contribution; None when it has none (it does not count) or when the
        verdict did not record contributions.
    towards : {"ai", "real", "none", "unknown"}
        ``none``: it does not move the probability (below :data:`NEGLIGIBLE`).
    strength : {"weak", "moderate", "strong"} or None
        Set when ``towards`` is ``ai`` or ``real``.
    """

    contribution: float | None
    towards: Towards
    strength: Strength | None = None

    @property
    def counts(self) -> bool:
        """Whether the item moves the probability at all."""
        return self.towards in ("ai", "real")

    @property
    def words(self) -> str:
        """Plain words for a card: ``towards AI (strong)``, ``does not count in p_ai``, ..."""
        if self.strength is not None:
            return f"{TOWARDS_WORDS[self.towards]} ({self.strength})"
        if self.towards == "none" and not self.contribution:
            return NOT_COUNTED
        return TOWARDS_WORDS[self.towards]


UNRECORDED = Effect(contribution=None, towards="unknown")


def effect(contribution: float | None) -> Effect:
    """Return the effect of one log-odds contribution (None: the item has no term).

    Examples
    --------
    >>> effect(2.4).words, effect(-0.1).words
    ('towards AI (strong)', 'towards a real capture (weak)')
    >>> effect(0.01).words, effect(None).words
    ('does not move p_ai', 'does not count in p_ai')
    """
    if contribution is None or abs(contribution) < NEGLIGIBLE:
        return Effect(contribution=contribution, towards="none")
    size = abs(contribution)
    strength: Strength = "weak" if size < WEAK else "moderate" if size < MODERATE else "strong"
    return Effect(
        contribution=contribution, towards="ai" if contribution > 0 else "real", strength=strength
    )


def ranked(evidence: Iterable[Evidence], weights: Mapping[str, float] | None) -> list[Evidence]:
    """Return the items by absolute contribution, largest first (ties keep their order).

    Items without a contribution count as zero; with ``weights`` None (not recorded) the
    order is unchanged.
    """
    items = list(evidence)
    if weights is None:
        return items
    return sorted(items, key=lambda e: -abs(weights.get(e.id, 0.0)))


def effects(evidence: Iterable[Evidence], weights: Mapping[str, float] | None) -> dict[str, Effect]:
    """Return each item's :class:`Effect`, by evidence id (:data:`UNRECORDED` without weights)."""
    if weights is None:
        return {e.id: UNRECORDED for e in evidence}
    return {e.id: effect(weights.get(e.id)) for e in evidence}


def deciding_provenance(
    evidence: Iterable[Evidence], weights: Mapping[str, float]
) -> list[Evidence]:
    """Return the provenance items that decide the verdict, largest contribution first.

    A provenance item decides when the file declares an origin (its direction is not
    neutral) and the fusion counts it the same way, strongly. The absence of metadata,
    however the fusion weighs it, declares nothing and decides nothing, and a claim the
    fusion weighs only weakly or moderately (a forgeable camera EXIF, say) is a hint
    like the statistics; without a deciding item the verdict rests on hints alone.
    """
    out = []
    for item in ranked(evidence, weights):
        found = effect(weights.get(item.id))
        declared = item.kind == "provenance" and found.towards == item.direction
        if declared and found.strength == "strong":
            out.append(item)
    return out


def recorded(verdict: Verdict) -> dict[str, float] | None:
    """Return the contributions a verdict was written with.

    A verdict stored before they were recorded gets them recomputed when it was fused
    with the fusion weights in use now, else None (not known). The recomputation counts
    no calibrated tool: such verdicts predate calibrated scores.
    """
    if verdict.contributions is not None:
        return verdict.contributions
    current = FusionWeights.load()
    if verdict.versions.get("fusion") != current.version:
        return None
    return contributions(verdict.evidence, current, band=verdict.abstain_band)
