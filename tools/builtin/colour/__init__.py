"""``colour``: saturation, clipping and chroma-detail statistics of the analysed pixels."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from sleuth.tools.base import Finding, ToolContext, ToolResult, forensic_tool, too_small
from sleuth.tools.builtin.colour.chroma import central_window, chroma_detail
from sleuth.tools.image import LoadedImage


class ColourParams(BaseModel):
    """Parameters of :func:`colour`."""

    model_config = ConfigDict(extra="forbid")

    max_pixels: int = Field(
        1_000_000,
        ge=10_000,
        le=100_000_000,
        description="Cost bound: larger areas are read on a regular subsample.",
    )
    detail_side: int = Field(
        1024,
        ge=16,
        le=8192,
        description="Chroma detail is measured on the central window of this side "
        "(contiguous pixels: a subsample would alias the detail).",
    )


def saturation_statistics(rgb: np.ndarray) -> dict[str, float]:
    """Return saturation and clipping statistics of an RGB array.

    Parameters
    ----------
    rgb : ndarray of uint8, shape (H, W, 3)
        Not modified.

    Returns
    -------
    dict
        ``saturation_mean`` and ``saturation_p95`` (HSV saturation
        ``(max - min) / max``), ``saturated_share`` (saturation above 0.8),
        ``clipped_high`` (share of pixels whose brightest channel is >= 250) and
        ``clipped_low`` (share whose darkest channel is <= 5).

    References
    ----------
    .. [1] McCloskey, S. and Albright, M. "Detecting GAN-generated imagery using
           saturation cues." ICIP 2019.
    """
    # Per-channel maximum and minimum by elementwise ufuncs: the same values as a reduction
    # over the colour axis, without its slow inner loop over three elements.
    channels = (rgb[..., 0], rgb[..., 1], rgb[..., 2])
    high = np.maximum.reduce(channels).ravel().astype(np.float32)
    low = np.minimum.reduce(channels).ravel().astype(np.float32)
    saturation = (high - low) / (high + 1e-3)
    mean, share = float(saturation.mean()), float((saturation > 0.8).mean())
    return {
        "saturation_mean": mean,
        "saturation_p95": float(np.percentile(saturation, 95, overwrite_input=True)),  # last
        "saturated_share": share,
        "clipped_high": float((high >= 250).mean()),
        "clipped_low": float((low <= 5).mean()),
    }


@forensic_tool(
    name="colour",
    params=ColourParams,
    summary="Colour statistics: saturation level, the share of clipped highlights and "
    "shadows, and how much fine detail the chroma carries next to luma (chroma_detail). "
    "Camera pipelines clip and saturate differently from generators, which tend to avoid "
    "clipped pixels, favour vivid colour and leave more detail in colour.",
    caveat="Content decides much of it (a sunset, a studio shot); a weak signal that only "
    "counts through the trained fusion.",
    score_meaning="No score of its own: the metrics enter the trained fusion.",
    cost="cheap",
    survey=True,
)
def colour(image: LoadedImage, params: ColourParams, ctx: ToolContext) -> ToolResult:
    """Measure saturation and clipping on the analysed pixels."""
    del ctx  # no artifacts
    if (small := too_small(image, 8)) is not None:
        return small
    rgb = image.rgb
    step = max(1, int(np.ceil(np.sqrt(rgb.shape[0] * rgb.shape[1] / params.max_pixels))))
    stats = saturation_statistics(rgb[::step, ::step])
    stats["chroma_detail"] = chroma_detail(central_window(rgb, params.detail_side))
    summary = (
        f"Mean saturation {stats['saturation_mean']:.2f}; "
        f"{100 * stats['clipped_high']:.1f}% clipped highlights, "
        f"{100 * stats['clipped_low']:.1f}% clipped shadows; "
        f"chroma detail {stats['chroma_detail']:+.2f} (log ratio to luma)."
    )
    finding = Finding(
        summary=summary,
        metrics={k: round(v, 5) for k, v in stats.items()} | {"subsample": step},
        caveats=["a statistic for the fusion; no verdict on its own"],
    )
    return ToolResult(findings=[finding])
