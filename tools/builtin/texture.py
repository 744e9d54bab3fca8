"""``texture``: residual contrast between rich- and poor-texture patches (PatchCraft)."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy import ndimage

from sleuth.tools.base import Finding, ToolContext, ToolResult, forensic_tool, too_small
from sleuth.tools.builtin.noise import noise_level_map
from sleuth.tools.image import LoadedImage
from sleuth.tools.proposal import block_reduce_mean, propose_boxes

EPS = 1e-3


class TextureParams(BaseModel):
    """Parameters of :func:`texture`."""

    model_config = ConfigDict(extra="forbid")

    patch: int = Field(32, ge=16, le=128, multiple_of=8, description="Patch side in pixels.")
    share: float = Field(
        0.33, gt=0.05, le=0.5, description="Share of patches counted as rich (and as poor)."
    )
    cell: int = Field(
        16, ge=8, le=64, multiple_of=8, description="Cell size of the map the boxes come from."
    )
    top_k: int = Field(3, ge=1, le=10, description="Most boxes reported.")
    max_patches: int = Field(
        4096,
        ge=64,
        le=1_000_000,
        description="Cost bound: when the image has more whole patches, a regular lattice "
        "of them is read (every n-th patch across and down).",
    )


def lattice_stride(rows: int, cols: int, max_patches: int) -> int:
    """Return the smallest patch stride that keeps a ``rows x cols`` grid within a bound.

    Parameters
    ----------
    rows, cols : int
        Whole patches down and across.
    max_patches : int
        Most patches read.

    Returns
    -------
    int
        ``n >= 1`` such that every ``n``-th patch across and down, starting from the
        top-left one, gives at most ``max_patches`` patches.
    """
    stride = max(1, int(np.ceil(np.sqrt(rows * cols / max_patches))))
    while -(-rows // stride) * -(-cols // stride) > max_patches:
        stride += 1
    return stride


def patch_texture(
    gray: np.ndarray, *, patch: int, stride: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Return each sampled patch's texture richness and its high-pass residual level.

    The image is cut into whole ``patch x patch`` patches and every ``stride``-th patch
    across and down is read, from the top-left one: a deterministic, evenly spread
    sample whose cost does not grow with the image beyond the bound that chose
    ``stride``. Like PatchCraft [1]_, which ranks a sample of patches by the texture
    diversity measured inside each, both figures are computed inside each patch alone
    (differences stop at the patch's edge, the 3x3 mean reflects at it), so a patch's
    figures do not depend on which other patches are read.

    Parameters
    ----------
    gray : ndarray, shape (H, W)
        Luminance in 8-bit levels; not modified.
    patch : int
        Patch side; the image is cut to whole patches.
    stride : int
        Read every ``stride``-th patch across and down (1: every patch).

    Returns
    -------
    richness : ndarray of float64, shape (ceil(H // patch / stride), ceil(W // patch / stride))
        Mean absolute difference between horizontal and vertical neighbours inside the
        patch: how much texture it has (PatchCraft's diversity, on two directions).
        Cell ``(i, j)`` is the patch whose top-left pixel is
        ``(j * stride * patch, i * stride * patch)`` as ``(x, y)``.
    residual : ndarray of float64, same shape
        Root mean square of ``gray - mean3x3(gray)`` inside the patch: the fine
        high-frequency energy that cameras keep (sensor noise) and generators
        reproduce unevenly.

    References
    ----------
    .. [1] Zhong, N. et al. "PatchCraft: Exploring texture patch for efficient
           AI-generated image detection." arXiv:2311.12397, 2023.
    """
    rows, cols = gray.shape[0] // patch, gray.shape[1] // patch
    grid = gray[: rows * patch, : cols * patch].reshape(rows, patch, cols, patch)
    # (rows', cols', patch, patch): a float32 copy of the sampled patches only.
    patches = grid[::stride, :, ::stride, :].transpose(0, 2, 1, 3).astype(np.float32)
    dx = np.abs(np.diff(patches, axis=3, append=patches[..., -1:]))
    dy = np.abs(np.diff(patches, axis=2, append=patches[..., -1:, :]))
    high = patches - ndimage.uniform_filter(patches, size=(1, 1, 3, 3), mode="reflect")
    richness = (dx + dy).mean(axis=(2, 3), dtype=np.float64)
    return richness, np.sqrt((high * high).mean(axis=(2, 3), dtype=np.float64))


def cleanness_map(gray: np.ndarray, *, cell: int) -> np.ndarray:
    """Return, per ``cell x cell`` cell, how clean its finest scale is for its detail.

    The detail one octave down (mean absolute difference between neighbours of the
    image's 2x2 means) over the fine residual (the noise level of
    :func:`~sleuth.tools.builtin.noise.noise_level_map`), on a log scale. Camera detail
    carries fine-scale energy in proportion to its coarser detail; an area that was
    upsampled, denoised or generated smooth keeps its coarse detail and loses the finest
    octave, so its cleanness rises. Flat cells have neither and their ratio is noise:
    mask them (:func:`~sleuth.tools.proposal.degenerate_cells`).

    Parameters
    ----------
    gray : ndarray, shape (H, W)
        Luminance in 8-bit levels.
    cell : int
        Cell side in pixels (a multiple of 4).

    Returns
    -------
    ndarray of float64, shape (H // cell, W // cell)
        ``log(detail + 1) - log(fine + 0.1)``, both in 8-bit levels.
    """
    fine = noise_level_map(gray, block=cell)
    half = block_reduce_mean(gray, 2)
    dx = np.abs(np.diff(half, axis=1, append=half[:, -1:]))
    dy = np.abs(np.diff(half, axis=0, append=half[-1:, :]))
    detail = block_reduce_mean(dx + dy, cell // 2)
    h, w = min(fine.shape[0], detail.shape[0]), min(fine.shape[1], detail.shape[1])
    return np.log(detail[:h, :w] + 1.0) - np.log(fine[:h, :w].astype(np.float64) + 0.1)


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
    survey=True,
)
def texture(image: LoadedImage, params: TextureParams, ctx: ToolContext) -> ToolResult:
    """Measure rich/poor texture contrast and box unusually clean textured areas."""
    del ctx  # no artifacts
    if (small := too_small(image, 2 * params.patch)) is not None:
        return small
    rows, cols = image.height // params.patch, image.width // params.patch
    stride = lattice_stride(rows, cols, params.max_patches)
    richness, residual = patch_texture(image.gray, patch=params.patch, stride=stride)
    stats = texture_contrast(richness, residual, share=params.share)
    gray = image.gray
    cleanness = cleanness_map(gray, cell=params.cell)
    valid = ~image.degenerate_cells(params.cell)
    proposals = propose_boxes(
        cleanness,
        (image.width, image.height),
        top_k=params.top_k,
        valid=valid[: cleanness.shape[0], : cleanness.shape[1]],
        cell=params.cell,
    )
    boxes = [image.to_original(p.box) for p in proposals]
    where = ", ".join(str(box.as_tuple()) for box in boxes)
    summary = (
        f"Rich-texture patches carry {np.exp(stats['contrast']):.1f}x the fine residual of "
        f"poor-texture patches; {len(proposals)} area(s) much cleaner than their texture"
        + (f": {where}." if proposals else ".")
    )
    metrics: dict[str, float | int] = {k: round(v, 4) for k, v in stats.items()}
    metrics["patches"] = int(richness.size)
    metrics["patch_stride"] = stride
    finding = Finding(
        summary=summary,
        boxes=boxes,
        box_scores=[round(p.score, 4) for p in proposals],
        metrics=metrics,
        caveats=["a statistic for the fusion; no verdict on its own"],
    )
    return ToolResult(findings=[finding])
