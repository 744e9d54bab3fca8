"""Box proposal: from an anomaly map to the top-k boxes. One function, used by every tool."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.filters import apply_hysteresis_threshold

from sleuth.tools.box import Box


@dataclass(frozen=True)
class ScoredBox:
    """A proposed box and its score.

    Attributes
    ----------
    box : Box
        In the pixels of the image the map was computed for.
    score : float
        How far the component's peak exceeds the threshold, mapped to [0, 1).
    area_fraction : float
        Share of the image the box covers.
    """

    box: Box
    score: float
    area_fraction: float


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


def propose_boxes(
    anomaly: np.ndarray,
    image_size: tuple[int, int],
    *,
    top_k: int = 5,
    z_threshold: float = 3.0,
    min_area_fraction: float = 0.002,
    max_area_fraction: float = 0.6,
    nms_iou: float = 0.3,
    two_sided: bool = False,
    cell: int | None = None,
    smooth: float = 1.0,
    min_spread: float = 0.0,
) -> list[ScoredBox]:
    """Turn an anomaly map into at most ``top_k`` boxes on the image.

    The map is smoothed (a region shifts many neighbouring cells a little, noise
    shifts single cells), standardised with a robust z-score, thresholded with
    hysteresis, split into
    8-connected components, and each component's bounding box is scored by its
    mean exceedance. Overlapping boxes are removed by non-maximum suppression.

    Parameters
    ----------
    anomaly : ndarray, shape (h, w)
        Higher means more anomalous. Any resolution: a block map is scaled to the image.
    image_size : tuple of int
        ``(width, height)`` of the image (or view) the map covers.
    top_k : int
        Largest number of boxes returned.
    z_threshold : float
        Components must have a cell whose robust z-score exceeds this; they extend
        over the connected cells above three quarters of it.
    min_area_fraction, max_area_fraction : float
        Components smaller or larger than these shares of the map are dropped
        (speckle; a "region" that is the whole image says nothing about where).
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

    Returns
    -------
    list of ScoredBox
        Best first. Scores map the component's peak exceedance ``z - z_threshold``
        to [0, 1) as ``e / (e + 2)``.

    References
    ----------
    .. [1] Canny, J. "A computational approach to edge detection." IEEE TPAMI 8(6),
           1986 (hysteresis thresholding).
    .. [2] Neubeck, A. and Van Gool, L. "Efficient Non-Maximum Suppression."
           ICPR 2006.
    """
    z = _standardised(anomaly, smooth=smooth, min_spread=min_spread, two_sided=two_sided)
    mask, labels, count = _components(z, z_threshold)
    if count == 0:
        return []
    candidates = _scored_components(
        z,
        mask,
        labels,
        count,
        z_threshold=z_threshold,
        area_range=(min_area_fraction, max_area_fraction),
        scale=_pixels_per_cell(anomaly.shape, image_size, cell),
        image_size=image_size,
    )
    return nms(candidates, iou=nms_iou)[:top_k]


def _pixels_per_cell(
    map_shape: tuple[int, ...], image_size: tuple[int, int], cell: int | None
) -> tuple[float, float]:
    """Return the image pixels ``(sx, sy)`` one map cell covers."""
    h, w = map_shape
    width, height = image_size
    return (float(cell), float(cell)) if cell else (width / w, height / h)


def _standardised(
    anomaly: np.ndarray, *, smooth: float, min_spread: float, two_sided: bool
) -> np.ndarray:
    """Smooth the map, then return its robust z-scores (absolute if two-sided, NaN as 0)."""
    values = np.asarray(anomaly, dtype=np.float64)
    if smooth > 0:
        values = ndimage.gaussian_filter(
            np.nan_to_num(values, nan=float(np.nanmedian(values))), smooth
        )
    z = robust_z(values, min_spread=min_spread)
    if two_sided:
        z = np.abs(z)
    return np.nan_to_num(z, nan=0.0)


def _components(z: np.ndarray, z_threshold: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Return the hysteresis mask of ``z``, its 8-connected labels and their count."""
    # Hysteresis: components seeded above the threshold grow through cells above 3/4
    # of it, so a region is boxed whole, not only at its strongest cells.
    mask = apply_hysteresis_threshold(z, z_threshold * 0.75, z_threshold)
    labels, count = ndimage.label(mask, structure=np.ones((3, 3)))
    return mask, labels, count


def _scored_components(
    z: np.ndarray,
    mask: np.ndarray,
    labels: np.ndarray,
    count: int,
    *,
    z_threshold: float,
    area_range: tuple[float, float],
    scale: tuple[float, float],
    image_size: tuple[int, int],
) -> list[ScoredBox]:
    """Box and score each labelled component whose share of the map is in ``area_range``.

    ``scale`` is the image pixels per map cell ``(sx, sy)``; the score maps the
    component's peak exceedance ``e = z - z_threshold`` to ``e / (e + 2)``.
    """
    h, w = labels.shape
    min_area_fraction, max_area_fraction = area_range
    index = np.arange(1, count + 1)
    sizes = ndimage.sum_labels(mask, labels, index)
    peaks = ndimage.maximum(z, labels, index)
    candidates: list[ScoredBox] = []
    for label, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None:
            continue
        frac = sizes[label - 1] / (h * w)
        if not (min_area_fraction <= frac <= max_area_fraction):
            continue
        ys, xs = sl
        excess = max(0.0, float(peaks[label - 1]) - z_threshold)
        candidates.append(
            ScoredBox(
                box=_cell_box(ys, xs, scale=scale, image_size=image_size),
                score=excess / (excess + 2.0),
                area_fraction=float(frac),
            )
        )
    return candidates


def _cell_box(
    ys: slice, xs: slice, *, scale: tuple[float, float], image_size: tuple[int, int]
) -> Box:
    """Map a component's cell slices to image pixels: at least 1 pixel wide, clipped."""
    sx, sy = scale
    width, height = image_size
    return Box(
        x0=int(np.floor(xs.start * sx)),
        y0=int(np.floor(ys.start * sy)),
        x1=min(width, max(int(np.ceil(xs.stop * sx)), int(np.floor(xs.start * sx)) + 1)),
        y1=min(height, max(int(np.ceil(ys.stop * sy)), int(np.floor(ys.start * sy)) + 1)),
    )


def nms(boxes: list[ScoredBox], *, iou: float = 0.3) -> list[ScoredBox]:
    """Greedy non-maximum suppression, best score first (ties: larger area first)."""
    ordered = sorted(boxes, key=lambda b: (-b.score, -b.box.area, b.box.as_tuple()))
    kept: list[ScoredBox] = []
    for cand in ordered:
        if all(cand.box.iou(k.box) <= iou for k in kept):
            kept.append(cand)
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
    cells = values[:h, :w].reshape(h // block, block, w // block, block)
    return cells.mean(axis=(1, 3), dtype=np.float64)
