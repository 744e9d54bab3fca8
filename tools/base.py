"""The forensic tool contract: what a tool takes, what it returns, how it is declared.

A tool is one function ``run(image, params, ctx) -> ToolResult`` wrapped by
:func:`forensic_tool` into a :class:`ToolSpec`. Built-in tools and plugins are
declared the same way and reach the registry through the ``sleuth.tools``
entry-point group.
"""

from __future__ import annotations

import io
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import numpy as np
from PIL import Image, PngImagePlugin
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from sleuth.tools.box import Box
from sleuth.tools.image import LoadedImage

TOOL_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
ARTIFACT_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,127}$")

Direction = Literal["ai", "real", "neutral"]
"""Which way a finding points: towards AI generation, towards a real capture, or neither."""

EvidenceKind = Literal["provenance", "signal", "observation", "error"]
"""``provenance``: what the file declares about its origin (C2PA, IPTC, generator
metadata, watermarks), the strongest evidence there is when present. ``signal``: a
statistical pixel or compression trace. ``observation``: a view for a person or a model
(a zoomed crop), no judgement of its own. ``error``: the tool failed (raised, returned
something else than a ToolResult, or ran past its time budget); the finding says why,
carries no score and no metrics, and the fusion ignores it
(:func:`sleuth.tools.isolation.run_isolated`)."""

Cost = Literal["cheap", "moderate", "expensive"]
"""Rough cost of one call on a 12 MP image: under 0.3 s, under 2 s, more."""

MetricValue = float | int | str | bool | None

PNG_LEVEL = 1
ARTIFACT_KEY = "sleuth:artifact"
"""PNG text key under which a saved artifact describes itself (see :func:`read_artifact`)."""
MAX_ARTIFACT_TEXT = 4096
"""zlib level for the PNGs written on every step (see :func:`png_bytes`)."""


class Finding(BaseModel):
    """What one tool saw, in a form a model, a report and a fusion step can all use."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tool: str = Field(default="", description="Tool that produced it (set by the registry).")
    summary: str = Field(description="One sentence stating what was observed.")
    score: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Suspicion in [0, 1]; the tool's score_meaning says what it measures. "
        "None when the finding carries no score.",
    )
    direction: Direction = "neutral"
    kind: EvidenceKind = "signal"
    boxes: list[Box] = Field(default_factory=list, description="Regions in original pixels.")
    box_scores: list[Annotated[float, Field(ge=0.0, le=1.0)]] = Field(
        default_factory=list,
        description="How strongly each box stands out from the rest of the analysed area, "
        "in [0, 1], one per box in the order of boxes; empty when the tool does not rank "
        "its boxes. The survey ranks candidate regions by it.",
    )
    metrics: dict[str, MetricValue] = Field(default_factory=dict)
    artifacts: list[str] = Field(default_factory=list, description="Names of artifacts.")
    caveats: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_score_per_box(self) -> Self:
        if self.box_scores and len(self.box_scores) != len(self.boxes):
            raise ValueError(
                f"{len(self.box_scores)} box scores for {len(self.boxes)} boxes: give one "
                "score per box, or none"
            )
        return self


ArtifactKind = Literal["heatmap", "spectrum", "crop", "map"]


class Artifact(BaseModel):
    """An image a tool produced (heatmap, spectrum, crop), referenced from findings by name.

    The pixels stay in memory (:meth:`pixels`) and are written as PNG when the tool
    context has an artifact directory; findings only ever hold the name.
    """

    model_config = ConfigDict(extra="forbid")

    name: str
    kind: ArtifactKind
    description: str
    width: int
    height: int
    source: Box | None = Field(
        default=None,
        description="For crops and maps: the region of the original image they cover, in "
        "original pixels. "
        "A pixel (u, v) of the artifact maps to original (x0 + u * source.width / width, "
        "y0 + v * source.height / height).",
    )
    path: str | None = None
    _pixels: np.ndarray | None = PrivateAttr(default=None)

    def pixels(self) -> np.ndarray:
        """Return the artifact's pixels (uint8, HxW or HxWx3)."""
        if self._pixels is None:
            if self.path is None:
                raise ValueError(f"artifact {self.name} has neither pixels nor a path")
            return np.asarray(Image.open(self.path))
        return self._pixels

    def to_original(self, u: float, v: float) -> tuple[float, float]:
        """Map a point of this artifact to original-image pixels (needs ``source``)."""
        if self.source is None:
            raise ValueError(f"artifact {self.name} does not cover a region of the image")
        sx = self.source.width / self.width
        sy = self.source.height / self.height
        return (self.source.x0 + u * sx, self.source.y0 + v * sy)


class ToolResult(BaseModel):
    """Findings plus the artifacts they reference."""

    model_config = ConfigDict(extra="forbid")

    findings: list[Finding] = Field(default_factory=list)
    artifacts: list[Artifact] = Field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class ToolContext:
    """What a running tool may use besides the image: where artifacts go.

    Parameters
    ----------
    tool : str
        Name of the running tool, used as the artifact name prefix.
    artifact_dir : Path, optional
        Where artifacts are written as PNG; when None they stay in memory.
    tag : str
        Extra name part keeping artifacts of several calls apart (e.g. a region).
    """

    tool: str
    artifact_dir: Path | None = None
    tag: str = ""
    _names: set[str] = field(default_factory=set, repr=False, compare=False)

    def artifact(
        self,
        name: str,
        pixels: np.ndarray,
        *,
        kind: ArtifactKind,
        description: str,
        source: Box | None = None,
    ) -> Artifact:
        """Make an artifact from uint8 pixels (or floats in [0, 1]) and save it if asked.

        Parameters
        ----------
        name : str
            Short name, unique within this call (``map``, ``spectrum``, ``crop``).
        pixels : ndarray, shape (H, W) or (H, W, 3)
            uint8 values, or floats in [0, 1] which are scaled to 0-255.
        kind : {'heatmap', 'spectrum', 'crop', 'map'}
            What the image shows.
        description : str
            One sentence for a person reading a report.
        source : Box, optional
            Region of the original image the artifact covers, in original pixels.
        """
        full = "-".join(p for p in (self.tool, self.tag, name) if p)
        if not ARTIFACT_NAME.match(full) or full in self._names:
            raise ValueError(f"artifact name {full!r} is invalid or used twice in one call")
        self._names.add(full)
        data = _as_uint8(pixels)
        art = Artifact(
            name=full,
            kind=kind,
            description=description,
            width=int(data.shape[1]),
            height=int(data.shape[0]),
            source=source,
        )
        art._pixels = data
        if self.artifact_dir is not None:
            self.artifact_dir.mkdir(parents=True, exist_ok=True)
            path = self.artifact_dir / f"{full}.png"
            described = art.model_dump_json(exclude={"name", "path"})
            path.write_bytes(png_bytes(Image.fromarray(data), text={ARTIFACT_KEY: described}))
            art.path = str(path)
        return art


def png_bytes(picture: Image.Image, *, text: dict[str, str] | None = None) -> bytes:
    """Encode a picture as PNG, favouring speed: zlib level 1.

    Level 1 encodes a 1-megapixel photo about 4x faster than Pillow's default level 6 for
    about 13% more bytes; artifacts and model inputs are written on every step. ``text``
    becomes PNG text chunks.
    """
    info = None
    if text:
        info = PngImagePlugin.PngInfo()
        for key, value in text.items():
            info.add_text(key, value)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", compress_level=PNG_LEVEL, pnginfo=info)
    return buffer.getvalue()


def read_artifact(path: Path) -> Artifact | None:
    """Return what a saved artifact shows (kind, description, source box), or None.

    Reads the description :meth:`ToolContext.artifact` writes into the PNG; a file without
    one, or with one that does not validate, gives None (the file is treated as untrusted).

    Parameters
    ----------
    path : Path
        An artifact file, ``<name>.png``.
    """
    try:
        with Image.open(path) as picture:
            described = picture.info.get(ARTIFACT_KEY) if picture.format == "PNG" else None
        if not isinstance(described, str) or len(described) > MAX_ARTIFACT_TEXT:
            return None
        fields = json.loads(described)
        if not isinstance(fields, dict):
            return None
        return Artifact.model_validate({**fields, "name": path.stem, "path": str(path)})
    except (OSError, SyntaxError, ValueError, RecursionError):
        return None


def _as_uint8(pixels: np.ndarray) -> np.ndarray:
    if pixels.dtype == np.uint8:
        return np.ascontiguousarray(pixels)
    scaled = np.nan_to_num(pixels.astype(np.float64), copy=False)  # one working copy
    np.clip(scaled, 0.0, 1.0, out=scaled)
    scaled *= 255.0
    return np.rint(scaled, out=scaled).astype(np.uint8)


def too_small(image: LoadedImage, minimum: int) -> ToolResult | None:
    """Return a neutral "too small" result when a side of ``image`` is under ``minimum``.

    Returns
    -------
    ToolResult or None
        None when the image is large enough to analyse.
    """
    if min(image.width, image.height) >= minimum:
        return None
    finding = Finding(
        summary=f"Too small to analyse ({image.width}x{image.height} pixels).",
        caveats=[f"needs at least {minimum}x{minimum} pixels"],
    )
    return ToolResult(findings=[finding])


RunFunction = Callable[[LoadedImage, Any, ToolContext], ToolResult]

CALIBRATED_CAP = 1.0
"""Default :attr:`Calibration.cap`: the most log-odds a calibrated score adds or removes."""
CALIBRATED_WEIGHT = 1.0
"""Default :attr:`Calibration.weight`: the score's log-odds taken at face value."""
MAX_CALIBRATED_CAP = 2.0
"""The largest cap a tool may declare (see :class:`Calibration`)."""
MAX_CALIBRATED_ON = 300
"""Longest :attr:`Calibration.on`, in characters."""


@dataclass(frozen=True, kw_only=True)
class Calibration:
    """A tool's declaration that its score is a calibrated probability of AI generation.

    Declare it with ``forensic_tool(..., calibrated=Calibration(on=...))`` on a tool that
    wraps a learned detector (a B-Free, SPAI or NPR checkpoint, a vendor API). The offline
    analyst's fusion (:mod:`sleuth.agent.fusion`) then adds, for the tool's first scored
    finding on the whole image (regional re-runs and error findings never count)::

        clip(weight * logit(score), -cap, +cap)

    to the fused log-odds, recorded in ``Verdict.contributions`` under the finding's
    evidence id like every other item. A tool without this declaration moves nothing,
    whatever its score.

    Attributes
    ----------
    on : str
        What the score was calibrated on, in one sentence: the data (generators, real
        sources, post-processing) and the method (e.g. "temperature-scaled on the
        held-out split of ..."). Shown by ``sleuth tools list`` and cited in the offline
        explanation; at most 300 characters.
    weight : float
        Multiplies the score's log-odds (>= 0). The default 1.0 takes the probability at
        its word. ``sleuth train-fusion`` fits a weight on a labelled set and writes it
        into the coefficients file, where it replaces this one.
    cap : float
        The most log-odds the score may add or remove, in (0, 2]; default 1.0.

    Notes
    -----
    **Why a cap, and why 1.0.** A detector calibrated on its own test set is calibrated
    for those generators and that processing; on sources it never saw, and after the
    web's resizes and re-encodes, learned detectors lose much of their accuracy while
    keeping their confidence. The cap makes the declaration a bounded claim:

    - 1.0 log-odds is a likelihood ratio of e (2.7), the same bound as the one size
      feature the pixel model may use (a generator's frame on a lossless file);
    - on its own, from even odds, a capped score moves ``p_ai`` to at most 0.73 (at
      least 0.27): it can take a verdict out of the abstain band (0.35-0.65), but not to
      the confidence (0.85) that ends an investigation, and the stability check still
      turns a call that does not survive a resize or re-encode into ``uncertain``;
    - it never outweighs what the file declares (a declared AI origin +4, a validly
      signed capture -3).

    A larger cap (at most :data:`MAX_CALIBRATED_CAP`, 2.0) is a stronger claim; at 2.0 a
    plugin together with the pixel model at its cap towards AI (+1.1) still cannot turn
    a signed capture into an AI call. Each calibrated tool is capped on its own. The
    weight does not lift the cap, so a fitted weight can only make a score count less
    than the cap or reach it sooner.
    """

    on: str
    weight: float = CALIBRATED_WEIGHT
    cap: float = CALIBRATED_CAP

    def problem(self) -> str | None:
        """Return what is wrong with the declaration, or None when it is valid."""
        if not isinstance(self.on, str) or not self.on.strip():
            return "on must say what the score was calibrated on (a non-empty sentence)"
        if len(self.on) > MAX_CALIBRATED_ON:
            return f"on is {len(self.on)} characters; keep it under {MAX_CALIBRATED_ON}"
        if not _real(self.weight) or not 0.0 <= self.weight:
            return f"weight must be a number >= 0, not {self.weight!r}"
        if not _real(self.cap) or not 0.0 < self.cap <= MAX_CALIBRATED_CAP:
            return f"cap must be a number in (0, {MAX_CALIBRATED_CAP}], not {self.cap!r}"
        return None


def _real(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


@dataclass(frozen=True, kw_only=True)
class ToolSpec:
    """A registered forensic tool.

    Attributes
    ----------
    name : str
        Matches ``^[a-z][a-z0-9_]{0,63}$`` (valid for OpenAI, MCP and Python alike).
    params : type of BaseModel
        The parameter model; its defaults are the only defaults.
    run : callable
        ``run(image, params, ctx) -> ToolResult``.
    summary : str
        LLM-facing description: what evidence the tool gives and when to use it.
    caveat : str
        When the tool misleads.
    score_meaning : str
        What the findings' score measures, or that they carry none.
    cost : {'cheap', 'moderate', 'expensive'}
        Rough cost class, for budgets and for the survey.
    regional : bool
        Whether the tool accepts a region (a box in original pixels) and analyses
        only that crop. Whole-file tools (metadata) set this to False.
    survey : bool
        Whether the default survey runs it on every image (and the offline analyst on
        each region it inspects). Off unless the tool asks: a tool joins the survey only
        with ``survey=True``, after the built-ins, so it never renumbers their evidence.
    aliases : tuple of str
        Lower-case words or phrases that name the tool in a question ("error level"
        for ``ela``); the name itself always counts. They are matched as substrings
        of the question, so ``"zoom"`` also matches "zoomed".
    calibrated : Calibration, optional
        Set when the score of the tool's whole-image finding is a calibrated probability
        of AI generation: the fusion then counts it, capped (see :class:`Calibration`).
        None (the default): the score is the tool's reading of its statistic and does
        not move ``p_ai``.
    """

    name: str
    params: type[BaseModel]
    run: RunFunction
    summary: str
    caveat: str
    score_meaning: str
    cost: Cost = "cheap"
    regional: bool = True
    survey: bool = False
    aliases: tuple[str, ...] = ()
    calibrated: Calibration | None = None

    @property
    def description(self) -> str:
        """The text a model sees: the summary, the caveat and the score's meaning."""
        return f"{self.summary} Caveat: {self.caveat} Score: {self.score_meaning}"


def forensic_tool(
    *,
    name: str,
    params: type[BaseModel],
    summary: str,
    caveat: str,
    score_meaning: str,
    cost: Cost = "cheap",
    regional: bool = True,
    survey: bool = False,
    aliases: tuple[str, ...] = (),
    calibrated: Calibration | None = None,
) -> Callable[[RunFunction], ToolSpec]:
    """Declare a forensic tool: decorate its ``run`` function to get a :class:`ToolSpec`.

    The spec is checked when a registry registers it (see
    :meth:`sleuth.tools.registry.ToolRegistry.register`); expose it through the
    ``sleuth.tools`` entry-point group to make it discoverable. Every argument is an
    attribute of :class:`ToolSpec`; ``calibrated=Calibration(on=...)`` makes the score of
    the tool's whole-image finding count in ``p_ai``, capped (see :class:`Calibration`).

    Examples
    --------
    >>> class Params(BaseModel):
    ...     model_config = ConfigDict(extra="forbid")
    >>> @forensic_tool(name="mean_level", params=Params, summary="Mean grey level.",
    ...                caveat="Says nothing about origin.", score_meaning="No score.")
    ... def mean_level(image, params, ctx):
    ...     return ToolResult()
    >>> mean_level.name
    'mean_level'
    """

    def wrap(run: RunFunction) -> ToolSpec:
        return ToolSpec(
            name=name,
            params=params,
            run=run,
            summary=summary,
            caveat=caveat,
            score_meaning=score_meaning,
            cost=cost,
            regional=regional,
            survey=survey,
            aliases=aliases,
            calibrated=calibrated,
        )

    return wrap
