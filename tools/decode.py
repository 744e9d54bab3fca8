"""Pillow's part of loading: open with the accepted formats, take the displayed frame, make RGB8.

Everything here may run in a disposable worker process (:mod:`sleuth.tools.worker`), so it
writes its pixels into an array the caller allocates and returns only plain values.
Conversion works in bands of rows, so no whole-frame copy is made beyond Pillow's own
decoded frame and the uint8 output (in particular no float64 copy of a 16-bit frame).
"""

from __future__ import annotations

import hashlib
import io
import re
import struct
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from sleuth.tools.errors import ImageLoadError
from sleuth.tools.formats import refusal

BAND_PIXELS = 1 << 21
"""Pixels converted at a time (a band of rows of the output)."""

DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    RuntimeError,
    struct.error,
    IndexError,
    KeyError,
    TypeError,
    ZeroDivisionError,
    OverflowError,
)
"""What Pillow raises on damaged or hostile data (a fuzzed file reaches all of these)."""

SCALED_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I", "F"}
"""Modes whose samples are scaled to 8 bits instead of converted by Pillow."""

_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
"""EXIF orientation to the transposition that shows the image upright (as ImageOps)."""

Allocate = Callable[[tuple[int, int, int]], np.ndarray]


def decode_pixels(
    raw: bytes,
    *,
    accepted: tuple[str, ...],
    max_pixels: int,
    pages: int | None,
    allocate: Allocate,
) -> tuple[dict[str, Any], np.ndarray]:
    """Decode the frame a viewer shows first into a uint8 RGB array from ``allocate``.

    Parameters
    ----------
    raw : bytes
        The file.
    accepted : tuple of str
        Pillow format ids to try; no other format's code runs.
    max_pixels : int
        Largest canvas, checked from the header before decoding.
    pages : int, optional
        Page count of a TIFF, already counted (Pillow's count is quadratic).
    allocate : callable
        Returns a writable uint8 array of the given ``(height, width, 3)`` shape.

    Returns
    -------
    header : dict
        ``format``, ``mode``, ``orientation``, ``frames`` and ``notes``.
    rgb : ndarray of uint8, shape (H, W, 3)
        The array from ``allocate``, filled, upright by EXIF orientation.

    Raises
    ------
    ImageLoadError
        For a refused format, a canvas over ``max_pixels`` and any damaged data.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's warnings; the limits are our own
            return _decode(raw, accepted, max_pixels, pages, allocate)
    except ImageLoadError:
        raise
    except MemoryError:
        raise ImageLoadError("not enough memory to decode the image", reason="too_large") from None
    except DECODE_ERRORS as err:  # no logging: this may run in a forked child
        text = " ".join(str(err).split())[:200] or type(err).__name__
        reason = "truncated" if "truncated" in text.lower() else "unreadable"
        raise ImageLoadError(
            f"the image data is damaged or incomplete ({reason}): {text}", reason=reason
        ) from None


def too_many_pixels(width: int, height: int, max_pixels: int) -> ImageLoadError:
    """Return the refusal of a canvas over the pixel limit, naming sleuth's setting."""
    return ImageLoadError(
        f"the image declares {width}x{height} = {width * height / 1e6:.1f} MP, above the "
        f"limit of {max_pixels / 1e6:.1f} MP (setting max_image_pixels)",
        reason="too_many_pixels",
    )


def _decode(
    raw: bytes, accepted: tuple[str, ...], max_pixels: int, pages: int | None, allocate: Allocate
) -> tuple[dict[str, Any], np.ndarray]:
    try:
        img = Image.open(io.BytesIO(raw), formats=list(accepted))
    except UnidentifiedImageError:
        raise refusal(raw, accepted) from None
    except Image.DecompressionBombError as err:  # only when Pillow's own limit is on
        found = re.search(r"\((\d+) pixels\)", str(err))
        declared = int(found.group(1)) if found else 0
        limit = f"the limit of {max_pixels / 1e6:.1f} MP (setting max_image_pixels)"
        if declared <= max_pixels:  # in-process only: a worker switches Pillow's limit off
            limit = "Pillow's in-process limit (set decode_seconds above 0 to lift it)"
        raise ImageLoadError(
            f"the image declares {declared / 1e6:.1f} MP, above {limit}", reason="too_many_pixels"
        ) from None
    with img:
        width, height = img.size
        if width * height > max_pixels:
            raise too_many_pixels(width, height, max_pixels)
        notes: list[str] = []
        frames = _first_displayed_frame(img, pages, notes)
        mode = img.mode
        img.load()
        orientation = _orientation(img, notes)
        method = _TRANSPOSE.get(orientation)
        shape = (width, height) if orientation >= 5 else (height, width)
        rgb = allocate((shape[0], shape[1], 3))
        write_rgb8(img, rgb, method, notes)
        header = {"format": img.format or "unknown", "mode": mode, "orientation": orientation}
        return header | {"frames": frames, "notes": notes}, rgb


def _first_displayed_frame(img: Image.Image, pages: int | None, notes: list[str]) -> int:
    """Move to the frame viewers show first; return the number of displayed frames.

    Pillow opens at frame 0, which is the displayed first frame everywhere except an
    APNG whose default (IDAT) image is not part of the animation: viewers that play
    APNG never show it, so the first animation frame (Pillow's frame 1) is analysed and
    a note says when the hidden image differs from it. HEIF opens at its primary image.
    """
    if img.format == "TIFF":  # never Pillow's quadratic count
        frames = max(pages or 0, 1)
    else:
        frames = int(getattr(img, "n_frames", 1) or 1)
    if img.format == "PNG" and img.info.get("default_image") and frames > 1:
        hidden = _digest(img)
        img.seek(1)
        frames -= 1
        if _digest(img) != hidden:
            notes.append(
                "APNG with a hidden default image: the image shown by viewers without "
                "animation support differs from the first animation frame; the first "
                "animation frame (what APNG viewers display) is analysed"
            )
    if frames > 1:
        kind = "images; only the primary one" if img.format == "HEIF" else "frames; only the first"
        notes.append(f"the file has {frames} {kind} is analysed")
    return frames


def _digest(img: Image.Image) -> str:
    """Hash the current frame's RGBA pixels band by band (no whole-frame copy)."""
    img.load()
    digest = hashlib.sha256()
    width, height = img.size
    rows = max(1, BAND_PIXELS // max(width, 1))
    for top in range(0, height, rows):
        band = img.crop((0, top, width, min(height, top + rows)))
        digest.update(band.convert("RGBA").tobytes())
    return digest.hexdigest()


def _orientation(img: Image.Image, notes: list[str]) -> int:
    value = img.getexif().get(0x0112, 1)
    try:
        orientation = int(value or 1)
    except (TypeError, ValueError):
        notes.append("ignored an EXIF orientation that is not a number")
        return 1
    if orientation not in range(1, 9):
        notes.append(f"ignored invalid EXIF orientation {orientation}")
        return 1
    if orientation != 1:
        notes.append(f"rotated upright by EXIF orientation {orientation}")
    return orientation


def write_rgb8(
    img: Image.Image, out: np.ndarray, method: Image.Transpose | None, notes: list[str]
) -> None:
    """Convert a loaded frame to 8-bit RGB into ``out``, band by band, noting what was lost.

    16-bit samples are rounded to the nearest 8-bit value (``v / 257``); 32-bit integer
    and float samples are scaled from 0..65535 when any exceeds 255, else taken as
    0..255. Alpha is dropped (without compositing); other modes are converted by Pillow.

    Parameters
    ----------
    img : PIL.Image.Image
        A loaded frame.
    out : ndarray of uint8, shape (H, W, 3)
        Written in place; ``(H, W)`` is the frame's size after ``method``.
    method : PIL.Image.Transpose, optional
        The transposition that shows the frame upright.
    notes : list of str
        Appended to.
    """
    mode = img.mode
    convert = _converter(img, notes)
    has_alpha = mode in {"RGBA", "LA", "PA", "RGBa", "La"}
    palette_alpha = mode == "P" and "transparency" in img.info
    rows = max(1, BAND_PIXELS // max(out.shape[1], 1))
    not_opaque = 0
    for top in range(0, out.shape[0], rows):
        bottom = min(out.shape[0], top + rows)
        whole = method is None and top == 0 and bottom == out.shape[0]
        band = img if whole else img.crop(_source_box(method, img.size, top, bottom))
        if method is not None:
            band = band.transpose(method)
        if has_alpha or palette_alpha:
            alpha = (band.convert("RGBA") if palette_alpha else band).getchannel("A")
            not_opaque += int(np.count_nonzero(np.asarray(alpha) < 255))
        out[top:bottom] = convert(band)
    if not_opaque:
        notes.append(f"alpha channel dropped ({not_opaque / max(out.size // 3, 1):.0%} of "
                     "pixels not opaque)")  # fmt: skip
    if mode == "CMYK":
        notes.append("converted from CMYK to RGB")
    elif mode not in SCALED_MODES | {"RGB", "RGBA", "L", "P", "LA", "1", "PA"}:
        notes.append(f"converted from {mode} to RGB")


def _converter(img: Image.Image, notes: list[str]) -> Callable[[Image.Image], np.ndarray]:
    """Return a function from a band of ``img`` to uint8 pixels (grey ones broadcast)."""
    mode = img.mode
    if mode not in SCALED_MODES:
        return lambda band: np.asarray(band if band.mode == "RGB" else band.convert("RGB"))
    notes.append(f"{mode} samples scaled to 8 bits")
    if mode.startswith("I;16"):
        # round(v * 255 / 65535) = round(v / 257), exact in integers (no ties for integer v)
        return lambda band: ((np.asarray(band, np.uint32) + 128) // 257).astype(np.uint8)[..., None]
    scale = 255.0 / (65535.0 if _band_max(img) > 255 else 255.0)

    def scaled(band: Image.Image) -> np.ndarray:
        values = np.rint(np.asarray(band, np.float64) * scale)
        return np.clip(np.nan_to_num(values), 0, 255).astype(np.uint8)[..., None]

    return scaled


def _band_max(img: Image.Image) -> float:
    """Largest sample of a 32-bit frame, NaN ignored, read band by band."""
    width, height = img.size
    rows = max(1, BAND_PIXELS // max(width, 1))
    top = float("-inf")
    for y in range(0, height, rows):
        band = np.asarray(img.crop((0, y, width, min(height, y + rows))))
        if band.size:
            top = max(top, float(np.fmax.reduce(band, axis=None)))
    return top


def _source_box(
    method: Image.Transpose | None, size: tuple[int, int], top: int, bottom: int
) -> tuple[int, int, int, int]:
    """Return the box of the stored frame that ``method`` turns into rows ``top:bottom``."""
    width, height = size
    if method in (None, Image.Transpose.FLIP_LEFT_RIGHT):
        return (0, top, width, bottom)
    if method in (Image.Transpose.ROTATE_180, Image.Transpose.FLIP_TOP_BOTTOM):
        return (0, height - bottom, width, height - top)
    if method in (Image.Transpose.TRANSPOSE, Image.Transpose.ROTATE_270):
        return (top, 0, bottom, height)
    return (width - bottom, 0, width - top, height)  # TRANSVERSE, ROTATE_90
