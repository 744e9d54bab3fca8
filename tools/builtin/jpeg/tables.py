"""``jpeg``: a file's JPEG history - quantization tables, double compression, the 8x8 grid.

Three findings for a JPEG (two for any other file):

1. Tables (file-wide): ``quality`` (closest IJG quality), ``quality_error`` (mean absolute
   deviation from those IJG tables; 0 for ``table_kind`` ``"ijg"``, else ``"custom"``),
   ``subsampling``, ``progressive``, ``table_count``, ``luma_dc_step``,
   ``library_default_quality``. For other files: ``"Not a JPEG: no quantization tables"``.
2. Double quantization (view): ``dq_score`` in [0, 1], ``dq_detected``,
   ``dq_primary_quality`` (IJG quality of the estimated first tables), ``dq_blocks``,
   ``dq_subsampled``, ``dq_steps`` (``"uv:q2/q1"`` per tested frequency: the file's step
   and the estimated first step, equal when nothing better than single quantization fits).
3. Grid (view, offsets in whole-image pixels modulo 8): ``grid_found``,
   ``grid_offset_x/y``, ``grid_strength`` (share of ZERO votes), ``grid_log10_nfa``,
   ``grid_expected_x/y`` and ``grid_aligned`` (JPEG: where its own compression puts the
   grid after EXIF orientation), ``blockiness_x/y``, ``extra_grid_asymmetry_x/y``,
   ``shifted_grid`` and ``shifted_grid_x/y`` (an earlier compression on another grid).

Everything is computed from the decoded pixels (no entropy decoding, no new dependency):
the 8x8 DCT of the luminance is exact up to 8-bit rounding, which is enough for histograms
of low frequencies at the steps of quality <= 95.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image, JpegImagePlugin
from pydantic import BaseModel, ConfigDict, Field
from scipy import stats

from sleuth.tools.base import Finding, MetricValue, ToolContext, ToolResult, forensic_tool
from sleuth.tools.image import LoadedImage

BLOCK = 8

IJG_LUMA = np.array(
    [
        [16, 11, 10, 16, 24, 40, 51, 61],
        [12, 12, 14, 19, 26, 58, 60, 55],
        [14, 13, 16, 24, 40, 57, 69, 56],
        [14, 17, 22, 29, 51, 87, 80, 62],
        [18, 22, 37, 56, 68, 109, 103, 77],
        [24, 35, 55, 64, 81, 104, 113, 92],
        [49, 64, 78, 87, 103, 121, 120, 101],
        [72, 92, 95, 98, 112, 100, 103, 99],
    ],
    dtype=np.int64,
)
"""Annex K luminance table of ITU-T T.81 (libjpeg's quality-50 table), natural order."""

IJG_CHROMA = np.full((8, 8), 99, dtype=np.int64)
IJG_CHROMA[:4, :4] = [[17, 18, 24, 47], [18, 21, 26, 66], [24, 26, 56, 99], [47, 66, 99, 99]]
"""Annex K chrominance table, natural order."""

LIBRARY_QUALITIES = (75, 90, 95, 100)
"""IJG qualities that image libraries and generators' save paths default to (Pillow 75;
common explicit choices 90, 95, 100)."""

DQ_FREQUENCIES = ((0, 1), (1, 0), (1, 1), (0, 2), (2, 0), (1, 2), (2, 1), (2, 2), (0, 3), (3, 0))
"""Low-frequency AC positions ``(row, col)`` whose histograms the double-quantization test reads."""

GRID_LOG_NFA = -6.0
GRID_MIN_SHARE = 0.2
"""A ZERO grid counts when its votes are significant (log10 number of false alarms below
``GRID_LOG_NFA``) and at least this share of all votes: votes of nearby positions are not
independent, and 8-periodic content (latent-diffusion decoders, flat synthetic areas) wins
3-12 % of votes against 60-99 % for a JPEG grid."""
SHIFT_ASYMMETRY = 0.15
SHIFT_T = 5.0
"""A second blocking phase counts when its relative discontinuity exceeds that of its
mirror phase about the own grid by this much, with this t statistic across line groups.
On seeded single compressions of scikit-image pictures (4 scales, q 60-100) nothing passes;
a 2-6 px crop between q60 and q90 saves passes in about 90 % of cases, between q75 and
q90 in about half."""
MIN_DQ_BLOCKS = 256
"""Fewest 8x8 blocks (about 128x128 pixels) for the double-quantization test."""
MIN_DQ_NONZERO = 100
"""Fewest non-zero coefficients for a frequency's histogram to be read."""
MAX_FIRST_STEP = 96
"""Largest first-compression step searched."""
BLOCK_CODECS = frozenset({"HEIF", "HEIC", "AVIF", "WEBP"})
"""Formats whose own lossy coding uses block transforms on an 8-aligned grid."""


class JpegParams(BaseModel):
    """Parameters of :func:`jpeg`."""

    model_config = ConfigDict(extra="forbid")

    max_blocks: int = Field(
        20_000,
        ge=1_000,
        le=1_000_000,
        description="Most 8x8 blocks read by the double-compression test; larger images "
        "are subsampled by block rows.",
    )
    grid_samples: int = Field(
        2_048,
        ge=256,
        le=65_536,
        description="Positions voting for the 8x8 grid origin.",
    )
    dq_threshold: float = Field(
        0.25,
        ge=0.0,
        le=1.0,
        description="dq_score from which double compression is reported.",
    )


# --------------------------------------------------------------------------- tables


@dataclass(frozen=True)
class QualityFit:
    """Closest IJG quality to a set of quantization tables.

    Attributes
    ----------
    quality : int
        IJG quality (1-100) whose scaled Annex K tables are closest.
    error : float
        Mean absolute difference between the file's tables and those tables.
    exact : bool
        True when every entry equals the IJG-scaled table.
    """

    quality: int
    error: float
    exact: bool


def ijg_table(base: np.ndarray, quality: int) -> np.ndarray:
    """Scale an Annex K table to an IJG quality the way libjpeg does.

    Parameters
    ----------
    base : ndarray of int, shape (8, 8)
        :data:`IJG_LUMA` or :data:`IJG_CHROMA`.
    quality : int
        1 to 100.

    Returns
    -------
    ndarray of int64, shape (8, 8)
        ``clip((base * s + 50) // 100, 1, 255)`` with ``s = 5000 / q`` below 50 and
        ``200 - 2 q`` from 50 (libjpeg's ``jpeg_quality_scaling`` with baseline tables).

    References
    ----------
    .. [1] Independent JPEG Group, libjpeg ``jcparam.c``: ``jpeg_quality_scaling``,
           ``jpeg_add_quant_table``.
    """
    quality = int(min(100, max(1, quality)))
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return np.clip((base * scale + 50) // 100, 1, 255)


def estimate_ijg_quality(luma: np.ndarray, chroma: Sequence[np.ndarray] = ()) -> QualityFit:
    """Find the IJG quality whose standard tables best match a file's tables.

    Parameters
    ----------
    luma : ndarray, shape (8, 8)
        The luminance quantization table, natural (row-major) order.
    chroma : sequence of ndarray, shape (8, 8)
        Chrominance tables (none for greyscale).

    Returns
    -------
    QualityFit
        The least-error quality (ties: the higher quality); ``exact`` says whether the
        tables are exactly IJG-standard scaled, i.e. not a custom (camera/editor) set.

    References
    ----------
    .. [1] ITU-T T.81, Annex K.1 (example quantization tables).
    .. [2] Kornblum, J. "Using JPEG quantization tables to identify imagery processed
           by software." Digital Investigation 5, 2008.
    """
    tables = [np.asarray(luma, dtype=np.int64)] + [np.asarray(c, dtype=np.int64) for c in chroma]
    bases = [IJG_LUMA] + [IJG_CHROMA] * len(chroma)
    best: QualityFit | None = None
    for quality in range(100, 0, -1):
        diff = [np.abs(t - ijg_table(b, quality)) for t, b in zip(tables, bases, strict=True)]
        error = float(np.mean(diff))
        if best is None or error < best.error:
            best = QualityFit(quality=quality, error=error, exact=error == 0.0)
    assert best is not None
    return best


@dataclass(frozen=True)
class JpegHeader:
    """What the file's header says about its compression.

    Attributes
    ----------
    luma : ndarray of int64, shape (8, 8)
        Quantization table of the first component, natural order.
    chroma : tuple of ndarray
        Tables used by the other components (deduplicated; empty for greyscale).
    table_count : int
        Number of tables defined in the file.
    subsampling : str
        ``4:4:4``, ``4:2:2``, ``4:2:0``, ``grayscale``, or the sampling factors.
    progressive : bool
        Progressive rather than baseline/sequential coding.
    components : int
        Colour components (1 greyscale, 3 YCbCr, 4 CMYK/YCCK).
    """

    luma: np.ndarray
    chroma: tuple[np.ndarray, ...]
    table_count: int
    subsampling: str
    progressive: bool
    components: int


def read_jpeg_header(img: Image.Image) -> JpegHeader | None:
    """Read quantization tables, chroma subsampling and coding mode from a Pillow JPEG.

    Parameters
    ----------
    img : PIL.Image.Image
        An opened (not necessarily decoded) image.

    Returns
    -------
    JpegHeader or None
        None when the image has no quantization tables (not a DCT JPEG).

    References
    ----------
    .. [1] ITU-T T.81, B.2.2 (frame header) and B.2.4.1 (DQT segment).
    """
    qtables = getattr(img, "quantization", None)
    if not qtables:
        return None
    tables = {k: np.asarray(v, dtype=np.int64).reshape(8, 8) for k, v in qtables.items()}
    layers = list(getattr(img, "layer", []) or [])
    ids = [layer[3] for layer in layers if layer[3] in tables]
    luma_id = ids[0] if ids else min(tables)
    chroma_ids = list(dict.fromkeys(i for i in ids[1:] if i != luma_id))
    if not ids and len(tables) > 1:
        chroma_ids = [k for k in sorted(tables) if k != luma_id][:1]
    sampling = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}.get(JpegImagePlugin.get_sampling(img))
    if sampling is None:
        if len(layers) == 1:
            sampling = "grayscale"
        elif len(layers) == 4:
            sampling = "cmyk"
        elif layers:
            sampling = " ".join(f"{h}x{v}" for _, h, v, _ in layers)
        else:
            sampling = "unknown"
    progressive = bool(img.info.get("progressive") or img.info.get("progression"))
    return JpegHeader(
        luma=tables[luma_id],
        chroma=tuple(tables[i] for i in chroma_ids),
        table_count=len(tables),
        subsampling=sampling,
        progressive=progressive,
        components=len(layers) or int(getattr(img, "layers", 0) or 0),
    )


# --------------------------------------------------------------------------- pixels


def _dct_matrix() -> np.ndarray:
    n = np.arange(BLOCK)
    mat = np.sqrt(2.0 / BLOCK) * np.cos(np.pi * (2 * n[None, :] + 1) * n[:, None] / (2 * BLOCK))
    mat[0] /= np.sqrt(2.0)
    return mat.astype(np.float32)


DCT = _dct_matrix()
"""Orthonormal 8-point DCT-II matrix: ``DCT @ block @ DCT.T`` is JPEG's forward DCT."""
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


def expected_grid(orientation: int, size: tuple[int, int]) -> tuple[int, int]:
    """Where a JPEG's own 8x8 grid lies after EXIF orientation was applied.

    Parameters
    ----------
    orientation : int
        EXIF orientation tag (1-8) the loader applied.
    size : tuple of int
        ``(width, height)`` of the upright image.

    Returns
    -------
    tuple of int
        ``(x, y)`` offsets modulo 8 of the block boundaries of the stored image,
        in the upright image's pixels: ``(0, 0)`` unless a flip or rotation moved the
        stored image's right or bottom edge (where partial blocks are) to the left or top.

    References
    ----------
    .. [1] JEITA CP-3451 (Exif 2.3), tag 0x0112 Orientation.
    """
    width, height = size
    stored_w, stored_h = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
    rw, rh = stored_w % BLOCK, stored_h % BLOCK
    # x, y of the upright image come from these stored edges being reversed (or not).
    offsets = {
        1: (0, 0),
        2: (rw, 0),
        3: (rw, rh),
        4: (0, rh),
        5: (0, 0),
        6: (rh, 0),
        7: (rh, rw),
        8: (0, rw),
    }
    return offsets.get(orientation, (0, 0))


# --------------------------------------------------------------------------- double quantization


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
        q2 = int(table[u, v])
        q1s = np.arange(q2 + 1, min(MAX_FIRST_STEP, max(4 * q2, q2 + 24)) + 1)
        if q2 < 1 or q1s.size == 0:
            continue
        observed = np.rint(coef_a[:, i] / q2)
        if np.mean(observed != 0) < 0.05 or np.count_nonzero(observed) < MIN_DQ_NONZERO:
            continue
        kmax = int(min(40, max(4, np.percentile(np.abs(observed), 99))))
        h_obs = _folded_hist(observed[None, :], kmax)[0]
        calib = coef_s[:, i].astype(np.float64)
        single = _folded_hist(np.rint(calib / q2)[None, :], kmax)
        double = _folded_hist(
            np.rint(np.rint(calib[None, :] / q1s[:, None]) * q1s[:, None] / q2), kmax
        )
        d_single = float(_nonzero_distance(h_obs, single)[0])
        d_double = _nonzero_distance(h_obs, double)
        best = int(np.argmin(d_double))
        gain = 0.0 if d_single <= 1e-12 else max(0.0, 1.0 - float(d_double[best]) / d_single)
        results[(u, v)] = (q2, int(q1s[best]) if gain > 0 else q2, gain)
    if len(results) < 3:
        return DoubleQuantization(None, results, None, len(aligned), subsampled)
    score = float(np.median([g for _, _, g in results.values()]))
    primary = _primary_quality(results) if score > 0.0 else None
    return DoubleQuantization(score, results, primary, len(aligned), subsampled)


def _primary_quality(results: dict[tuple[int, int], tuple[int, int, float]]) -> int | None:
    """IJG quality whose luminance steps best match the estimated first steps."""
    strong = [(uv, q1) for uv, (_, q1, gain) in results.items() if gain > 0.3]
    if len(strong) < 3:
        return None
    errors = []
    for quality in range(1, 101):
        table = ijg_table(IJG_LUMA, quality)
        errors.append(sum(abs(int(table[uv]) - q1) / q1 for uv, q1 in strong))
    return int(np.argmin(errors)) + 1


# --------------------------------------------------------------------------- grid


@dataclass(frozen=True)
class GridVote:
    """Result of :func:`zero_grid`.

    Attributes
    ----------
    counts : ndarray of int, shape (8, 8)
        Votes per grid origin ``[y, x]`` (modulo 8, whole-image frame).
    offset : tuple of int
        ``(x, y)`` with the most votes.
    share : float
        Its share of the votes (1/64 by chance).
    log10_nfa : float
        log10 of the number of false alarms of that many votes under uniform voting.
    votes : int
        Number of positions that voted (ties abstain).
    """

    counts: np.ndarray
    offset: tuple[int, int]
    share: float
    log10_nfa: float
    votes: int

    @property
    def found(self) -> bool:
        """True when the winning grid is significant and wins at least :data:`GRID_MIN_SHARE`."""
        return self.log10_nfa < GRID_LOG_NFA and self.share >= GRID_MIN_SHARE

    @property
    def weak(self) -> bool:
        """True for a significant but weak 8-periodic structure that is not a JPEG grid."""
        return self.log10_nfa < GRID_LOG_NFA and not self.found


def zero_grid(
    rgb: np.ndarray, *, origin: tuple[int, int] = (0, 0), samples: int = 2048, chunk: int = 1024
) -> GridVote | None:
    """Locate the JPEG 8x8 grid by counting zero DCT coefficients (ZERO).

    Each sampled position votes for the origin (modulo 8) of the 8x8 block containing
    it whose DCT has the most coefficients rounding to zero; a block on the grid of a
    past JPEG compression has far more zeros than a misaligned one. Positions where the
    best block is tied (flat or saturated areas) abstain. The winner's significance is
    the a-contrario number of false alarms ``64 * P[Binomial(n, 1/64) >= k]``.

    Parameters
    ----------
    rgb : ndarray of uint8, shape (H, W, 3)
        Pixels of the analysed view.
    origin : tuple of int
        ``(x, y)`` of the view in the whole image; votes are reported in the whole
        image's frame so a crop gives the same answer as the whole image.
    samples : int
        Approximate number of voting positions (on an even lattice, at least 8 px apart).
    chunk : int
        Positions processed at once (memory: ``chunk * 64 * 64`` floats).

    Returns
    -------
    GridVote or None
        None when the view is smaller than 15x15 pixels.

    References
    ----------
    .. [1] Nikoukhah, T., Anger, J., Ehret, T., Colom, M., Morel, J.-M. and
           Grompone von Gioi, R. "JPEG grid detection based on the number of DCT zeros
           and its application to automatic and localized forgery detection." CVPR
           Workshops, 2019.
    """
    height, width = rgb.shape[:2]
    span = 2 * BLOCK - 1
    if height < span or width < span:
        return None
    free_h, free_w = height - span + 1, width - span + 1
    stride = max(BLOCK, int(math.sqrt(free_h * free_w / samples)))
    ay, ax = np.meshgrid(np.arange(0, free_h, stride), np.arange(0, free_w, stride), indexing="ij")
    ay, ax = ay.ravel(), ax.ravel()
    r = np.arange(span)
    d = np.arange(BLOCK)
    counts = np.zeros(BLOCK * BLOCK, dtype=np.int64)
    for s in range(0, ay.size, chunk):
        py, px = ay[s : s + chunk], ax[s : s + chunk]
        patch = luminance(rgb[py[:, None, None] + r[None, :, None], px[:, None, None] + r])
        windows = sliding_window_view(patch, (BLOCK, BLOCK), axis=(1, 2))  # n, dy, dx, 8, 8
        coef = windows.reshape(-1, BLOCK * BLOCK) @ KRON.T
        zeros = (np.abs(coef) < 0.5).sum(axis=1).reshape(len(py), -1)
        top = zeros.max(axis=1)
        unique = (zeros == top[:, None]).sum(axis=1) == 1
        dy, dx = np.divmod(zeros.argmax(axis=1), BLOCK)
        gx = (origin[0] + px + d[dx]) % BLOCK
        gy = (origin[1] + py + d[dy]) % BLOCK
        counts += np.bincount((gy * BLOCK + gx)[unique], minlength=BLOCK * BLOCK)
    n = int(counts.sum())
    k = int(counts.max())
    best = int(counts.argmax())
    if n == 0:
        log_nfa = math.log10(64)
    else:
        tail = float(stats.binom.logsf(k - 1, n, 1.0 / 64)) / math.log(10)
        log_nfa = max(-300.0, math.log10(64) + tail)
    return GridVote(
        counts=counts.reshape(BLOCK, BLOCK),
        offset=(best % BLOCK, best // BLOCK),
        share=k / n if n else 0.0,
        log10_nfa=log_nfa,
        votes=n,
    )


@dataclass(frozen=True)
class Blockiness:
    """Result of :func:`blockiness_profile` for one axis.

    Attributes
    ----------
    groups : ndarray, shape (G, 8)
        Mean discontinuity at boundaries of each phase (whole-image frame) in each of
        ``G`` independent groups of lines, relative to the group's median phase
        (0 = no excess).
    """

    groups: np.ndarray

    @property
    def profile(self) -> np.ndarray:
        """Mean relative excess per phase, shape (8,)."""
        return self.groups.mean(axis=0)

    def extra_phase(self, own: int) -> tuple[int, float, float]:
        """Return the phase with the strongest excess not explained by the grid at ``own``.

        A JPEG's own blocking raises its boundary phase ``own``, its neighbours and,
        through the curvature of the even DCT bases, phases symmetric about ``own``
        (``own + 4`` most). So each phase ``j`` is compared with its mirror
        ``2 own - j``: a second, shifted grid breaks that symmetry, content and the own
        grid do not. Phases ``own``, ``own +- 1`` and ``own + 4`` cannot be tested.

        Returns
        -------
        phase : int
        asymmetry : float
            Excess at ``phase`` minus excess at its mirror.
        t : float
            t statistic of the asymmetry across groups of lines.
        """
        candidates = [(own + k) % BLOCK for k in (2, 3, 5, 6)]
        diffs = np.stack(
            [self.groups[:, j] - self.groups[:, (2 * own - j) % BLOCK] for j in candidates]
        )
        means = diffs.mean(axis=1)
        best = int(np.argmax(means))
        err = diffs[best].std(ddof=1) / math.sqrt(diffs.shape[1])
        return candidates[best], float(means[best]), float(means[best] / max(err, 1e-9))

    def second_grid(self, own: int) -> int | None:
        """Return the phase of a second, shifted blocking grid, or None.

        It needs an asymmetry of at least :data:`SHIFT_ASYMMETRY` with a t statistic of
        at least :data:`SHIFT_T`.
        """
        phase, asym, t = self.extra_phase(own)
        return phase if asym >= SHIFT_ASYMMETRY and t >= SHIFT_T else None


def blockiness_profile(
    rgb: np.ndarray, *, origin: tuple[int, int] = (0, 0), lines: int = 512, groups: int = 16
) -> tuple[Blockiness, Blockiness] | None:
    """Measure blocking discontinuities per boundary phase, horizontally and vertically.

    At each boundary the jump ``|d(x) - (d(x-1) + d(x+1)) / 2|`` of the first difference
    ``d`` is averaged per phase ``x mod 8``: JPEG blocking raises one phase per axis, and
    an older, shifted compression raises a second one.

    Parameters
    ----------
    rgb : ndarray of uint8, shape (H, W, 3)
    origin : tuple of int
        ``(x, y)`` of the view in the whole image; phases are in the whole image's frame.
    lines : int
        Rows (and columns) sampled evenly.
    groups : int
        Groups of lines for the t statistic.

    Returns
    -------
    tuple of Blockiness or None
        ``(x_axis, y_axis)``; None when the view is under 64 pixels on a side.

    References
    ----------
    .. [1] Fan, Z. and de Queiroz, R. L. "Identification of bitmap compression history:
           JPEG detection and quantizer estimation." IEEE Transactions on Image
           Processing 12(2), 2003.
    """
    height, width = rgb.shape[:2]
    if min(height, width) < 64:
        return None
    out = []
    for axis in (0, 1):
        length = rgb.shape[axis]
        pick = np.unique(np.linspace(0, length - 1, min(lines, length)).astype(np.int64))
        sample = rgb[pick] if axis == 0 else rgb[:, pick].transpose(1, 0, 2)
        y = luminance(sample)
        diff = np.diff(y, axis=1)
        jump = np.abs(diff[:, 1:-1] - 0.5 * (diff[:, :-2] + diff[:, 2:]))  # boundary i + 2
        n = jump.shape[1] // BLOCK * BLOCK
        shift = (2 + origin[axis]) % BLOCK  # rows give x phases, columns y phases
        per_line = np.roll(jump[:, :n].reshape(len(pick), -1, BLOCK).mean(axis=1), shift, axis=1)
        parts = np.stack([p.mean(axis=0) for p in np.array_split(per_line, groups)])
        rel = parts / np.maximum(np.median(parts, axis=1, keepdims=True), 1e-9) - 1.0
        out.append(Blockiness(groups=rel))
    return out[0], out[1]


# --------------------------------------------------------------------------- the tool


def _table_finding(header: JpegHeader, fit: QualityFit, resaved: bool) -> Finding:
    kind = "ijg" if fit.exact else "custom"
    coding = "progressive" if header.progressive else "baseline"
    metrics: dict[str, MetricValue] = {
        "quality": fit.quality,
        "quality_error": round(fit.error, 3),
        "table_kind": kind,
        "table_count": header.table_count,
        "subsampling": header.subsampling,
        "progressive": header.progressive,
        "luma_dc_step": int(header.luma[0, 0]),
    }
    if fit.exact:
        default = fit.quality in LIBRARY_QUALITIES
        metrics["library_default_quality"] = default
        summary = (
            f"Standard IJG quantization tables at quality {fit.quality}"
            f"{' (a common library default)' if default else ''}, {header.subsampling}, "
            f"{coding}."
        )
        score, direction = (0.55, "ai") if default else (0.5, "neutral")
        caveats = [
            "standard IJG tables are what most software writes (libjpeg, Pillow, OpenCV, "
            "browsers, any re-save by a person), so they do not show generation; they only "
            "show that no camera's own tables survived"
        ]
    else:
        if resaved:
            origin, score, direction = (
                "a camera's, phone's or editor's; but the image was re-saved, so they belong "
                "to the last save",
                0.5,
                "neutral",
            )
        elif header.progressive:
            origin, score, direction = (
                "a software encoder's (cameras and phones write baseline JPEGs, so a "
                "progressive file was encoded by an editor, exporter or platform)",
                0.5,
                "neutral",
            )
        else:
            origin, score, direction = ("a camera's, phone's or editor's", 0.3, "real")
        summary = (
            f"Custom quantization tables (not IJG-scaled; nearest IJG quality {fit.quality}, "
            f"mean deviation {fit.error:.1f}), {header.subsampling}, {coding}: the tables "
            f"are {origin}."
        )
        caveats = [
            "editors can reproduce camera tables and several encoders (Photoshop, mozjpeg, "
            "social networks) use their own, so custom tables lean towards a capture but "
            "do not prove one",
            "the quality of a custom table is only the nearest IJG equivalent",
        ]
    return Finding(
        summary=summary,
        score=score,
        direction=direction,
        kind="signal",
        metrics=metrics,
        caveats=caveats,
    )


def _dq_finding(
    dq: DoubleQuantization, params: JpegParams, fit: QualityFit, skipped: str | None = None
) -> Finding:
    detected = dq.score is not None and dq.score >= params.dq_threshold
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


def _grid_finding(
    image: LoadedImage,
    vote: GridVote | None,
    block: tuple[Blockiness, Blockiness] | None,
    expected: tuple[int, int] | None,
) -> tuple[Finding, bool]:
    """Build the grid finding; also return whether it shows a shifted (crop, re-save) grid."""
    found = vote is not None and vote.found
    metrics: dict[str, MetricValue] = {
        "grid_found": found,
        "grid_offset_x": vote.offset[0] if found and vote else None,
        "grid_offset_y": vote.offset[1] if found and vote else None,
        "grid_strength": round(vote.share, 3) if vote else None,
        "grid_log10_nfa": round(vote.log10_nfa, 1) if vote else None,
        "grid_votes": vote.votes if vote else 0,
    }
    own = expected if expected is not None else (vote.offset if found and vote else None)
    if expected is not None:
        metrics["grid_expected_x"], metrics["grid_expected_y"] = expected
        metrics["grid_aligned"] = bool(found and vote and vote.offset == expected)
    shifted = bool(found and vote and expected is not None and vote.offset != expected)
    shift_xy: tuple[int, int] | None = vote.offset if shifted and vote else None
    if block is not None and own is not None:
        extra_x, extra_y = block[0].second_grid(own[0]), block[1].second_grid(own[1])
        metrics["blockiness_x"] = round(float(block[0].profile[own[0]]), 3)
        metrics["blockiness_y"] = round(float(block[1].profile[own[1]]), 3)
        metrics["extra_grid_asymmetry_x"] = round(block[0].extra_phase(own[0])[1], 3)
        metrics["extra_grid_asymmetry_y"] = round(block[1].extra_phase(own[1])[1], 3)
        if (extra_x is not None or extra_y is not None) and shift_xy is None:
            shifted = True
            shift_xy = (
                own[0] if extra_x is None else extra_x,
                own[1] if extra_y is None else extra_y,
            )
    metrics["shifted_grid"] = shifted
    metrics["shifted_grid_x"] = shift_xy[0] if shift_xy else None
    metrics["shifted_grid_y"] = shift_xy[1] if shift_xy else None
    caveats = []
    if vote is None:
        summary = "The analysed area is too small to look for an 8x8 grid."
    elif image.is_jpeg:
        if shifted and found and vote.offset != expected:
            summary = (
                f"The dominant 8x8 grid is at offset {vote.offset}, not at {expected} where "
                "this file's own compression puts it: the pixels were JPEG-compressed on "
                "another grid before being cropped and re-saved."
            )
        elif shifted:
            summary = (
                f"Besides its own 8x8 grid at {expected}, the image shows a second, shifted "
                f"blocking grid at offset {shift_xy}: an earlier JPEG compression, a crop, "
                "then this save."
            )
        elif found:
            summary = (
                f"The 8x8 grid sits at offset {vote.offset}, where this file's own "
                "compression puts it; no second, shifted grid."
            )
        else:
            summary = (
                "No 8x8 grid stands out (very high quality or few textured areas), so grid "
                "alignment cannot be checked."
            )
        caveats.append(
            "a shifted earlier grid is only visible when the earlier compression was "
            "coarser than the last one, and a shift of 1 pixel is not distinguished"
        )
    elif found and image.format in BLOCK_CODECS and vote.offset == (0, 0):
        summary = (
            f"This {image.format} file shows an 8-pixel block grid at offset (0, 0) "
            f"({vote.share:.0%} of votes); {image.format} is itself a block-transform codec, "
            "so the grid may come from its own compression rather than an earlier JPEG."
        )
    elif found:
        summary = (
            f"This {image.format} file carries an 8x8 JPEG grid at offset {vote.offset} "
            f"({vote.share:.0%} of votes): its pixels were JPEG-compressed before being saved "
            f"in this format{' and cropped after' if vote.offset != (0, 0) else ''}."
        )
        if shifted and shift_xy is not None:
            summary += f" A second blocking grid at {shift_xy} points to an earlier save."
    else:
        weak = (
            f" (a weak 8-pixel periodic structure wins {vote.share:.0%} of votes: too weak "
            "for a JPEG grid; resampling or a generator's decoder can leave one)"
            if vote.weak
            else ""
        )
        summary = (
            f"No 8x8 JPEG grid in this {image.format} file: no trace of an earlier JPEG "
            f"compression, or one at very high quality{weak}."
        )
    caveats.append(
        "grid offsets are in whole-image pixels modulo 8; a grid says the pixels were "
        "JPEG-compressed at some point, not by whom"
    )
    finding = Finding(
        summary=summary,
        score=None,
        direction="neutral",
        kind="signal",
        metrics=metrics,
        caveats=caveats,
    )
    return finding, shifted


@forensic_tool(
    name="jpeg",
    params=JpegParams,
    summary="Reads a file's JPEG history: quantization tables (estimated IJG quality; "
    "standard library tables vs a camera's or editor's custom ones; chroma subsampling; "
    "progressive), double-compression traces in the DCT histograms, and where the 8x8 "
    "blocking grid lies (a shifted grid means a crop after compression; a grid in a PNG "
    "means it was once a JPEG). On a region, the DCT and grid tests use that crop.",
    caveat="Compression history is about saving and editing, not authorship: editors and "
    "platforms re-encode and can copy camera tables; a high-quality re-save hides earlier "
    "compressions; small regions give weak statistics.",
    score_meaning="Only the table finding is scored: about 0.3 (towards real) for custom "
    "camera-like tables on a single baseline compression, 0.55 (weakly towards AI) for "
    "standard IJG tables at a library-default quality, 0.5 otherwise. Double compression "
    "and grid findings are unscored and neutral; their strengths are in metrics.",
    cost="cheap",
)
def jpeg(image: LoadedImage, params: JpegParams, ctx: ToolContext) -> ToolResult:
    """Report quantization tables, double quantization and grid alignment of the image."""
    header = None
    if image.is_jpeg:
        with image.open_file() as img:
            header = read_jpeg_header(img)
    rgb, origin = image.rgb, image.origin
    expected = expected_grid(image.orientation, image.size) if header is not None else None
    vote = zero_grid(rgb, origin=origin, samples=params.grid_samples)
    own = expected if expected is not None else (vote.offset if vote and vote.found else None)
    block = blockiness_profile(rgb, origin=origin) if own is not None else None
    grid, shifted = _grid_finding(image, vote, block, expected)
    if header is None:
        reason = "no quantization tables" if image.is_jpeg else f"a {image.format} file"
        first = Finding(
            summary=f"Not a JPEG: no quantization tables ({reason}), so no table or "
            "double-compression evidence; the grid check still applies.",
            score=None,
            direction="neutral",
            kind="signal",
            metrics={"is_jpeg": False, "format": image.format},
        )
        return ToolResult(findings=[first, grid])
    assert expected is not None
    fit = estimate_ijg_quality(header.luma, header.chroma)
    skipped = None
    if header.components not in (1, 3):
        skipped = f"a {header.components}-component (CMYK) JPEG has no luminance table"
        dq = DoubleQuantization(None, {}, None, 0, False)
    else:
        start = ((expected[0] - origin[0]) % BLOCK, (expected[1] - origin[1]) % BLOCK)
        dq = double_quantization(rgb, header.luma, start=start, max_blocks=params.max_blocks)
    dq_found = _dq_finding(dq, params, fit, skipped)
    resaved = bool(dq_found.metrics["dq_detected"]) or shifted
    tables = _table_finding(header, fit, resaved)
    return ToolResult(findings=[tables, dq_found, grid])
