"""JPEG's view of pixels: level-shifted luminance and the 8x8 block DCT.

Shared by the double-compression test (:mod:`sleuth.tools.builtin.jpeg.double_compression`)
and the grid search (:mod:`sleuth.tools.builtin.jpeg.grid`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

BLOCK = 8


def _dct_matrix() -> np.ndarray:
    n = np.arange(BLOCK)
    mat = np.sqrt(2.0 / BLOCK) * np.cos(np.pi * (2 * n[None, :] + 1) * n[:, None] / (2 * BLOCK))
    mat[0] /= np.sqrt(2.0)
    return mat


DCT = _dct_matrix()
"""Orthonormal 8-point DCT-II matrix: ``DCT @ block @ DCT.T`` is JPEG's forward DCT.

In float64, so the products are float64: the grid votes and the coefficient histograms
threshold coefficients (at 0.5, at bin edges), and float32 products put the last bits, and
so a few votes, at the mercy of the BLAS kernel and the CPU; float64 keeps the findings the
same on every machine."""
ZERO_BELOW = 0.5 - 1e-9
"""The grid vote counts a coefficient as quantized to zero when its magnitude is below
this. JPEG rounds 0.5 away from zero; decoded JPEG blocks put many coefficients at exactly
0.5 in exact arithmetic, which float64 lands a few ulps either side depending on the order
of the sums. The margin makes the count the same for every way of computing the DCT (the
grid search's separable one and :data:`KRON`'s agreed on every window of 1,024 patches
from each of 60 shared images, 3.3 million windows)."""
KRON = np.kron(DCT, DCT)
"""The same transform on row-major flattened blocks: ``coef.ravel() = KRON @ block.ravel()``
(one matrix product for many blocks, faster than batches of 8x8 products)."""


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Return JPEG's luminance ``Y = 0.299 R + 0.587 G + 0.114 B`` as float32, level-shifted.

    Parameters
    ----------
    rgb : ndarray of uint8, shape (..., 3)

    Returns
    -------
    ndarray of float32, shape (...)
        ``Y - 128``, the samples JPEG's DCT sees.

    References
    ----------
    .. [1] Hamilton, E. "JPEG File Interchange Format", version 1.02, 1992 (YCbCr).
    """
    rgb = np.asarray(rgb)
    out = rgb[..., 0].astype(np.float32) * np.float32(0.299)
    out += rgb[..., 1].astype(np.float32) * np.float32(0.587)
    out += rgb[..., 2].astype(np.float32) * np.float32(0.114)
    out -= np.float32(128.0)
    return out


def block_dct(
    blocks: np.ndarray, frequencies: Sequence[tuple[int, int]] | None = None
) -> np.ndarray:
    """Orthonormal 2-D DCT-II of 8x8 blocks (JPEG's forward transform, unquantized).

    Parameters
    ----------
    blocks : ndarray, shape (..., 8, 8)
    frequencies : sequence of tuple of int, optional
        Only these ``(u, v)`` coefficients, in this order.

    Returns
    -------
    ndarray of float32, shape (..., 8, 8) or (..., len(frequencies))
        ``[..., u, v]`` is the coefficient of vertical frequency ``u`` and horizontal
        frequency ``v``; equal to ``scipy.fft.dctn(b, type=2, norm='ortho')``.

    References
    ----------
    .. [1] Wallace, G. K. "The JPEG still picture compression standard."
           Communications of the ACM 34(4), 1991.
    """
    blocks = np.asarray(blocks, dtype=np.float32)
    lead = blocks.shape[:-2]
    flat = blocks.reshape(-1, BLOCK * BLOCK)
    if frequencies is None:
        return (flat @ KRON.T).reshape(*lead, BLOCK, BLOCK)
    rows = KRON[[u * BLOCK + v for u, v in frequencies]]
    return (flat @ rows.T).reshape(*lead, len(frequencies))
