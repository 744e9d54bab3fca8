"""The one interface every reasoning backend implements, and what it is given."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from langchain_core.messages import AIMessage
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from sleuth.agent.context import AgentContext
from sleuth.agent.frames import BoxFrame
from sleuth.agent.fusion import fuse
from sleuth.agent.verdict import BackendIdentity
from sleuth.agent.view import CaseView
from sleuth.tools import Box, LoadedImage, SleuthError, ToolRegistry


class BackendError(SleuthError, RuntimeError):
    """The model could not be reached or gave nothing usable; the case is kept."""


class ModelVerdict(BaseModel):
    """The JSON a model answers with when it concludes (its structured-output schema).

    Every number and list is bounded so that constrained decoding terminates.
    """

    model_config = ConfigDict(extra="forbid")

    label: str = Field(pattern="^(ai_generated|real)$")
    p_ai: float = Field(ge=0.0, le=1.0)
    explanation: str = Field(max_length=2000)
    cite: list[str] = Field(default_factory=list, max_length=16)
    boxes: list[list[int]] = Field(default_factory=list, max_length=8)


@dataclass(frozen=True, kw_only=True)
class Opinion:
    """A backend's conclusion on the current question.

    Attributes
    ----------
    p_model : float or None
        The model's own probability of AI generation (None for signal-only backends).
    explanation : str
        Text citing evidence as ``[E<n>]``.
    boxes : list of Box
        Regions the model points at, in original pixels.
    """

    p_model: float | None
    explanation: str
    boxes: list[Box] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class Situation:
    """What a backend gets on each turn.

    Attributes
    ----------
    view : CaseView
        The case so far (messages, evidence, candidates, steps).
    image : LoadedImage
        The case's image.
    frame : BoxFrame
        The backend's box frame on this image.
    registry : ToolRegistry
        The tools it may call.
    context : AgentContext
        Budgets and thresholds.
    resolve : callable
        Image reference (``image`` or an artifact file name) to the data URL of the picture
        to send, at the model's input size.
    """

    view: CaseView
    image: LoadedImage
    frame: BoxFrame
    registry: ToolRegistry
    context: AgentContext
    resolve: Callable[[str], str]

    @functools.cached_property
    def p_signals(self) -> float:
        """The fused probability of the evidence so far."""
        return fuse(
            self.view.evidence,
            band=self.context.band,
            calibrated=self.registry.calibrations(),
        )

    @property
    def remaining(self) -> int:
        """Reasoning turns left on the current question, this one included."""
        return self.context.max_steps - self.view.turns


class Backend(Protocol):
    """A reasoning engine: a vision-language model, or the offline analyst.

    ``reason`` returns an AI message: with tool calls (boxes in :meth:`frame`) to look
    closer, or without them to conclude (analysis) or answer (follow-up). ``conclude``
    turns a concluding message into an :class:`Opinion`. A backend that holds resources
    (an HTTP client's pooled connections) may also have ``close()``: the session that
    made it calls it when the session ends.
    """

    identity: BackendIdentity

    def frame(self, image: LoadedImage) -> BoxFrame:
        """Return the frame this backend writes boxes in, for ``image``."""
        ...

    def picture(self, picture: Image.Image) -> Image.Image:
        """Return ``picture`` at the resolution the model takes."""
        ...

    def reason(self, situation: Situation) -> AIMessage:
        """Take one turn."""
        ...

    def conclude(self, situation: Situation, message: AIMessage) -> Opinion:
        """Read the verdict out of a concluding message."""
        ...
