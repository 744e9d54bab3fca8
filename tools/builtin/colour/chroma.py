"""Chroma detail: how much fine detail the colour-difference planes carry next to luma."""

from __future__ import annotations

import math

import numpy as np

from sleuth.tools.proposal import block_reduce_mean

EPSILON = 0.01
"""Added to both mean differences (8-bit levels): a flat plane gives a finite ratio."""


def _detail(plane: np.ndarray) -> float:
    dx = np.abs(np.diff(plane, axis=1)).mean(dtype=np.float64)
    dy = np.abs(np.diff(plane, axis=0)).mean(dtype=np.float64)
    return float(dx + dy)


def central_window(rgb: np.ndarray, side: int) -> np.ndarray:
    """Return the central ``side`` x ``side`` window (or the whole axis when shorter).

    The window's corner sits on a multiple of 8 so that a JPEG's block grid keeps its
    phase inside it.
    """
    h, w = rgb.shape[:2]
    y0 = max(0, (h - side) // 2) // 8 * 8
    x0 = max(0, (w - side) // 2) // 8 * 8
    return rgb[y0 : y0 + side, x0 : x0 + side]


def chroma_detail(rgb: np.ndarray) -> float:
    """Log ratio of the chroma planes' fine detail to the luma plane's, at half resolution.

    The image is converted to BT.601 YCbCr and averaged over 2x2 blocks; detail is the
    mean absolute difference between horizontal and vertical neighbours. The value is
    ``log((d(Cb) + d(Cr) + 0.01) / (d(Y) + 0.01))``.

    Camera pipelines put fine detail in luminance: demosaicing interpolates colour from
    a sparse mosaic, and cameras denoise chroma harder than luma. Generators synthesise
    all three channels at full resolution and leave relatively more detail in colour.
    Measuring at half resolution removes most of what 4:2:0 chroma subsampling does to
    the ratio (a JPEG's, or a re-encode's): on a test photo, a quality-95 4:2:0 save
    lowers it by about 0.5, against 1.3 at full resolution. The rest, and coarse chroma
    quantisation, still lower it, so a JPEG's history is not wholly excluded.

    Parameters
    ----------
    rgb : ndarray of uint8, shape (H, W, 3)
        At least 4 x 4 pixels. Not modified.

    Returns
    -------
    float
        About -1 to -2 for camera photos, closer to -0.5 for many generated images; a
        greyscale image (no chroma at all) gives a large negative value.

    References
    ----------
    .. [1] McCloskey, S. and Albright, M. "Detecting GAN-generated imagery using colour
           cues." arXiv:1812.08247, 2018.
    .. [2] Li, H. et al. "Identification of deep network generated images using
           disparities in color components." Signal Processing 174, 2020.
    """
    if rgb.shape[0] < 4 or rgb.shape[1] < 4:
        raise ValueError("chroma detail needs at least 4 x 4 pixels")
    r, g, b = (rgb[..., i].astype(np.float32) for i in range(3))
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = -0.1687 * r - 0.3313 * g + 0.5 * b
    cr = 0.5 * r - 0.4187 * g - 0.0813 * b
    colour = _detail(block_reduce_mean(cb, 2)) + _detail(block_reduce_mean(cr, 2))
    return math.log((colour + EPSILON) / (_detail(block_reduce_mean(y, 2)) + EPSILON))
