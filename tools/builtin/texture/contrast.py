"""``texture``: residual contrast between rich- and poor-texture patches (PatchCraft)."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy import ndimage

from sleuth.tools.base import Finding, ToolContext, ToolResult, forensic_tool, too_small
from sleuth.tools.image import LoadedImage
from sleuth.tools.proposal import propose_boxes

EPS = 1e-3


class TextureParams(BaseModel):
    """Parameters of :func:`texture`."""

    model_config = ConfigDict(extra="forbid")

    patch: int = Field(32, ge=16, le=128, multiple_of=8, description="Patch side in pixels.")
    share: float = Field(
        0.33, gt=0.05, le=0.5, description="Share of patches counted as rich (and as poor)."
    )
    top_k: int = Field(3, ge=1, le=10, description="Most boxes reported.")


def patch_texture(gray: np.ndarray, *, patch: int) -> tuple[np.ndarray, np.ndarray]:
    """Return each patch's texture richness and its high-pass residual level.

    Parameters
    ----------
    gray : ndarray, shape (H, W)
        Luminance in 8-bit levels; not modified.
    patch : int
        Patch side; the image is cut to whole patches.

    Returns
    -------
    richness : ndarray of float64, shape (H // patch, W // patch)
        Mean absolute difference between horizontal and vertical neighbours: how much
        texture the patch has (PatchCraft's diversity, on two directions).
    residual : ndarray of float64, same shape
        Root mean square of ``gray - mean3x3(gray)``: the fine high-frequency energy
        that cameras keep (sensor noise) and generators reproduce unevenly.

    References
    ----------
    .. [1] Zhong, N. et al. "PatchCraft: Exploring texture patch for efficient
           AI-generated image detection." arXiv:2311.12397, 2023.
    """
    h, w = gray.shape[0] // patch * patch, gray.shape[1] // patch * patch
    area = gray[:h, :w].astype(np.float32)
    dx = np.abs(np.diff(area, axis=1, append=area[:, -1:]))
    dy = np.abs(np.diff(area, axis=0, append=area[-1:, :]))
    high = area - ndimage.uniform_filter(area, 3, mode="reflect")

    def cells(values: np.ndarray) -> np.ndarray:
        return values.reshape(h // patch, patch, w // patch, patch).mean(
            axis=(1, 3), dtype=np.float64
        )

    return cells(dx + dy), np.sqrt(cells(high * high))


def texture_contrast(
    richness: np.ndarray, residual: np.ndarray, *, share: float
) -> dict[str, float]:
    """Summarise residual levels of the richest and poorest patches.

    Parameters
    ----------
    richness, residual : ndarray
        From :func:`patch_texture`.
    share : float
        Share of patches in each of the rich and poor groups.

    Returns
    -------
    dict
        ``poor_residual`` and ``rich_residual`` (log of the groups' median residual),
        ``contrast`` (their difference), ``poor_smoothness`` and ``rich_smoothness``
        (log residual over log richness per group: how clean a patch is for its texture).
    """
    order = np.argsort(richness.ravel(), kind="stable")
    k = max(1, int(round(order.size * share)))
    flat_res, flat_rich = residual.ravel(), richness.ravel()
    poor, rich = order[:k], order[-k:]
    poor_res = float(np.log(np.median(flat_res[poor]) + EPS))
    rich_res = float(np.log(np.median(flat_res[rich]) + EPS))
    return {
        "poor_residual": poor_res,
        "rich_residual": rich_res,
        "contrast": rich_res - poor_res,
        "poor_smoothness": poor_res - float(np.log(np.median(flat_rich[poor]) + EPS)),
        "rich_smoothness": rich_res - float(np.log(np.median(flat_rich[rich]) + EPS)),
    }


@forensic_tool(
    name="texture",
    params=TextureParams,
    summary="Texture contrast (PatchCraft): compares the fine residual of texture-rich and "
    "texture-poor patches. Generators reproduce rich texture and flat areas with a "
    "different balance of fine detail than cameras; boxes areas that are much cleaner "
    "than their texture suggests.",
    caveat="Denoising, heavy JPEG compression and downscaling also change the balance; "
    "the figures are calibrated only through the fusion, not on their own.",
    score_meaning="No score of its own: the metrics enter the trained fusion.",
    cost="cheap",
)
def texture(image: LoadedImage, params: TextureParams, ctx: ToolContext) -> ToolResult:
    """Measure rich/poor texture contrast and box unusually clean textured areas."""
    del ctx  # no artifacts
    if (small := too_small(image, 2 * params.patch)) is not None:
        return small
    richness, residual = patch_texture(image.gray, patch=params.patch)
    stats = texture_contrast(richness, residual, share=params.share)
    cleanness = np.log(richness + 1.0) - np.log(residual + 0.1)
    proposals = propose_boxes(
        cleanness, (image.width, image.height), top_k=params.top_k, cell=params.patch
    )
    where = ", ".join(str(p.box.as_tuple()) for p in proposals)
    summary = (
        f"Rich-texture patches carry {np.exp(stats['contrast']):.1f}x the fine residual of "
        f"poor-texture patches; {len(proposals)} area(s) much cleaner than their texture"
        + (f": {where}." if proposals else ".")
    )
    metrics: dict[str, float | int] = {k: round(v, 4) for k, v in stats.items()}
    metrics["patches"] = int(richness.size)
    finding = Finding(
        summary=summary,
        boxes=[image.to_original(p.box) for p in proposals],
        metrics=metrics,
        caveats=["a statistic for the fusion; no verdict on its own"],
    )
    return ToolResult(findings=[finding])
