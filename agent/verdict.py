"""The verdict: what an investigation concludes, with the evidence and steps behind it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from sleuth.tools import Box
from sleuth.tools.base import Direction, EvidenceKind, MetricValue

Label = Literal["ai_generated", "real", "uncertain"]
"""``uncertain`` is an abstention: p_ai fell inside the abstain band, the budget ran out, or
the tools' verdict did not hold on web-style copies of the image (:class:`Stability`)."""


class Evidence(BaseModel):
    """One finding as the verdict cites it: ``[E3]`` in an explanation is ``id == "E3"``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(description="Citation key, E1, E2, ... in the order found.")
    tool: str
    region: Box | None = Field(
        default=None, description="Region the tool analysed (None: the whole image)."
    )
    summary: str
    score: float | None = Field(default=None, ge=0.0, le=1.0)
    direction: Direction = "neutral"
    kind: EvidenceKind = "signal"
    boxes: list[Box] = Field(default_factory=list, description="In original pixels.")
    box_scores: list[float] = Field(
        default_factory=list,
        description="How strongly each box stands out from the rest of the analysed area, "
        "one per box; empty when the tool does not rank its boxes.",
    )
    metrics: dict[str, MetricValue] = Field(default_factory=dict)
    artifacts: list[str] = Field(
        default_factory=list, description="Artifact file names in the case's artifact folder."
    )
    caveats: list[str] = Field(default_factory=list)
    step: int = Field(0, ge=0, description="Index of the step that produced it.")


class Step(BaseModel):
    """One thing the investigation did: the survey, a model turn, a tool call, a decision."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    index: int = Field(ge=0)
    kind: Literal["survey", "stability", "model", "tool", "decide", "answer"]
    tool: str | None = None
    arguments: dict[str, object] = Field(default_factory=dict)
    result: str = Field(description="One line: what came back.")
    error: bool = False
    seconds: float = Field(0.0, ge=0.0)


class VariantCheck(BaseModel):
    """The survey's fused probability on one web-style copy of the image."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="What the copy is, e.g. 're-encoded as JPEG q80'.")
    p_ai: float = Field(
        ge=0.0,
        le=1.0,
        description="The fusion of the copy's pixel evidence with the image's own file "
        "evidence (provenance, size).",
    )
    label: Label = Field(description="The label p_ai gives with the run's abstain band.")


class Stability(BaseModel):
    """Whether the tools' verdict holds on web-style copies (resized, re-encoded, cropped)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    p_original: float = Field(
        ge=0.0, le=1.0, description="The survey's fused probability on the image itself."
    )
    label: Label = Field(description="The label p_original gives with the run's abstain band.")
    variants: list[VariantCheck] = Field(default_factory=list)
    stable: bool = Field(
        description="False when a copy's label differs from the image's own (p_ai crossed "
        "the abstain band, or moved into or out of it); the verdict is then uncertain."
    )
    seconds: float = Field(0.0, ge=0.0, description="Time the check took.")


class BackendIdentity(BaseModel):
    """Which reasoning engine produced a verdict."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: str = Field(description="offline, openai or transformers.")
    model: str = Field(description="Model name as served, or the offline policy's version.")
    base_url: str | None = None
    fallback_from: str | None = Field(
        default=None,
        description="Set when the configured backend failed and the offline analyst "
        "answered instead: the backend that failed and why.",
    )


class Verdict(BaseModel):
    """The conclusion of an investigation of one image."""

    model_config = ConfigDict(extra="forbid")

    case_id: str
    image_id: str = Field(description="sha256 of the image file.")
    label: Label
    p_ai: float = Field(ge=0.0, le=1.0, description="Calibrated probability of AI generation.")
    explanation: str = Field(description="Every claim cites evidence as [E<n>].")
    evidence: list[Evidence] = Field(default_factory=list)
    contributions: dict[str, float] | None = Field(
        default=None,
        description="Each evidence item's log-odds contribution to p_signals, by evidence id "
        "(positive: towards AI); an item not listed does not count. None in verdicts stored "
        "before it was recorded.",
    )
    regions: list[Box] = Field(
        default_factory=list,
        description="Numbered regions of interest from the survey: box 1 is regions[0].",
    )
    boxes: list[Box] = Field(
        default_factory=list, description="Where the evidence for the label lies (original pixels)."
    )
    steps: list[Step] = Field(default_factory=list)
    p_signals: float = Field(ge=0.0, le=1.0, description="The tools' fused probability alone.")
    p_model: float | None = Field(
        default=None, ge=0.0, le=1.0, description="The model's own probability, when it gave one."
    )
    abstain_band: tuple[float, float] = Field(
        description="p_ai inside [low, high] gives the label uncertain."
    )
    stopped: Literal["confident", "concluded", "budget"] = Field(
        description="confident: the threshold was reached; concluded: the backend had nothing "
        "more to examine; budget: the step budget ran out."
    )
    backend: BackendIdentity
    versions: dict[str, str] = Field(default_factory=dict)
    timings: dict[str, float] = Field(default_factory=dict, description="Seconds per phase.")
    stability: Stability | None = Field(
        default=None,
        description="The tools' verdict on web-style copies of the image; None when the "
        "check is switched off (stability_variants = 0).",
    )
    failed_tools: list[str] = Field(
        default_factory=list,
        description="Tools that failed during the analysis (raised, returned no ToolResult "
        "or ran past tool_seconds): each has an evidence item of kind 'error' saying why, "
        "and the verdict was reached without it.",
    )


class Answer(BaseModel):
    """The answer to a follow-up question, with the evidence gathered for it."""

    model_config = ConfigDict(extra="forbid")

    question: str
    answer: str
    evidence: list[Evidence] = Field(
        default_factory=list,
        description="What the answer rests on: evidence gathered for it, and earlier "
        "evidence it cites.",
    )
    backend: BackendIdentity
    understood: bool = Field(
        default=True,
        description="False when the backend could not understand (all of) the question, "
        "e.g. the offline analyst asked about hands or faces, which need a vision model; "
        "the answer then says what was not understood and what can be asked.",
    )


class Case(BaseModel):
    """A stored investigation: the image, its verdict, and the follow-up conversation."""

    model_config = ConfigDict(extra="forbid")

    case_id: str
    image_id: str
    name: str | None = Field(None, description="The image's file name, when it had one.")
    status: Literal["concluded", "interrupted"] = Field(
        description="interrupted: the run stopped before a verdict (e.g. the model server "
        "failed); a follow-up question resumes it."
    )
    verdict: Verdict | None = None
    answers: list[Answer] = Field(default_factory=list)


def label_for(p_ai: float, band: tuple[float, float]) -> Label:
    """Return the label for a probability: ``uncertain`` inside the closed abstain band.

    Examples
    --------
    >>> label_for(0.9, (0.35, 0.65)), label_for(0.5, (0.35, 0.65)), label_for(0.1, (0.35, 0.65))
    ('ai_generated', 'uncertain', 'real')
    """
    low, high = band
    if p_ai > high:
        return "ai_generated"
    if p_ai < low:
        return "real"
    return "uncertain"
