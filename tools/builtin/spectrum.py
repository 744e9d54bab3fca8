"""``spectrum``: periodic traces of upsampling in the frequency domain."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy import fft, ndimage

from sleuth.tools.base import Finding, ToolContext, ToolResult, forensic_tool, too_small
from sleuth.tools.image import LoadedImage

# Kirchner's fixed linear predictor: each pixel from its 8 neighbours.
PREDICTOR = np.array([[-0.25, 0.5, -0.25], [0.5, 0.0, 0.5], [-0.25, 0.5, -0.25]], np.float32)
MIN_TILE = 64
FREQUENCIES = (1 / 8, 1 / 4, 1 / 3, 3 / 8, 1 / 2)
"""Lattice frequencies tested, in cycles per pixel (periods 8, 4, 3, 8/3, 2)."""
STRONG = 0.8
"""log10 prominence above which a peak counts as part of a lattice (x6.3)."""


class SpectrumParams(BaseModel):
    """Parameters of :func:`spectrum`."""

    model_config = ConfigDict(extra="forbid")

    tile: int = Field(512, ge=64, le=1024, description="Side of the analysed tiles, pixels.")
    max_tiles: int = Field(9, ge=1, le=36, description="Most tiles averaged.")


def tile_origins(height: int, width: int, tile: int, max_tiles: int) -> list[tuple[int, int]]:
    """Return up to ``max_tiles`` top-left corners of ``tile``-sized tiles on an even grid.

    Corners are multiples of 8, so every tile has the same phase relative to an 8-pixel
    lattice (JPEG blocks, latent-diffusion upsampling).
    """
    per_axis = max(1, int(np.sqrt(max_tiles)))
    ys = np.linspace(0, height - tile, min(per_axis, max(1, height // tile)))
    xs = np.linspace(0, width - tile, min(per_axis, max(1, width // tile)))
    return [(int(y) // 8 * 8, int(x) // 8 * 8) for y in ys for x in xs]


def pmap_spectrum(gray: np.ndarray, *, tile: int, max_tiles: int) -> np.ndarray:
    """Average, over tiles, the magnitude spectrum of the predictor residue's p-map.

    Parameters
    ----------
    gray : ndarray, shape (H, W)
        Luminance; ``tile`` must not exceed either side.
    tile : int
        Tile side in pixels.
    max_tiles : int
        Most tiles averaged (on an even grid).

    Returns
    -------
    ndarray, shape (tile, tile)
        Unshifted spectrum (DC at ``[0, 0]``) of the p-map ``exp(-e**2)`` of the
        normalised residue ``e``; resampling makes ``e`` periodic and puts bright
        off-centre dots here.

    References
    ----------
    .. [1] Kirchner, M. "Fast and reliable resampling detection by spectral analysis
           of fixed linear predictor residue." ACM MM&Sec 2008.
    """
    window = np.outer(np.hanning(tile), np.hanning(tile)).astype(np.float32)
    acc = np.zeros((tile, tile), np.float64)
    height, width = gray.shape
    origins = tile_origins(height, width, tile, max_tiles)
    for y, x in origins:
        patch = gray[y : y + tile, x : x + tile]
        residue = patch - ndimage.correlate(patch, PREDICTOR, mode="reflect")
        scale = 1.4826 * np.median(np.abs(residue), overwrite_input=True) + 1e-3
        pmap = np.exp(-((residue / scale) ** 2))
        acc += np.abs(fft.fft2((pmap - pmap.mean()) * window))
    return acc / len(origins)


def periodic_peaks(profile: np.ndarray) -> dict[float, float]:
    """Return the prominence of a 1-D profile's spectrum at each lattice frequency.

    Prominence is ``log10(peak / median of the neighbouring bins)``, 0 when there is no
    peak. The profile is cut to a multiple of 24 so every frequency falls on a bin.

    Parameters
    ----------
    profile : ndarray, shape (L,)

    Returns
    -------
    dict
        Frequency in cycles per pixel (one of :data:`FREQUENCIES`) to prominence.
    """
    n = len(profile) // 24 * 24
    out = dict.fromkeys(FREQUENCIES, 0.0)
    if n < 48:
        return out
    centred = profile[:n] - profile[:n].mean()
    mag = np.abs(fft.rfft(centred * np.hanning(n)))
    half = max(4, n // 48)
    for freq in FREQUENCIES:
        k = round(freq * n)
        ring = np.r_[mag[max(1, k - half) : max(1, k - 2)], mag[k + 3 : k + half + 1]]
        if len(ring) < 4:
            continue
        peak = mag[max(0, k - 1) : k + 2].max()
        out[freq] = max(0.0, float(np.log10(peak / (np.median(ring) + 1e-12))))
    return out


def lattice_period(prominence: dict[float, float], *, strong: float) -> float | None:
    """Return the lattice period: one over the lowest frequency with a strong peak.

    A JPEG or latent-diffusion 8-pixel grid has its fundamental at 1/8 (plus
    harmonics); 2x upsampling has only 1/2; 1.5x resampling has 1/3.
    """
    present = [f for f, p in prominence.items() if p >= strong]
    return 1.0 / min(present) if present else None


def _score(prominence: float) -> float:
    """Map a log10 prominence to (0, 1): x4 (0.6) is ordinary, x8 (0.9) is 0.5, x20 is 0.96."""
    return float(1.0 / (1.0 + np.exp(-7.0 * (prominence - 0.9))))


@forensic_tool(
    name="spectrum",
    params=SpectrumParams,
    summary="Frequency analysis of the noise residual: looks for periodic peaks left by "
    "upsampling (resized images, GAN and diffusion decoders, e.g. the 8-pixel lattice of "
    "latent diffusion). Returns the periods found and a spectrum image.",
    caveat="JPEG compression also leaves 8x8-grid peaks, so 8-pixel peaks in a JPEG are "
    "ambiguous; any resize by the user also creates peaks; strong recompression or "
    "downscaling erases them.",
    score_meaning="Strength of the strongest periodic peak (0 = none, towards 1 = a "
    "pronounced lattice), discounted when it coincides with a JPEG grid.",
    cost="cheap",
    survey=True,
    aliases=("spectrum", "frequency", "fft", "fourier", "periodic"),
)
def spectrum(image: LoadedImage, params: SpectrumParams, ctx: ToolContext) -> ToolResult:
    """Find periodic resampling peaks in the analysed pixels."""
    gray = image.gray
    if (small := too_small(image, MIN_TILE)) is not None:
        return small
    height, width = gray.shape
    tile = min(params.tile, height, width)
    tile -= tile % 8
    peaks = dict.fromkeys(FREQUENCIES, 0.0)
    for profile in image.gray_profiles:
        for freq, value in periodic_peaks(profile).items():
            peaks[freq] = max(peaks[freq], value)
    prominence = max(peaks.values())
    period = lattice_period(peaks, strong=STRONG)
    score = _score(prominence)
    tiles = len(tile_origins(height, width, tile, params.max_tiles))
    caveats = [
        "periodicity measured on row and column profiles of the whole analysed area; "
        f"the spectrum image averages {tiles} tile(s) of {tile}x{tile} pixels"
    ]
    fits_8_grid = period is not None and round(8 / period, 6).is_integer()
    on_jpeg_grid = image.is_jpeg and fits_8_grid
    if on_jpeg_grid:
        score *= 0.5
        caveats.append(
            f"the file is a JPEG and a {period:g}-pixel period fits its 8x8 block grid, so "
            "this peak may come from compression"
        )
    if fits_8_grid and not image.is_jpeg:
        caveats.append(
            f"a {period:g}-pixel period fits an 8x8 grid, which JPEG compression also "
            "leaves, even in a file converted to another format later"
        )
    art = ctx.artifact(
        "pmap",
        _display(pmap_spectrum(gray, tile=tile, max_tiles=params.max_tiles)),
        kind="spectrum",
        description="Centred log-magnitude spectrum of the residue p-map; off-centre dots "
        "are periodic resampling traces.",
    )
    found = period is not None and score >= 0.5
    peak = f"peak x{10**prominence:.1f} above its neighbourhood"
    if period is None:
        summary = f"No pronounced periodic lattice (strongest {peak})."
    elif on_jpeg_grid:
        summary = f"A {period:g}-pixel periodic lattice ({peak}) that fits the JPEG 8x8 grid."
    else:
        summary = (
            f"Periodic lattice with a {period:g}-pixel period ({peak}): a trace of "
            "upsampling or block coding."
        )
    metrics: dict[str, float | bool | None] = {
        f"peak_period_{1 / f:.3g}": round(v, 4) for f, v in peaks.items()
    }
    metrics.update(
        {
            "period": period,
            "prominence": round(prominence, 4),
            "jpeg_grid": on_jpeg_grid,
        }
    )
    finding = Finding(
        summary=summary,
        score=round(score, 4),
        direction="ai" if found else "neutral",
        metrics=metrics,
        artifacts=[art.name],
        caveats=caveats,
    )
    return ToolResult(findings=[finding], artifacts=[art])


def _display(spec: np.ndarray) -> np.ndarray:
    """Centre and log-scale a spectrum into [0, 1] for viewing."""
    shown = np.log1p(fft.fftshift(spec))
    low, high = np.percentile(shown, [1, 99.9])
    return np.clip((shown - low) / (high - low + 1e-12), 0.0, 1.0)
