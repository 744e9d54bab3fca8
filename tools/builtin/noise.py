"""``noise``: the noise residual - its level across the image and its pixel relationships."""

from __future__ import annotations

import math

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from sleuth.tools.base import Finding, ToolContext, ToolResult, forensic_tool, too_small
from sleuth.tools.image import LoadedImage
from sleuth.tools.proposal import contrast_score, propose_boxes

MAD_TO_SIGMA = 1 / 0.6745


class NoiseParams(BaseModel):
    """Parameters of :func:`noise`."""

    model_config = ConfigDict(extra="forbid")

    block: int = Field(32, ge=16, le=128, multiple_of=16, description="Cell size of the map.")
    top_k: int = Field(3, ge=1, le=10, description="Most boxes reported.")


def haar_diagonal(gray: np.ndarray) -> np.ndarray:
    """Return the diagonal detail band of a one-level Haar wavelet transform.

    Parameters
    ----------
    gray : ndarray, shape (H, W)

    Returns
    -------
    ndarray of float32, shape (H // 2, W // 2)
        ``(a - b - c + d) / 2`` over each 2x2 block: mostly noise in smooth areas.

    References
    ----------
    .. [1] Donoho, D. L. and Johnstone, I. M. "Ideal spatial adaptation by wavelet
           shrinkage." Biometrika 81(3), 1994.
    """
    h, w = gray.shape[0] // 2 * 2, gray.shape[1] // 2 * 2
    a, b = gray[0:h:2, 0:w:2], gray[0:h:2, 1:w:2]
    c, d = gray[1:h:2, 0:w:2], gray[1:h:2, 1:w:2]
    return ((a - b - c + d) * 0.5).astype(np.float32)


def noise_level_map(gray: np.ndarray, *, block: int) -> np.ndarray:
    """Estimate the noise standard deviation in each ``block x block`` cell.

    The robust MAD estimator on the Haar diagonal band, per cell: edges are sparse
    in that band, so the median keeps to the noise.

    Parameters
    ----------
    gray : ndarray, shape (H, W)
    block : int
        Cell side in pixels of ``gray`` (even).

    Returns
    -------
    ndarray of float32, shape (H // block, W // block)
        Noise sigma in 8-bit levels.

    References
    ----------
    .. [1] Donoho, D. L. and Johnstone, I. M. "Ideal spatial adaptation by wavelet
           shrinkage." Biometrika 81(3), 1994.
    .. [2] Lyu, S., Pan, X. and Zhang, X. "Exposing region splicing forgeries with
           blind local noise estimation." IJCV 110, 2014.
    """
    band = np.abs(haar_diagonal(gray))
    cell = block // 2
    h, w = band.shape[0] // cell * cell, band.shape[1] // cell * cell
    if h == 0 or w == 0:
        return np.full((1, 1), float(np.median(band)) * MAD_TO_SIGMA, np.float32)
    cells = band[:h, :w].reshape(h // cell, cell, w // cell, cell).transpose(0, 2, 1, 3)
    cells = cells.reshape(h // cell, w // cell, -1)  # a copy of our own: partitioned in place
    return (np.median(cells, axis=2, overwrite_input=True) * MAD_TO_SIGMA).astype(np.float32)


def npr_block_ratio(profiles: tuple[np.ndarray, ...]) -> float:
    """Mean |difference| inside 2x2 blocks over mean |difference| across block edges.

    NPR [1]_ is the residual ``x - up(down(x))``: each pixel's difference from its
    2x2 block's anchor. Upsampling layers (a generator's decoder, a resize) make the
    pixels of a block alike, which shrinks differences inside blocks relative to those
    across block edges. The ratio is about 1 for camera images.

    Parameters
    ----------
    profiles : tuple of ndarray
        :func:`sleuth.tools.image.difference_profiles` of the luminance: mean ``|dx|``
        per column and mean ``|dy|`` per row. Every column (row) has as many
        differences, so averaging the even (odd) entries gives the mean ``|d|`` over
        the differences inside (across) blocks.

    Returns
    -------
    float

    References
    ----------
    .. [1] Tan, C. et al. "Rethinking the up-sampling operations in CNN-based generative
           network for generalizable deepfake detection." CVPR 2024.
    """
    dx, dy = profiles[0], profiles[1]
    inside = dx[0::2].mean(dtype=np.float64) + dy[0::2].mean(dtype=np.float64)
    across = dx[1::2].mean(dtype=np.float64) + dy[1::2].mean(dtype=np.float64)
    if inside + across < 1e-6:  # no detail at all: no trace either way
        return 1.0
    return float(inside / (across + 1e-6))


def npr_deviation_log(ratio: float) -> float:
    """How far the NPR block ratio is from 1, either way, on a log scale.

    ``log(|log ratio| + 1e-4)``. Camera photos sit near ratio 1 (median about -5 on the
    development set, generated images about -4); an upsampling layer or a resize pushes
    the ratio below 1 and a 2-pixel pattern can push it above, so the sign says little
    and the size of the departure says more. Its spread is multiplicative (``|log
    ratio|`` runs from 1e-4 to about 1), hence the outer log. This is the form the fusion
    uses (``noise_npr_deviation``). An 8x8 JPEG grid falls on 2x2 block edges, so an
    earlier JPEG compression moves it too.

    Parameters
    ----------
    ratio : float
        :func:`npr_block_ratio`.

    Returns
    -------
    float
        From ``log(1e-4)`` (about -9.2, ratio exactly 1) up to about 2.6 (ratio 1e-6).
    """
    return math.log(abs(math.log(max(ratio, 1e-6))) + 1e-4)


@forensic_tool(
    name="noise",
    params=NoiseParams,
    summary="Noise residual analysis: estimates the camera-like noise level across the "
    "image and boxes areas with markedly less noise than the rest (pasted, inpainted, "
    "upsampled or generated regions); also measures neighbouring-pixel relationships "
    "(NPR) that upsampling leaves. Returns boxes, a noise-level map and an NPR map.",
    caveat="Smooth or blurred content (sky, bokeh, skin) also has little noise, and "
    "denoising by phones or editors flattens it everywhere; compare like surfaces.",
    score_meaning="How strongly the most noise-poor area departs from the rest "
    "(0 = consistent noise, towards 1 = a clearly different area).",
    cost="cheap",
    survey=True,
    aliases=("noise", "residual", "npr"),
)
def noise(image: LoadedImage, params: NoiseParams, ctx: ToolContext) -> ToolResult:
    """Map the noise level, box noise-poor areas, and measure NPR."""
    if (small := too_small(image, params.block)) is not None:
        return small
    gray = image.gray
    sigma = noise_level_map(gray, block=params.block)
    proposals = propose_boxes(
        -np.log(sigma + 0.1),
        (image.width, image.height),
        top_k=params.top_k,
        valid=~image.degenerate_cells(params.block),
        cell=params.block,
    )
    median_sigma = float(np.median(sigma))
    ratio = npr_block_ratio(image.gray_profiles)
    level = ctx.artifact(
        "level",
        sigma / (float(np.percentile(sigma, 99)) + 1e-6),
        kind="heatmap",
        description=f"Noise level per {params.block}-pixel cell (brighter = noisier).",
        source=image.region,
    )
    h, w = gray.shape[0] // 2 * 2, gray.shape[1] // 2 * 2
    residual = np.abs(gray[1:h:2, 1:w:2] - gray[0:h:2, 0:w:2])  # NPR at each block's far corner
    npr = ctx.artifact(
        "npr",
        residual / (float(np.percentile(residual[::2, ::2], 99)) + 1e-6),
        kind="map",
        description="Neighbouring-pixel-relationship residual (each 2x2 block's far corner "
        "against its anchor), at half resolution.",
        source=image.region,
    )
    score = contrast_score(proposals)
    boxes = [image.to_original(p.box) for p in proposals]
    where = ", ".join(str(box.as_tuple()) for box in boxes)
    summary = (
        f"{len(proposals)} area(s) with much less noise than the rest: {where}."
        if proposals
        else "The noise level is consistent across the analysed area."
    )
    caveats = []
    if median_sigma < 0.5:
        caveats.append("almost no noise anywhere: heavy denoising, downscaling or synthesis")
    finding = Finding(
        summary=summary,
        score=round(score, 4),
        direction="ai" if score >= 0.5 else "neutral",
        boxes=boxes,
        box_scores=[round(p.score, 4) for p in proposals],
        metrics={
            "noise_sigma": round(median_sigma, 3),
            "noise_sigma_p10": round(float(np.percentile(sigma, 10)), 3),
            "noise_sigma_p90": round(float(np.percentile(sigma, 90)), 3),
            "npr_block_ratio": round(ratio, 4),
            "npr_deviation_log": round(npr_deviation_log(ratio), 4),
            "regions": len(proposals),
        },
        artifacts=[level.name, npr.name],
        caveats=caveats,
    )
    return ToolResult(findings=[finding], artifacts=[level, npr])
