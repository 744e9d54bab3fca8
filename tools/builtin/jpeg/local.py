"""Local quantization on the file's 8x8 grid: areas that the rest's first compression missed.

A JPEG decoded and saved again on the same grid keeps the zeros of its first, coarser
quantization: on the grid most DCT coefficients of a textured block are (near) zero, off
the grid (blocks shifted by 4 pixels) the same content has few. A region pasted in before
the last save - from a lossless image, or recompressed on another grid - only carries the
last, finer quantization on the file's grid, so there a smaller share of the coefficients
is zeroed. The share, cell by cell, is the map whose low areas become boxes.
"""

from __future__ import annotations

import numpy as np

from sleuth.tools.base import Finding
from sleuth.tools.builtin.jpeg.dct import BLOCK, KRON
from sleuth.tools.image import LoadedImage
from sleuth.tools.proposal import ScoredBox, contrast_score, degenerate_cells, propose_boxes

CELL = 2 * BLOCK
"""Cell side of the map in pixels (up to :data:`MAX_CELLS` cells): 2 x 2 blocks of the grid."""
PRIOR = 16.0
"""Coefficients added to each cell's count of off-grid non-zero coefficients: a cell with
little texture has few coefficients to zero, and its share must not swing on one or two."""
SHIFT = BLOCK // 2
"""Off-grid blocks are shifted by this many pixels on both axes."""
MAX_CELLS = 16_384
"""Most cells in a map (a 4 MP image at 16-pixel cells): a larger image gets cells of 32,
48, ... pixels, each read from the 2 x 2 blocks at its top-left corner, so a 12 MP image
costs about what a 3 MP one does."""


def cell_side(shape: tuple[int, int]) -> int:
    """Return the map's cell side in pixels for an image of ``shape`` (``(H, W)``).

    :data:`CELL` (16) up to :data:`MAX_CELLS` cells, else the smallest multiple of it
    that keeps the map within that many cells.
    """
    height, width = shape
    stride = 1
    while (height // (CELL * stride)) * (width // (CELL * stride)) > MAX_CELLS:
        stride += 1
    return CELL * stride


def zeroed_share(gray: np.ndarray, *, start: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Return, per cell, the share of off-grid non-zero coefficients zeroed on the grid.

    For the 2 x 2 blocks at the top-left corner of each cell (:func:`cell_side`: 16
    pixels, the whole cell, up to 4 MP) on the grid starting at ``start`` and the same
    blocks shifted by 4 pixels on both axes, the DCT coefficients whose magnitude rounds
    to zero are counted (as the ZERO grid search does): ``(zeros_on - zeros_off) /
    (nonzero_off + 16)``. A block quantized on the grid has many zeros there and few off
    it; content that only the last, fine quantization touched has about as many either way.

    Parameters
    ----------
    gray : ndarray of float32, shape (H, W)
        Luminance in 8-bit levels.
    start : tuple of int
        ``(x, y)`` in ``gray`` where the file's 8x8 blocks start (0-7).

    Returns
    -------
    ndarray of float64, shape (ny, nx)
        The share per cell; cell ``(i, j)`` covers the pixels from ``start + side (j, i)``
        with ``side = cell_side(gray.shape)``. Empty when the view is smaller than one
        cell plus the shift.

    References
    ----------
    .. [1] Nikoukhah, T., Anger, J., Ehret, T., Colom, M., Morel, J.-M. and
           Grompone von Gioi, R. "JPEG grid detection based on the number of DCT zeros
           and its application to automatic and localized forgery detection." CVPR
           Workshops, 2019.
    .. [2] Lin, Z., He, J., Tang, X. and Tang, C.-K. "Fast, automatic and fine-grained
           tampered JPEG image detection via DCT coefficient analysis." Pattern
           Recognition 42(11), 2009.
    """
    sx, sy = start
    height, width = gray.shape
    side = cell_side(gray.shape)
    ny, nx = (height - sy - SHIFT) // side, (width - sx - SHIFT) // side
    if ny < 1 or nx < 1:
        return np.zeros((0, 0))
    on = _zeros_per_cell(gray, sx, sy, ny, nx, side)
    off = _zeros_per_cell(gray, sx + SHIFT, sy + SHIFT, ny, nx, side)
    coefficients = 4 * BLOCK * BLOCK
    return (on - off) / (coefficients - off + PRIOR)


def _zeros_per_cell(gray: np.ndarray, x: int, y: int, ny: int, nx: int, side: int) -> np.ndarray:
    """Count coefficients rounding to zero in the 2 x 2 blocks at each cell's corner."""
    cells = gray[y : y + ny * side, x : x + nx * side].reshape(ny, side, nx, side)
    area = cells[:, :CELL, :, :CELL].reshape(ny * CELL, nx * CELL) - np.float32(128.0)
    blocks = area.reshape(2 * ny, BLOCK, 2 * nx, BLOCK).transpose(0, 2, 1, 3)
    coef = blocks.reshape(-1, BLOCK * BLOCK) @ KRON.T
    zeros = np.less(np.abs(coef, out=coef), 0.5).sum(axis=1, dtype=np.int64)
    return zeros.reshape(ny, 2, nx, 2).sum(axis=(1, 3)).astype(np.float64)


def local_quantization(
    image: LoadedImage, expected: tuple[int, int], *, top_k: int = 5
) -> tuple[list[ScoredBox], int]:
    """Box the areas where the file's grid zeroes a smaller share than elsewhere.

    Parameters
    ----------
    image : LoadedImage
        The analysed view of a JPEG file.
    expected : tuple of int
        :func:`~sleuth.tools.builtin.jpeg.grid.expected_grid` of the file, in whole-image
        pixels modulo 8.
    top_k : int
        Most boxes returned.

    Returns
    -------
    boxes : list of ScoredBox
        In the view's pixels, best first (:func:`~sleuth.tools.proposal.propose_boxes`
        on the negated share, flat and clipped cells left out).
    cells : int
        Cells in the map.
    """
    origin = image.origin
    sx, sy = (expected[0] - origin[0]) % BLOCK, (expected[1] - origin[1]) % BLOCK
    share = zeroed_share(image.gray, start=(sx, sy))
    if share.size == 0:
        return [], 0
    ny, nx = share.shape
    side = cell_side(image.gray.shape)
    if (sx, sy) == (0, 0):
        flat = image.degenerate_cells(side)[:ny, :nx]
    else:
        flat = degenerate_cells(image.gray[sy:, sx:], side)[:ny, :nx]
    size = (nx * side, ny * side)
    proposals = propose_boxes(-share, size, top_k=top_k, valid=~flat, cell=side)
    shifted = [
        ScoredBox(p.box.shift(sx, sy), p.score, p.area_fraction, p.contrast) for p in proposals
    ]
    return shifted, share.size


def local_finding(image: LoadedImage, proposals: list[ScoredBox], cells: int) -> Finding:
    """Describe the boxes of :func:`local_quantization` (unscored, neutral)."""
    boxes = [image.to_original(p.box) for p in proposals]
    where = ", ".join(str(box.as_tuple()) for box in boxes[:3])
    if proposals:
        summary = (
            f"{len(proposals)} area(s) where quantization on the file's 8x8 grid zeroes "
            f"fewer DCT coefficients than elsewhere, the strongest at {where}: content "
            "that did not share the rest's earlier compression (pasted, or recompressed "
            "on another grid) before the last save."
        )
    else:
        summary = (
            "Quantization on the file's 8x8 grid zeroes a like share of DCT coefficients "
            "across the analysed area."
        )
    return Finding(
        summary=summary,
        score=None,
        direction="neutral",
        kind="signal",
        boxes=boxes,
        box_scores=[round(p.score, 4) for p in proposals],
        metrics={
            "local_regions": len(proposals),
            "local_contrast": round(contrast_score(proposals), 4),
            "local_cells": cells,
        },
        caveats=[
            "a file saved once shows no earlier quantization to compare with, and areas "
            "of very different texture (smooth sky against foliage) change the share too",
            "a region is only told apart when the rest of the image was compressed more "
            "coarsely before the last save",
        ],
    )
