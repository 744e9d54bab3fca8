"""The 8x8 grid: where JPEG blocks lie in the pixels, and whether a second, shifted grid shows."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import special

from sleuth.tools.base import Finding, MetricValue
from sleuth.tools.builtin.jpeg.dct import BLOCK, DCT, ZERO_BELOW, luminance
from sleuth.tools.image import LoadedImage

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
BLOCK_CODECS = frozenset({"HEIF", "HEIC", "AVIF", "WEBP"})
"""Formats whose own lossy coding uses block transforms on an 8-aligned grid."""


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
    grid_y, grid_x = np.meshgrid(
        np.arange(0, free_h, stride), np.arange(0, free_w, stride), indexing="ij"
    )
    ay, ax = grid_y.ravel(), grid_x.ravel()
    # The patches at those positions, a lattice: a strided view of the image's windows.
    at = sliding_window_view(rgb, (span, span), axis=(0, 1))[::stride, ::stride]
    patches = luminance(np.moveaxis(at, 2, -1)).reshape(-1, span, span)
    d = np.arange(BLOCK)
    counts = np.zeros(BLOCK * BLOCK, dtype=np.int64)
    for s in range(0, ay.size, chunk):
        py, px = ay[s : s + chunk], ax[s : s + chunk]
        zeros = _window_zeros(patches[s : s + chunk])
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
        # P(X >= k) for X ~ Binomial(n, 1/64); scipy.stats would give the same within
        # float rounding but takes ~0.4 s to import, paid by every worker process
        tail = special.bdtrc(k - 1, n, 1.0 / 64)
        log_nfa = max(-300.0, math.log10(64) + math.log10(tail)) if tail > 0 else -300.0
    return GridVote(
        counts=counts.reshape(BLOCK, BLOCK),
        offset=(best % BLOCK, best // BLOCK),
        share=k / n if n else 0.0,
        log10_nfa=log_nfa,
        votes=n,
    )


def _window_zeros(patches: np.ndarray) -> np.ndarray:
    """Count the zero DCT coefficients of every 8x8 window of each 15x15 patch.

    Separable: a 1-D DCT along x for every horizontal offset, then along y for every
    vertical one (the rows of a window share their x transform with its neighbours'),
    about a fifth of the work of one 64x64 product per window.

    Parameters
    ----------
    patches : ndarray, shape (n, 15, 15)

    Returns
    -------
    ndarray of uint8, shape (n, 64)
        ``[i, dy * 8 + dx]``: zeros of the window at offset ``(dx, dy)`` in patch ``i``.
    """
    n, span = patches.shape[:2]
    flat = patches.astype(np.float64)
    rows = sliding_window_view(flat, BLOCK, axis=2).reshape(-1, BLOCK) @ DCT.T
    rows = rows.reshape(n, span, BLOCK, BLOCK)  # n, y, dx, u
    coef = sliding_window_view(rows, BLOCK, axis=1).reshape(-1, BLOCK) @ DCT.T  # n dy dx u, v
    small = np.less(np.abs(coef, out=coef), ZERO_BELOW).view(np.uint8)  # coef is ours
    return small.reshape(n * BLOCK * BLOCK, -1).sum(axis=1, dtype=np.uint8).reshape(n, -1)


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


def grid_finding(
    image: LoadedImage,
    vote: GridVote | None,
    block: tuple[Blockiness, Blockiness] | None,
    expected: tuple[int, int] | None,
) -> tuple[Finding, bool]:
    """Build the grid finding; also return whether it shows a shifted (crop, re-save) grid.

    Parameters
    ----------
    image : LoadedImage
        The analysed view (its format decides how a grid is read).
    vote : GridVote or None
        :func:`zero_grid` of the view.
    block : tuple of Blockiness or None
        :func:`blockiness_profile` of the view, when a grid to compare with is known.
    expected : tuple of int or None
        :func:`expected_grid` of a JPEG file; None for other files.
    """
    metrics, shifted, shift_xy = _grid_metrics(vote, block, expected)
    if vote is None:
        summary, caveats = "The analysed area is too small to look for an 8x8 grid.", []
    elif image.is_jpeg:
        summary = _own_grid_summary(vote, expected, shifted, shift_xy)
        caveats = [
            "a shifted earlier grid is only visible when the earlier compression was "
            "coarser than the last one, and a shift of 1 pixel is not distinguished"
        ]
    else:
        summary, caveats = _foreign_grid_summary(image.format, vote, shifted, shift_xy), []
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


def _grid_metrics(
    vote: GridVote | None,
    block: tuple[Blockiness, Blockiness] | None,
    expected: tuple[int, int] | None,
) -> tuple[dict[str, MetricValue], bool, tuple[int, int] | None]:
    """Return the grid metrics, whether a shifted grid shows, and that grid's offset."""
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
    return metrics, shifted, shift_xy


def _own_grid_summary(
    vote: GridVote,
    expected: tuple[int, int] | None,
    shifted: bool,
    shift_xy: tuple[int, int] | None,
) -> str:
    """Summarise the grid of a JPEG file against where its own compression puts it."""
    if shifted and vote.found and vote.offset != expected:
        return (
            f"The dominant 8x8 grid is at offset {vote.offset}, not at {expected} where "
            "this file's own compression puts it: the pixels were JPEG-compressed on "
            "another grid before being cropped and re-saved."
        )
    if shifted:
        return (
            f"Besides its own 8x8 grid at {expected}, the image shows a second, shifted "
            f"blocking grid at offset {shift_xy}: an earlier JPEG compression, a crop, "
            "then this save."
        )
    if vote.found:
        return (
            f"The 8x8 grid sits at offset {vote.offset}, where this file's own "
            "compression puts it; no second, shifted grid."
        )
    return (
        "No 8x8 grid stands out (very high quality or few textured areas), so grid "
        "alignment cannot be checked."
    )


def _foreign_grid_summary(
    fmt: str, vote: GridVote, shifted: bool, shift_xy: tuple[int, int] | None
) -> str:
    """Summarise an 8x8 grid (or its absence) in a file of another format than JPEG."""
    if vote.found and fmt in BLOCK_CODECS and vote.offset == (0, 0):
        return (
            f"This {fmt} file shows an 8-pixel block grid at offset (0, 0) "
            f"({vote.share:.0%} of votes); {fmt} is itself a block-transform codec, "
            "so the grid may come from its own compression rather than an earlier JPEG."
        )
    if vote.found:
        summary = (
            f"This {fmt} file carries an 8x8 JPEG grid at offset {vote.offset} "
            f"({vote.share:.0%} of votes): its pixels were JPEG-compressed before being saved "
            f"in this format{' and cropped after' if vote.offset != (0, 0) else ''}."
        )
        if shifted and shift_xy is not None:
            summary += f" A second blocking grid at {shift_xy} points to an earlier save."
        return summary
    weak = (
        f" (a weak 8-pixel periodic structure wins {vote.share:.0%} of votes: too weak "
        "for a JPEG grid; resampling or a generator's decoder can leave one)"
        if vote.weak
        else ""
    )
    return (
        f"No 8x8 JPEG grid in this {fmt} file: no trace of an earlier JPEG "
        f"compression, or one at very high quality{weak}."
    )
