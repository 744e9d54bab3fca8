"""``ela``: error level analysis - where a JPEG re-save changes the image more or less."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageChops
from pydantic import BaseModel, ConfigDict, Field

from sleuth.tools.base import Finding, ToolContext, ToolResult, forensic_tool, too_small
from sleuth.tools.image import LoadedImage
from sleuth.tools.proposal import block_reduce_mean, contrast_score, propose_boxes

JPEG_BLOCK = 8
MIN_SPREAD = 0.4
"""Smallest spread of cell error levels (8-bit levels) treated as structure, not rounding."""


class ElaParams(BaseModel):
    """Parameters of :func:`ela`."""

    model_config = ConfigDict(extra="forbid")

    quality: int = Field(90, ge=50, le=99, description="JPEG quality of the re-save.")
    block: int = Field(16, ge=8, le=64, multiple_of=8, description="Cell size of the map.")
    top_k: int = Field(3, ge=1, le=10, description="Most boxes reported.")


def error_level(
    rgb: np.ndarray, *, quality: int = 90, offset: tuple[int, int] = (0, 0)
) -> np.ndarray:
    """Return the per-pixel error level of re-saving ``rgb`` as a JPEG.

    Parameters
    ----------
    rgb : ndarray of uint8, shape (H, W, 3)
        Pixels to analyse; not modified.
    quality : int
        Quality of the re-save.
    offset : tuple of int
        ``(x, y)`` of ``rgb``'s top-left pixel in the whole image. The re-save is
        aligned to the whole image's 8x8 grid (the array is edge-padded by
        ``offset % 8``), so a crop gives the same levels as the whole image.

    Returns
    -------
    ndarray of uint8, shape (H, W)
        Absolute difference per channel, combined with luma weights (BT.601), in
        8-bit levels.

    References
    ----------
    .. [1] Krawetz, N. "A Picture's Worth: Digital Image Analysis and Forensics."
           Black Hat, 2007.
    .. [2] Wang, W., Dong, J. and Tan, T. "Tampered region localization of digital
           color images based on JPEG compression noise." IWDW 2010.
    """
    px, py = offset[0] % JPEG_BLOCK, offset[1] % JPEG_BLOCK
    padded = np.pad(rgb, ((py, 0), (px, 0), (0, 0)), mode="edge") if px or py else rgb
    source = Image.fromarray(np.ascontiguousarray(padded))
    buf = io.BytesIO()
    source.save(buf, format="JPEG", quality=quality)
    with Image.open(buf) as resaved:
        resaved.load()  # an RGB JPEG decodes to RGB; convert() would only copy it
        decoded = resaved if resaved.mode == "RGB" else resaved.convert("RGB")
        levels = ImageChops.difference(source, decoded).convert("L")
    return np.asarray(levels)[py:, px:]


@forensic_tool(
    name="ela",
    params=ElaParams,
    summary="Error level analysis: re-saves the image as JPEG and maps how much each area "
    "changes. Areas that change much more or less than the rest had a different "
    "compression history - pasted, inpainted or regenerated content. Returns boxes on "
    "the areas that stand out and a heatmap.",
    caveat="Edges and fine texture always show higher error; compare like with like. "
    "Weak on files that were never JPEG or were re-saved many times.",
    score_meaning="How strongly the most outstanding area differs from the rest "
    "(0 = uniform, towards 1 = a sharply different area); local editing, not AI by itself.",
    cost="moderate",
    survey=True,
    aliases=("ela", "error level", "compression level"),
)
def ela(image: LoadedImage, params: ElaParams, ctx: ToolContext) -> ToolResult:
    """Map error levels, box the areas that stand out, and save an amplified heatmap."""
    if (small := too_small(image, params.block)) is not None:
        return small
    levels = error_level(image.rgb, quality=params.quality, offset=image.origin)
    proposals = propose_boxes(
        block_reduce_mean(levels, params.block),
        (image.width, image.height),
        top_k=params.top_k,
        valid=~image.degenerate_cells(params.block),
        two_sided=True,
        cell=params.block,
        min_spread=MIN_SPREAD,
    )
    sample = levels[::4, ::4]  # percentiles of a regular subsample: same figures, 16x cheaper
    scale = max(1.0, float(np.percentile(sample, 99.5)))
    amplify = np.minimum(np.arange(256) * (255.0 / scale), 255).astype(np.uint8)
    art = ctx.artifact(
        "heatmap",
        np.take(amplify, levels),
        kind="heatmap",
        description=f"Error levels after a quality-{params.quality} re-save, amplified "
        f"x{255 / scale:.1f}.",
        source=image.region,
    )
    caveats = []
    score = contrast_score(proposals)
    if not image.is_jpeg:
        score *= 0.5
        caveats.append(
            f"the file is {image.format}, not a JPEG: error levels mostly follow texture, "
            "so the score is halved"
        )
    boxes = [image.to_original(p.box) for p in proposals]
    where = ", ".join(str(box.as_tuple()) for box in boxes[:3])
    summary = (
        f"{len(proposals)} area(s) with a different error level than the rest, the "
        f"strongest at {where}."
        if proposals
        else "Error levels are consistent across the analysed area."
    )
    finding = Finding(
        summary=summary,
        score=round(score, 4),
        direction="ai" if score >= 0.5 else "neutral",
        boxes=boxes,
        box_scores=[round(p.score, 4) for p in proposals],
        metrics={
            "quality": params.quality,
            "mean_level": round(float(levels.mean(dtype=np.float64)), 3),
            "p99_level": round(float(np.percentile(sample, 99)), 3),
            "regions": len(proposals),
        },
        artifacts=[art.name],
        caveats=caveats,
    )
    return ToolResult(findings=[finding], artifacts=[art])
