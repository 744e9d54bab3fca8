"""Box frames: how a model writes boxes, and the one place they become original pixels.

A vision-language model sees the image resized to its input resolution and writes boxes
in a convention of its family: Qwen2.5-VL in absolute pixels of the resized input;
Qwen2-VL, Qwen3-VL and InternVL on a 0-1000 grid. :data:`FAMILIES` is the single table
of model families: their box conventions and image budgets (how vLLM serves each is in
:mod:`sleuth.servers.vllm.flags`). :class:`BoxFrame` converts boxes both ways and is
round-trip tested.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sleuth.tools import Box, ToolInputError

BoxUnits = Literal["input_pixels", "norm1000", "original_pixels"]


@dataclass(frozen=True, kw_only=True)
class ModelFamily:
    """What a family of vision-language models expects.

    Attributes
    ----------
    name : str
        Family name, also accepted as an explicit override.
    pattern : str
        Regular expression matched (case-insensitively) against a model name.
    boxes : {'input_pixels', 'norm1000'}
        How the model writes box coordinates.
    factor : int
        Input sides are multiples of this (patch size times merge size).
    min_pixels, max_pixels : int
        Bounds of the input resolution, in pixels (``max_pixels`` is also the image budget
        a served model is started with).
    """

    name: str
    pattern: str
    boxes: BoxUnits
    factor: int = 28
    min_pixels: int = 56 * 56
    max_pixels: int = 1280 * 28 * 28


FAMILIES: tuple[ModelFamily, ...] = (
    ModelFamily(
        name="qwen2.5-vl",
        pattern=r"qwen2[._]5[-_]?vl",
        boxes="input_pixels",
    ),
    ModelFamily(
        name="qwen3-vl",
        pattern=r"qwen3[-_]?vl",
        boxes="norm1000",
        factor=32,
    ),
    ModelFamily(name="qwen2-vl", pattern=r"qwen2[-_]?vl", boxes="norm1000"),
    ModelFamily(name="internvl", pattern=r"internvl", boxes="norm1000", factor=28),
)
"""Known families, most specific pattern first."""

DEFAULT_FAMILY = "qwen2.5-vl"


def match_family(model: str) -> ModelFamily | None:
    """Return the family whose name or pattern matches ``model``, or None.

    Parameters
    ----------
    model : str
        A model name (``Qwen/Qwen2.5-VL-7B-Instruct``), a local folder whose name says the
        family, or a family name.

    Returns
    -------
    ModelFamily or None
        The first match in :data:`FAMILIES`.
    """
    for family in FAMILIES:
        if model.lower() == family.name or re.search(family.pattern, model, flags=re.IGNORECASE):
            return family
    return None


def family_for(model: str, override: str | None = None) -> ModelFamily:
    """Return the family of ``model`` (or of the explicit ``override`` name).

    Unknown names fall back to :data:`DEFAULT_FAMILY`, the production model's family.

    Raises
    ------
    ToolInputError
        When ``override`` names no known family.
    """
    if override is not None:
        for family in FAMILIES:
            if family.name == override:
                return family
        known = ", ".join(f.name for f in FAMILIES)
        raise ToolInputError(f"unknown model family {override!r}; known: {known}")
    return match_family(model) or family_for("", DEFAULT_FAMILY)


def input_size(width: int, height: int, family: ModelFamily) -> tuple[int, int]:
    """Return the ``(width, height)`` a model of ``family`` sees an image at.

    Sides become multiples of ``family.factor`` with the aspect ratio kept and the pixel
    count inside ``[min_pixels, max_pixels]`` (Qwen2-VL's ``smart_resize``).

    References
    ----------
    .. [1] Wang, P. et al. "Qwen2-VL: Enhancing Vision-Language Model's Perception of the
           World at Any Resolution." arXiv:2409.12191, 2024.
    """
    f = family.factor
    h = max(f, round(height / f) * f)
    w = max(f, round(width / f) * f)
    if h * w > family.max_pixels:
        beta = math.sqrt((height * width) / family.max_pixels)
        h = max(f, math.floor(height / beta / f) * f)
        w = max(f, math.floor(width / beta / f) * f)
    elif h * w < family.min_pixels:
        beta = math.sqrt(family.min_pixels / (height * width))
        h = math.ceil(height * beta / f) * f
        w = math.ceil(width * beta / f) * f
    return (w, h)


@dataclass(frozen=True, kw_only=True)
class BoxFrame:
    """The coordinate frame a model writes boxes in, for one image.

    Attributes
    ----------
    width, height : int
        The original image's size.
    units : {'input_pixels', 'norm1000', 'original_pixels'}
        The convention.
    extent : tuple of int
        Largest x and y a box may reach in this frame.
    """

    width: int
    height: int
    units: BoxUnits
    extent: tuple[int, int]

    @classmethod
    def for_model(cls, width: int, height: int, family: ModelFamily) -> BoxFrame:
        """Return the frame a model of ``family`` uses on a ``width x height`` image."""
        if family.boxes == "norm1000":
            return cls(width=width, height=height, units="norm1000", extent=(1000, 1000))
        return cls(
            width=width,
            height=height,
            units="input_pixels",
            extent=input_size(width, height, family),
        )

    @classmethod
    def original(cls, width: int, height: int) -> BoxFrame:
        """Return the identity frame (boxes already in original pixels)."""
        return cls(width=width, height=height, units="original_pixels", extent=(width, height))

    def describe(self) -> str:
        """Say in words what the frame is, for a prompt."""
        w, h = self.extent
        if self.units == "norm1000":
            return "coordinates normalised to 0-1000 on both axes (0,0 is the top-left corner)"
        return f"pixel coordinates of the {w}x{h} image (0,0 is the top-left corner)"

    def to_original(self, coords: Sequence[float]) -> Box:
        """Convert ``[x0, y0, x1, y1]`` in this frame to a box in original pixels.

        The box is widened outwards to whole original pixels, so it always covers what
        the model pointed at.

        Raises
        ------
        ToolInputError
            When ``coords`` is not four numbers, is empty, or lies outside the frame;
            the message states the frame's extent so a model can correct itself.
        """
        ex, ey = self.extent
        hint = f"write [x0, y0, x1, y1] with 0 <= x0 < x1 <= {ex} and 0 <= y0 < y1 <= {ey}"
        if isinstance(coords, (str, bytes)) or not isinstance(coords, Sequence):
            raise ToolInputError(f"box must be a list of four numbers; {hint}")
        if len(coords) != 4 or not all(
            isinstance(c, (int, float)) and not isinstance(c, bool) and math.isfinite(c)
            for c in coords
        ):
            raise ToolInputError(f"box {list(coords)!r} is not four numbers; {hint}")
        x0, y0, x1, y1 = (float(c) for c in coords)
        if not (0 <= x0 < x1 <= ex and 0 <= y0 < y1 <= ey):
            raise ToolInputError(f"box {[x0, y0, x1, y1]!r} is outside the image; {hint}")
        sx, sy = self.width / ex, self.height / ey
        return Box(
            x0=max(0, math.floor(x0 * sx + 1e-9)),
            y0=max(0, math.floor(y0 * sy + 1e-9)),
            x1=min(self.width, max(math.ceil(x1 * sx - 1e-9), math.floor(x0 * sx + 1e-9) + 1)),
            y1=min(self.height, max(math.ceil(y1 * sy - 1e-9), math.floor(y0 * sy + 1e-9) + 1)),
        )

    def from_original(self, box: Box) -> list[int]:
        """Convert a box in original pixels to ``[x0, y0, x1, y1]`` in this frame.

        Rounded outwards, so converting back covers at least the same pixels.
        """
        ex, ey = self.extent
        sx, sy = ex / self.width, ey / self.height
        return [
            math.floor(box.x0 * sx),
            math.floor(box.y0 * sy),
            min(ex, math.ceil(box.x1 * sx)),
            min(ey, math.ceil(box.y1 * sy)),
        ]
