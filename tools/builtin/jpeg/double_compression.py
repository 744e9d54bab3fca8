"""Double quantization: traces of an earlier, coarser JPEG compression in the DCT histograms."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sleuth.tools.base import Finding, MetricValue
from sleuth.tools.builtin.jpeg.dct import BLOCK, block_dct, luminance
from sleuth.tools.builtin.jpeg.tables import IJG_LUMA_TABLES, QualityFit

DQ_FREQUENCIES = ((0, 1), (1, 0), (1, 1), (0, 2), (2, 0), (1, 2), (2, 1), (2, 2), (0, 3), (3, 0))
"""Low-frequency AC positions ``(row, col)`` whose histograms the double-quantization test reads."""
MIN_DQ_BLOCKS = 256
"""Fewest 8x8 blocks (about 128x128 pixels) for the double-quantization test."""
MIN_DQ_NONZERO = 100
"""Fewest non-zero coefficients for a frequency's histogram to be read."""
MAX_FIRST_STEP = 96
"""Largest first-compression step searched."""


@dataclass(frozen=True)
class DoubleQuantization:
    """Result of :func:`double_quantization`.

    Attributes
    ----------
    score : float or None
        Median over informative frequencies of the relative improvement in histogram
        fit a double-quantization model brings over a single one, in [0, 1]; None when
        too few textured blocks.
    per_frequency : dict
        ``(u, v) -> (q2, q1_estimate, improvement)``.
    primary_quality : int or None
        IJG quality of the estimated first tables (from frequencies that improve by more
        than 0.3); None when fewer than three do.
    blocks : int
        Blocks analysed.
    subsampled : bool
        Whether block rows were skipped to respect the block budget.
    """

    score: float | None
    per_frequency: dict[tuple[int, int], tuple[int, int, float]]
    primary_quality: int | None
    blocks: int
    subsampled: bool


def _aligned_and_shifted(
    rgb: np.ndarray, start: tuple[int, int], max_blocks: int
) -> tuple[np.ndarray, np.ndarray, bool] | None:
    """Blocks on the grid starting at ``start`` and the same blocks shifted by (4, 4)."""
    sx, sy = start
    height, width = rgb.shape[:2]
    nby = (height - sy - BLOCK // 2) // BLOCK
    nbx = (width - sx - BLOCK // 2) // BLOCK
    if nby < 1 or nbx < 1:
        return None
    step = max(1, math.ceil(nby * nbx / max_blocks))
    rows = np.arange(0, nby, step)
    span = BLOCK + BLOCK // 2
    idx = sy + BLOCK * rows[:, None] + np.arange(span)[None, :]
    strips = luminance(rgb[idx, sx : sx + BLOCK * nbx + BLOCK // 2])  # (R, 12, W')
    n_rows = len(rows)

    def cut(dy: int, dx: int) -> np.ndarray:
        part = strips[:, dy : dy + BLOCK, dx : dx + BLOCK * nbx]
        return part.reshape(n_rows, BLOCK, nbx, BLOCK).transpose(0, 2, 1, 3).reshape(-1, 8, 8)

    half = BLOCK // 2
    return cut(0, 0), cut(half, half), step > 1


def _folded_hist(k: np.ndarray, kmax: int) -> np.ndarray:
    """Normalised histogram of ``|k|`` over ``0..kmax`` plus an overflow bin, per row."""
    k = np.minimum(np.abs(k), kmax + 1).astype(np.int64)
    offsets = (np.arange(k.shape[0]) * (kmax + 2))[:, None]
    counts = np.bincount((k + offsets).ravel(), minlength=k.shape[0] * (kmax + 2))
    counts = counts.reshape(k.shape[0], kmax + 2).astype(np.float64)
    return counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)


def _double_hist(calib: np.ndarray, q1s: np.ndarray, q2: int, kmax: int) -> np.ndarray:
    """Return ``_folded_hist(rint(rint(calib / q1) * q1 / q2))`` for each ``q1`` of ``q1s``.

    The second quantization only depends on the first one's bin ``m = rint(calib / q1)``,
    so the first bins are counted (:func:`_bin_counts`), and each distinct ``m`` is
    quantized again once: the same counts as quantizing every coefficient twice.
    """
    ordered = np.sort(calib)
    histograms = []
    for q1 in q1s.tolist():
        low, first = _bin_counts(ordered, q1)
        k = np.rint(np.arange(low, low + first.size, dtype=np.float64) * q1 / q2)
        k = np.minimum(np.abs(k), kmax + 1).astype(np.int64)
        histograms.append(np.bincount(k, weights=first, minlength=kmax + 2))
    counts = np.stack(histograms)
    return counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)


def _bin_counts(ordered: np.ndarray, q: int) -> tuple[int, np.ndarray]:
    """Count sorted values per bin ``rint(value / q)``; return the lowest bin and the counts.

    ``rint(value / q)`` never decreases along sorted values, so bin ``m`` starts at the
    first value that reaches ``m``: found by bisection at ``(m - 0.5) q``. Only values
    within a relative 1e-9 of that edge, where rounding (and ``rint``'s ties to even)
    decides, are quantized to place the edge exactly.
    """
    low = int(np.rint(ordered[0] / q))
    high = int(np.rint(ordered[-1] / q))
    bins = np.arange(low + 1, high + 1, dtype=np.float64)
    edge = (bins - 0.5) * q
    margin = 1e-9 * np.maximum(np.abs(edge), 1.0)
    lo = np.searchsorted(ordered, edge - margin, side="left")
    hi = np.searchsorted(ordered, edge + margin, side="right")
    starts = lo.copy()
    for i in np.flatnonzero(hi > lo):  # values at an edge: quantize them
        starts[i] += int(np.count_nonzero(np.rint(ordered[lo[i] : hi[i]] / q) < bins[i]))
    bounds = np.concatenate([[0], starts, [ordered.size]])
    return low, np.diff(bounds).astype(np.float64)


def _nonzero_distance(h: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Return L1 distances between the renormalised ``|k| >= 1`` parts of ``h`` and each ``g``."""
    a = h[1:] / max(float(h[1:].sum()), 1e-12)
    b = g[:, 1:] / np.maximum(g[:, 1:].sum(axis=1, keepdims=True), 1e-12)
    return np.abs(a[None, :] - b).sum(axis=1)


def double_quantization(
    rgb: np.ndarray,
    table: np.ndarray,
    *,
    start: tuple[int, int] = (0, 0),
    max_blocks: int = 20_000,
    frequencies: Sequence[tuple[int, int]] = DQ_FREQUENCIES,
) -> DoubleQuantization:
    """Test the luminance DCT histograms for the traces of two JPEG quantizations.

    For each frequency, the decoded blocks' coefficients divided by the file's step
    ``q2`` give integer bins ``k``. A calibrated estimate of the coefficients before any
    quantization comes from blocks shifted by 4 pixels (off the grid). Quantizing that
    estimate once with ``q2`` predicts the histogram of a single compression; quantizing
    it with a coarser ``q1 > q2`` then ``q2`` predicts a double one. The improvement of
    the best ``q1`` over single quantization, ``1 - d(best) / d(single)``, is near 0 for
    a single compression and large when the first quantization left periodic empty bins
    and peaks. ``d`` is the L1 distance between the histograms of ``|k| >= 1``, each
    renormalised: the share of zeros is left out because blocking in the shifted blocks
    biases it, and a finer first step (``q1 < q2``) is not searched because it mostly
    fits that bias.

    Parameters
    ----------
    rgb : ndarray of uint8, shape (H, W, 3)
        Decoded pixels.
    table : ndarray, shape (8, 8)
        The file's luminance quantization table (natural order).
    start : tuple of int
        ``(x, y)`` in ``rgb`` where the JPEG blocks start (0-7).
    max_blocks : int
        Block budget; block rows are skipped evenly beyond it.
    frequencies : sequence of tuple of int
        AC positions ``(u, v)`` tested.

    Returns
    -------
    DoubleQuantization

    Notes
    -----
    Works on decoded pixels (no entropy decoding): rounding to 8 bits and the colour
    conversion blur the integer lattice by about 0.35 of a coefficient, so at quality
    95-100 (steps of 1-2) the test loses power. A first compression *finer* than the
    second (q1 > q2) leaves weak traces and is usually missed.

    References
    ----------
    .. [1] Lukáš, J. and Fridrich, J. "Estimation of primary quantization matrix in
           double compressed JPEG images." Digital Forensic Research Workshop, 2003.
    .. [2] Popescu, A. C. and Farid, H. "Statistical tools for digital forensics."
           Information Hiding, LNCS 3200, 2004.
    .. [3] Fridrich, J., Goljan, M. and Hogea, D. "Steganalysis of JPEG images:
           breaking the F5 algorithm." Information Hiding, 2002 (calibration by cropping).
    """
    cut = _aligned_and_shifted(rgb, start, max_blocks)
    if cut is None or len(cut[0]) < MIN_DQ_BLOCKS:
        return DoubleQuantization(None, {}, None, 0 if cut is None else len(cut[0]), False)
    aligned, shifted, subsampled = cut
    coef_a = block_dct(aligned, frequencies)
    coef_s = block_dct(shifted, frequencies)
    results: dict[tuple[int, int], tuple[int, int, float]] = {}
    for i, (u, v) in enumerate(frequencies):
        fit = _frequency_fit(coef_a[:, i], coef_s[:, i], int(table[u, v]))
        if fit is not None:
            results[(u, v)] = fit
    if len(results) < 3:
        return DoubleQuantization(None, results, None, len(aligned), subsampled)
    score = float(np.median([g for _, _, g in results.values()]))
    primary = _primary_quality(results) if score > 0.0 else None
    return DoubleQuantization(score, results, primary, len(aligned), subsampled)


def _frequency_fit(
    aligned: np.ndarray, shifted: np.ndarray, q2: int
) -> tuple[int, int, float] | None:
    """Fit single and double quantization to one frequency's coefficients.

    Returns ``(q2, q1_estimate, improvement)``, or None when the step is unusable or the
    aligned coefficients have too few non-zero values to read a histogram.
    """
    q1s = np.arange(q2 + 1, min(MAX_FIRST_STEP, max(4 * q2, q2 + 24)) + 1)
    if q2 < 1 or q1s.size == 0:
        return None
    observed = np.rint(aligned / q2)
    if np.mean(observed != 0) < 0.05 or np.count_nonzero(observed) < MIN_DQ_NONZERO:
        return None
    kmax = int(min(40, max(4, np.percentile(np.abs(observed), 99))))
    h_obs = _folded_hist(observed[None, :], kmax)[0]
    calib = shifted.astype(np.float64)
    single = _folded_hist(np.rint(calib / q2)[None, :], kmax)
    double = _double_hist(calib, q1s, q2, kmax)
    d_single = float(_nonzero_distance(h_obs, single)[0])
    d_double = _nonzero_distance(h_obs, double)
    best = int(np.argmin(d_double))
    gain = 0.0 if d_single <= 1e-12 else max(0.0, 1.0 - float(d_double[best]) / d_single)
    return (q2, int(q1s[best]) if gain > 0 else q2, gain)


def _primary_quality(results: dict[tuple[int, int], tuple[int, int, float]]) -> int | None:
    """IJG quality whose luminance steps best match the estimated first steps."""
    strong = [(uv, q1) for uv, (_, q1, gain) in results.items() if gain > 0.3]
    if len(strong) < 3:
        return None
    errors = []
    for table in IJG_LUMA_TABLES:
        errors.append(sum(abs(int(table[uv]) - q1) / q1 for uv, q1 in strong))
    return int(np.argmin(errors)) + 1


def dq_finding(
    dq: DoubleQuantization, threshold: float, fit: QualityFit, skipped: str | None = None
) -> Finding:
    """Describe the double-compression test's outcome.

    Parameters
    ----------
    dq : DoubleQuantization
    threshold : float
        ``dq_score`` from which double compression is reported.
    fit : QualityFit
        The file's tables, for the quality of the last save.
    skipped : str, optional
        Why the test was not run (the summary says so).
    """
    detected = dq.score is not None and dq.score >= threshold
    steps = " ".join(f"{u}{v}:{q2}/{q1}" for (u, v), (q2, q1, _) in dq.per_frequency.items())
    metrics: dict[str, MetricValue] = {
        "dq_score": None if dq.score is None else round(dq.score, 3),
        "dq_detected": detected,
        "dq_primary_quality": dq.primary_quality if detected else None,
        "dq_blocks": dq.blocks,
        "dq_subsampled": dq.subsampled,
        "dq_frequencies": len(dq.per_frequency),
        "dq_steps": steps,
    }
    caveats = [
        "a first compression finer than the last one (first quality above the last) leaves "
        "weak traces and is usually missed",
        "computed from decoded pixels (8-bit rounding blurs the coefficients), so the test "
        "is weak when the file's quality is 95 or more",
    ]
    if dq.subsampled:
        caveats.append(f"large image: {dq.blocks} blocks on evenly skipped block rows were read")
    if skipped is not None:
        summary = f"Double-compression test not run: {skipped}."
    elif dq.score is None:
        summary = (
            f"Double-compression test not run: the analysed area has {dq.blocks} 8x8 "
            f"blocks (at least {MIN_DQ_BLOCKS} needed) or too few textured ones."
        )
    elif detected:
        first = (
            f"; the first save was near IJG quality {dq.primary_quality}"
            if dq.primary_quality is not None
            else ""
        )
        summary = (
            f"Double JPEG compression: the DCT histograms show the periodic gaps and peaks of "
            f"an earlier, coarser quantization (dq_score {dq.score:.2f}){first}; the image "
            f"was decoded and re-saved (now at about quality {fit.quality})."
        )
    else:
        summary = (
            f"No sign of an aligned double JPEG compression in the DCT histograms (dq_score "
            f"{dq.score:.2f}): consistent with a single save, or with a finer first one."
        )
    return Finding(
        summary=summary,
        score=None,
        direction="neutral",
        kind="signal",
        metrics=metrics,
        caveats=caveats,
    )
