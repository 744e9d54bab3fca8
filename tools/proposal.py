"""Box proposal: from an anomaly map to the top-k boxes. One function, used by every tool."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from sleuth.tools.box import Box


@dataclass(frozen=True)
class ScoredBox:
    """A proposed box and its score.

    Attributes
    ----------
    box : Box
        In the pixels of the image the map was computed for.
    score : float
        How significantly the box stands out from the rest, in [0, 1) (see
        :func:`propose_boxes`); what candidate regions are ranked by.
    area_fraction : float
        Share of the image the box covers.
    contrast : float
        Difference of the mean robust z-scores inside and outside the box (its absolute
        value for two-sided maps); 0 when not measured.
    """

    box: Box
    score: float
    area_fraction: float
    contrast: float = 0.0


def robust_z(values: np.ndarray, *, min_spread: float = 0.0) -> np.ndarray:
    """Return ``(values - median) / (1.4826 * MAD)``, a z-score that outliers do not inflate.

    Parameters
    ----------
    values : ndarray
        Any shape; NaNs are ignored when computing the median and MAD.
    min_spread : float
        Floor for ``1.4826 * MAD``, in the units of ``values``: differences smaller
        than the measurement can resolve must not become large z-scores.

    Returns
    -------
    ndarray of float64
        Same shape as ``values``.
    """
    values = np.asarray(values, dtype=np.float64)
    med = np.nanmedian(values)
    mad = 1.4826 * np.nanmedian(np.abs(values - med))
    if not np.isfinite(mad) or mad < 1e-12:
        mad = float(np.nanstd(values)) or 1.0
    mad = max(mad, min_spread)
    return (values - med) / mad


BOX_SIDES = tuple(round(0.08 * 1.25**k, 4) for k in range(10))
"""Box sides tried, as shares of the map's side: 0.08 to 0.6 in steps of a quarter."""
MIN_CELLS = 16
"""A map with fewer usable cells than this yields no boxes."""
T_SCALE = 10.0
"""The t statistic that scores 0.5."""
ENCLOSES = 0.8
"""A box holding more than this share of a better box is a looser frame around the same
region, not another region, and is dropped."""
MIN_USABLE = 0.75
"""Smallest share of a box's cells that must be usable: a box is where the evidence is,
not a frame around degenerate cells."""


def propose_boxes(
    anomaly: np.ndarray,
    image_size: tuple[int, int],
    *,
    top_k: int = 5,
    valid: np.ndarray | None = None,
    min_contrast: float = 1.0,
    min_t: float = 6.0,
    nms_iou: float = 0.3,
    two_sided: bool = False,
    cell: int | None = None,
    smooth: float = 1.0,
    min_spread: float = 0.0,
    sides: tuple[float, ...] = BOX_SIDES,
) -> list[ScoredBox]:
    """Turn an anomaly map into at most ``top_k`` boxes on the image, most anomalous first.

    Cells that ``valid`` marks as degenerate (flat, clipped: see :func:`degenerate_cells`)
    and NaN cells take no part: the map is smoothed over the usable cells only (a region
    shifts many neighbouring cells a little, noise shifts single cells), standardised by
    the usable cells' median and MAD (the image's robust statistics), and every box of
    ``sides`` x ``sides`` shares of the map, at every cell position, is scored by its
    contrast with the rest of the image: the difference ``d`` of the mean z-scores inside
    and outside, and its t statistic ``d / sqrt(1/n_in + 1/n_out)`` over the usable cells.
    Boxes whose contrast reaches ``min_contrast`` and ``min_t`` are ranked by ``t``;
    overlapping ones are removed by non-maximum suppression, and so are looser frames
    around a better box (holding most of it), so a small sharp speck and a
    large faint drift both lose to a region that differs clearly over its whole extent.

    Parameters
    ----------
    anomaly : ndarray, shape (h, w)
        Higher means more anomalous. Any resolution: a block map is scaled to the image.
    image_size : tuple of int
        ``(width, height)`` of the image (or view) the map covers.
    top_k : int
        Largest number of boxes returned.
    valid : ndarray of bool, shape (h, w), optional
        False for cells whose statistics say nothing (flat, saturated or black areas):
        they are left out of the image's statistics and of every box's.
    min_contrast : float
        Smallest difference of mean robust z-scores, inside against outside, reported.
    min_t : float
        Smallest t statistic of that difference reported.
    nms_iou : float
        Boxes overlapping a better one by more than this IoU are dropped.
    two_sided : bool
        Also treat unusually *low* values as anomalous (e.g. a region with no noise).
    cell : int, optional
        Pixels per map cell when the map is a block map whose cells cover
        ``cell x cell`` pixels from the top-left corner; otherwise the map is taken
        to span the whole image.
    smooth : float
        Standard deviation, in cells, of the Gaussian applied to the map; 0 for none.
    min_spread : float
        Floor for the smoothed map's robust spread (see :func:`robust_z`), in the
        map's units: a map that is flat to within this yields no boxes.
    sides : tuple of float
        Box widths and heights tried, as shares of the map's width and height.

    Returns
    -------
    list of ScoredBox
        Best first: the score maps the t statistic to [0, 1) as ``t / (t + 10)``; the
        contrast is kept beside it. The t statistic grows with the number of cells, so
        scores rank boxes within one image; the contrast compares images.

    References
    ----------
    .. [1] Lampert, C. H., Blaschko, M. B. and Hofmann, T. "Efficient subwindow search:
           a branch and bound framework for object localization." IEEE TPAMI 31(12),
           2009 (scoring every box with integral images).
    .. [2] Neubeck, A. and Van Gool, L. "Efficient Non-Maximum Suppression."
           ICPR 2006.
    """
    values = np.asarray(anomaly, dtype=np.float64)
    usable = np.isfinite(values)
    if valid is not None:
        usable &= np.asarray(valid, dtype=bool)
    if int(usable.sum()) < MIN_CELLS:
        return []
    z = _standardised(values, usable, smooth=smooth, min_spread=min_spread)
    found = _box_search(
        z, usable, sides=sides, two_sided=two_sided, min_contrast=min_contrast, min_t=min_t
    )
    if not found:
        return []
    scale = _pixels_per_cell(values.shape, image_size, cell)
    h, w = values.shape
    t, contrast, y, x, bh, bw = (np.array(column) for column in zip(*found, strict=True))
    corners = _cell_corners(y, x, bh, bw, scale=scale, image_size=image_size)
    scores = [float(v) for v in t / (t + T_SCALE)]
    kept: list[ScoredBox] = []
    for i in _nms_order(corners, scores, iou=nms_iou):
        box = Box(**dict(zip(("x0", "y0", "x1", "y1"), corners[:, i].tolist(), strict=True)))
        if all(_share_inside(k.box, box) <= ENCLOSES for k in kept):
            kept.append(
                ScoredBox(
                    box=box,
                    score=scores[i],
                    area_fraction=int(bh[i]) * int(bw[i]) / (h * w),
                    contrast=float(contrast[i]),
                )
            )
            if len(kept) == top_k:
                break
    return kept


def _share_inside(box: Box, other: Box) -> float:
    """Share of ``box``'s area that lies inside ``other``."""
    w = min(box.x1, other.x1) - max(box.x0, other.x0)
    h = min(box.y1, other.y1) - max(box.y0, other.y0)
    return max(0, w) * max(0, h) / box.area


def contrast_score(proposals: list[ScoredBox]) -> float:
    """Return how strongly the first box differs from the rest, mapped to [0, 1).

    ``c / (c + 2)`` of its contrast ``c`` (robust z units): unlike the t statistic that
    ranks boxes, it does not grow with the image's size, so it compares images. 0 when
    there is no box.
    """
    if not proposals:
        return 0.0
    contrast = max(0.0, proposals[0].contrast)
    return contrast / (contrast + 2.0)


def degenerate_cells(
    gray: np.ndarray,
    cell: int,
    *,
    min_std: float = 2.0,
    clip: tuple[float, float] = (3.0, 252.0),
    max_clipped: float = 0.3,
) -> np.ndarray:
    """Return True for the ``cell x cell`` cells whose local statistics are degenerate.

    A flat cell (sky, a wall, a black border) has no texture, noise or compression
    detail to measure, and a cell of clipped highlights or shadows has lost it: their
    residual statistics are near zero whatever happened to them, so they must neither
    shape the image's statistics nor be reported as anomalous.

    Parameters
    ----------
    gray : ndarray, shape (H, W)
        Luminance in 8-bit levels.
    cell : int
        Cell side in pixels; cells start at the top-left corner (edges cropped).
    min_std : float
        Cells whose standard deviation is below this (8-bit levels) are flat.
    clip : tuple of float
        Levels at or below the first, or at or above the second, count as clipped.
    max_clipped : float
        Cells with a larger share of clipped pixels are degenerate.

    Returns
    -------
    ndarray of bool, shape (H // cell, W // cell)
    """
    values = np.asarray(gray, dtype=np.float32)
    mean = block_reduce_mean(values, cell)
    spread = np.sqrt(np.maximum(block_reduce_mean(values * values, cell) - mean * mean, 0.0))
    clipped = block_reduce_mean(((values <= clip[0]) | (values >= clip[1])).astype(np.uint8), cell)
    return (spread < min_std) | (clipped > max_clipped)


def _pixels_per_cell(
    map_shape: tuple[int, ...], image_size: tuple[int, int], cell: int | None
) -> tuple[float, float]:
    """Return the image pixels ``(sx, sy)`` one map cell covers."""
    h, w = map_shape
    width, height = image_size
    return (float(cell), float(cell)) if cell else (width / w, height / h)


def _standardised(
    values: np.ndarray, usable: np.ndarray, *, smooth: float, min_spread: float
) -> np.ndarray:
    """Smooth the usable cells, then return their robust z-scores (0 on unusable cells)."""
    filled = np.where(usable, values, 0.0)
    if smooth > 0:
        # Normalised convolution: unusable cells neither pull nor dilute their neighbours.
        weight = ndimage.gaussian_filter(usable.astype(np.float64), smooth)
        filled = ndimage.gaussian_filter(filled, smooth) / np.maximum(weight, 1e-6)
    z = np.full(values.shape, np.nan)
    z[usable] = robust_z(filled[usable], min_spread=min_spread)
    return np.where(usable, z, 0.0)


def _box_search(
    z: np.ndarray,
    usable: np.ndarray,
    *,
    sides: tuple[float, ...],
    two_sided: bool,
    min_contrast: float,
    min_t: float,
) -> list[tuple[float, float, int, int, int, int]]:
    """Score every box of the given sides against the rest; return local maxima that pass.

    Returns ``(t, contrast, y, x, bh, bw)`` in cells, best first. Sums over boxes come
    from integral images, so each box size costs one pass over the map.
    """
    h, w = z.shape
    sums = np.zeros((h + 1, w + 1))
    sums[1:, 1:] = z.cumsum(axis=0).cumsum(axis=1)
    counts = np.zeros((h + 1, w + 1))
    counts[1:, 1:] = usable.cumsum(axis=0).cumsum(axis=1)
    total, n_total = sums[-1, -1], counts[-1, -1]
    heights = sorted({max(1, round(f * h)) for f in sides if round(f * h) < h})
    widths = sorted({max(1, round(f * w)) for f in sides if round(f * w) < w})
    found: list[tuple[float, float, int, int, int, int]] = []
    if not heights or not widths:
        return found
    for bh in heights:
        # Every width at once: the windows of width bw fill the first w - bw + 1 columns.
        rows, span = h - bh + 1, w - widths[0] + 1
        inside = np.zeros((len(widths), rows, span))
        n_in = np.zeros((len(widths), rows, span))
        ok = np.zeros((len(widths), rows, span), dtype=bool)
        least = np.zeros((len(widths), 1, 1))
        for i, bw in enumerate(widths):
            inside[i, :, : w - bw + 1] = _window_sums(sums, bh, bw)
            n_in[i, :, : w - bw + 1] = _window_sums(counts, bh, bw)
            ok[i, :, : w - bw + 1] = True
            least[i] = MIN_USABLE * bh * bw
        n_out = n_total - n_in
        ok &= (n_in >= least) & (n_out >= MIN_CELLS) & (n_in >= 2)
        n_in_, n_out_ = np.maximum(n_in, 1.0), np.maximum(n_out, 1.0)
        contrast = inside / n_in_ - (total - inside) / n_out_
        if two_sided:
            contrast = np.abs(contrast)
        t = np.where(ok, contrast / np.sqrt(1.0 / n_in_ + 1.0 / n_out_), 0.0)
        passed = ok & (contrast >= min_contrast) & (t >= min_t)
        for j in np.flatnonzero(passed.any(axis=(1, 2))).tolist():
            bw = widths[j]
            t_j, passed_j = t[j, :, : w - bw + 1], passed[j, :, : w - bw + 1]
            peak = ndimage.maximum_filter(t_j, size=(max(1, bh // 2), max(1, bw // 2)))
            for y, x in zip(*np.nonzero(passed_j & (t_j == peak)), strict=True):
                found.append((float(t_j[y, x]), float(contrast[j, y, x]), int(y), int(x), bh, bw))
    found.sort(key=lambda f: (-f[0], f[2], f[3], f[4], f[5]))
    return found


def _window_sums(integral: np.ndarray, bh: int, bw: int) -> np.ndarray:
    """Return the sums over every ``bh x bw`` window of an integral image (top-left indexed)."""
    return integral[bh:, bw:] - integral[:-bh, bw:] - integral[bh:, :-bw] + integral[:-bh, :-bw]


def _cell_corners(
    y: np.ndarray,
    x: np.ndarray,
    bh: np.ndarray,
    bw: np.ndarray,
    *,
    scale: tuple[float, float],
    image_size: tuple[int, int],
) -> np.ndarray:
    """Map boxes of cells to image pixels: at least 1 pixel wide, clipped.

    Returns the ``(x0, y0, x1, y1)`` rows of an int64 array of shape (4, n).
    """
    sx, sy = scale
    width, height = image_size
    x0 = np.floor(x * sx).astype(np.int64)
    y0 = np.floor(y * sy).astype(np.int64)
    x1 = np.minimum(width, np.maximum(np.ceil((x + bw) * sx).astype(np.int64), x0 + 1))
    y1 = np.minimum(height, np.maximum(np.ceil((y + bh) * sy).astype(np.int64), y0 + 1))
    return np.stack([x0, y0, x1, y1])


def nms(boxes: list[ScoredBox], *, iou: float = 0.3) -> list[ScoredBox]:
    """Greedy non-maximum suppression, best score first (ties: larger area first)."""
    if not boxes:
        return []
    corners = np.array([b.box.as_tuple() for b in boxes], dtype=np.int64).T
    return [boxes[i] for i in _nms_order(corners, [b.score for b in boxes], iou=iou)]


def _nms_order(corners: np.ndarray, scores: list[float], *, iou: float) -> list[int]:
    """Return the indices :func:`nms` keeps, best first.

    ``corners`` holds the boxes' ``(x0, y0, x1, y1)`` as rows of shape (4, n). Ordered
    by score (ties: larger area, then the corners), a box is kept when its IoU with every
    box kept before it is at most ``iou``: each kept box removes the later ones it
    overlaps by more, in one pass over them.
    """
    x0, y0, x1, y1 = corners
    area = (x1 - x0) * (y1 - y0)
    keys = [(-s, -int(a), *c) for s, a, c in zip(scores, area, corners.T.tolist(), strict=True)]
    order = np.array(sorted(range(len(scores)), key=keys.__getitem__), dtype=np.int64)
    kept: list[int] = []
    while order.size:
        best, rest = int(order[0]), order[1:]
        kept.append(best)
        ix = np.maximum(0, np.minimum(x1[best], x1[rest]) - np.maximum(x0[best], x0[rest]))
        iy = np.maximum(0, np.minimum(y1[best], y1[rest]) - np.maximum(y0[best], y0[rest]))
        inter = ix * iy
        order = rest[inter / (area[best] + area[rest] - inter) <= iou]
    return kept


def block_reduce_mean(values: np.ndarray, block: int) -> np.ndarray:
    """Mean over non-overlapping ``block x block`` cells (edges cropped to whole blocks).

    Parameters
    ----------
    values : ndarray, shape (H, W)
    block : int

    Returns
    -------
    ndarray, shape (H // block, W // block)
    """
    h, w = values.shape[0] // block * block, values.shape[1] // block * block
    if h == 0 or w == 0:
        return np.zeros((max(1, h // block), max(1, w // block)), dtype=np.float64)
    if values.dtype.kind in "ub" and values.dtype.itemsize == 1:
        # 8-bit values: exact integer sums, along rows first (contiguous), then down; the
        # same means, faster than one float reduction over two strided axes.
        rows = values[:h, :w].reshape(h, w // block, block).sum(axis=2, dtype=np.uint32)
        sums = rows.reshape(h // block, block, w // block).sum(axis=1, dtype=np.uint64)
        return sums / float(block * block)
    if block <= 4:
        # Small cells: one float64 sum over the cell's strided planes, row by row (a
        # reduction over two short strided axes is an order of magnitude slower).
        sums = values[:h:block, :w:block].astype(np.float64)
        for dy in range(block):
            for dx in range(block):
                if dy or dx:
                    sums += values[dy:h:block, dx:w:block]
        return sums / float(block * block)
    cells = values[:h, :w].reshape(h // block, block, w // block, block)
    return cells.mean(axis=(1, 3), dtype=np.float64)
