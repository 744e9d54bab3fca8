"""Quantization tables: what the file's header says, and the nearest IJG quality."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, JpegImagePlugin

from sleuth.tools.base import Finding, MetricValue

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


IJG_LUMA_TABLES = np.stack([ijg_table(IJG_LUMA, q) for q in range(1, 101)])
"""``ijg_table(IJG_LUMA, q)`` at index ``q - 1``, for every quality."""
IJG_CHROMA_TABLES = np.stack([ijg_table(IJG_CHROMA, q) for q in range(1, 101)])
"""``ijg_table(IJG_CHROMA, q)`` at index ``q - 1``, for every quality."""


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
    luma_diff = np.abs(np.asarray(luma, dtype=np.int64) - IJG_LUMA_TABLES).sum(axis=(1, 2))
    chroma_diff = [
        np.abs(np.asarray(c, dtype=np.int64) - IJG_CHROMA_TABLES).sum(axis=(1, 2)) for c in chroma
    ]
    total = luma_diff + sum(chroma_diff, np.zeros_like(luma_diff))  # exact integer sums
    entries = 64 * (1 + len(chroma))
    best = int(np.argmin(total[::-1]))  # from quality 100 down: ties go to the higher quality
    error = int(total[::-1][best]) / entries
    return QualityFit(quality=100 - best, error=error, exact=error == 0.0)


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


def table_finding(header: JpegHeader, fit: QualityFit, resaved: bool) -> Finding:
    """Describe the tables: IJG-standard (a library default?) or custom, and what that says.

    ``resaved`` (double compression or a shifted grid was found) means custom tables
    only describe the last save.
    """
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
