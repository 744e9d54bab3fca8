"""``zoom``: a close-up of a region, resized for a vision-language model."""

from __future__ import annotations

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from sleuth.tools.base import Finding, ToolContext, ToolResult, forensic_tool
from sleuth.tools.box import Box
from sleuth.tools.image import LoadedImage


class ZoomParams(BaseModel):
    """Parameters of :func:`zoom`."""

    model_config = ConfigDict(extra="forbid")

    target: int = Field(672, ge=64, le=2048, description="Long side of the crop, in pixels.")
    margin: float = Field(
        0.15, ge=0.0, le=1.0, description="Context added on each side, as a share of the box."
    )
    max_scale: float = Field(
        8.0, ge=1.0, le=16.0, description="Largest enlargement; smaller boxes stay smaller."
    )


def zoom_crop(
    rgb: np.ndarray, box: Box, *, target: int, max_scale: float = 8.0
) -> tuple[np.ndarray, float]:
    """Crop ``box`` from ``rgb`` and resize it (Lanczos) so its long side is ``target``.

    Parameters
    ----------
    rgb : ndarray of uint8, shape (H, W, 3)
        The whole image.
    box : Box
        Region to crop, inside ``rgb``.
    target : int
        Long side of the output, in pixels.
    max_scale : float
        Enlargement cap: interpolation invents no detail, so past this the crop is
        returned smaller than ``target``.

    Returns
    -------
    crop : ndarray of uint8, shape (h, w, 3)
        A new array.
    scale : float
        Output pixels per original pixel (the same on both axes up to rounding; the
        exact mapping is ``box`` to ``crop.shape``).

    References
    ----------
    .. [1] Duchon, C. E. "Lanczos filtering in one and two dimensions."
           Journal of Applied Meteorology 18(8), 1979.
    .. [2] Wang, J. et al. "ZoomIn: multi-step zoom for AI-generated image detection."
           (crop-and-zoom as evidence for a VLM.)
    """
    scale = min(target / max(box.width, box.height), max_scale)
    out_w = max(1, round(box.width * scale))
    out_h = max(1, round(box.height * scale))
    patch = Image.fromarray(np.ascontiguousarray(rgb[box.y0 : box.y1, box.x0 : box.x1]))
    if (out_w, out_h) != patch.size:
        patch = patch.resize((out_w, out_h), Image.Resampling.LANCZOS)
    return np.asarray(patch).copy(), scale


@forensic_tool(
    name="zoom",
    params=ZoomParams,
    summary="Crop a region (with some context around it) and enlarge it so fine detail "
    "- hands, text, textures, edges - can be inspected. Returns the crop as an image and "
    "its exact mapping back to original pixels.",
    caveat="A view, not a test: enlargement interpolates and cannot reveal detail the "
    "image does not have.",
    score_meaning="No score; the finding records the region and the enlargement.",
    cost="cheap",
    survey=False,
    aliases=("zoom", "close-up", "closer look", "enlarge", "look at"),
)
def zoom(image: LoadedImage, params: ZoomParams, ctx: ToolContext) -> ToolResult:
    """Zoom into the analysed region (the whole image when no region is given)."""
    region = image.region
    source = region.expand(params.margin, *image.size)
    crop, scale = zoom_crop(image.full, source, target=params.target, max_scale=params.max_scale)
    art = ctx.artifact(
        "crop",
        crop,
        kind="crop",
        description=f"Region {source.as_tuple()} enlarged x{scale:.2f}.",
        source=source,
    )
    caveats = []
    if scale >= params.max_scale and max(source.width, source.height) * scale < params.target:
        caveats.append(f"the region is small: enlargement capped at x{params.max_scale:g}")
    finding = Finding(
        summary=f"Zoomed region {region.as_tuple()} (with context {source.as_tuple()}) "
        f"to {art.width}x{art.height} pixels, x{scale:.2f}.",
        kind="observation",
        boxes=[region],
        metrics={"scale": round(scale, 4), "width": art.width, "height": art.height},
        artifacts=[art.name],
        caveats=caveats,
    )
    return ToolResult(findings=[finding], artifacts=[art])
