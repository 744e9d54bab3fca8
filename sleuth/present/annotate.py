"""Numbered boxes on a downscaled copy of an image: what a verdict's ``box 1``, ``box 2`` are.

The picture is the one a person (the HTML report) or a client of the MCP server sees, so it
is small, fast to make, and the same pixels every time for the same input.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from sleuth.tools.box import Box

REGION_COLOUR = (255, 196, 0)
"""Outline of the numbered regions (amber)."""
EVIDENCE_COLOUR = (0, 200, 255)
"""Outline of the evidence boxes (cyan), thinner than the regions'."""
EDGE_COLOUR = (0, 0, 0)
"""The one-pixel rim around every outline, and the outline of the label text."""
LABEL_COLOUR = (255, 255, 255)
"""Fill of the label text."""

_Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def annotate(
    rgb: np.ndarray,
    regions: Sequence[Box],
    *,
    evidence_boxes: Sequence[Box] = (),
    max_side: int = 1600,
) -> Image.Image:
    """Draw numbered region boxes, and thinner evidence boxes, on a downscaled copy.

    Parameters
    ----------
    rgb : ndarray of uint8, shape (H, W, 3)
        The whole image. It is read, never modified.
    regions : sequence of Box
        Numbered regions in original pixels: ``regions[0]`` is labelled 1, the next 2, ...
    evidence_boxes : sequence of Box, optional
        Further boxes in original pixels, drawn thinner, in another colour and unnumbered,
        under the regions. Duplicates are drawn once.
    max_side : int, optional
        Longest side of the result in pixels; smaller images keep their size.

    Returns
    -------
    PIL.Image.Image
        A new RGB image of size ``(round(W * s), round(H * s))`` with
        ``s = min(1, max_side / max(W, H))``; boxes are scaled by ``s`` and clipped to it.

    Raises
    ------
    ValueError
        When ``rgb`` is not an ``(H, W, 3)`` uint8 array or ``max_side`` is below 16.

    Notes
    -----
    Each box is outlined in its colour with a one-pixel dark rim on both sides, and each
    label is white text with a dark outline above the box's top-left corner (inside the box
    when there is no room above), so both read on light, dark and busy backgrounds. The
    downscaled pixels are for looking at, not for analysis: a large reduction keeps every
    k-th pixel before a box filter, which keeps 12 MP to a few tens of milliseconds.
    """
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3:
        raise ValueError("annotate takes an (H, W, 3) uint8 array")
    if rgb.shape[2] != 3 or min(rgb.shape[:2]) < 1:
        raise ValueError(f"annotate takes an (H, W, 3) uint8 array, not shape {rgb.shape}")
    if max_side < 16:
        raise ValueError(f"max_side must be at least 16, not {max_side}")
    height, width = rgb.shape[:2]
    scale = min(1.0, max_side / max(width, height))
    canvas = _downscaled(rgb, scale)
    draw = ImageDraw.Draw(canvas)
    long_side = max(canvas.size)
    line = max(2, round(long_side / 400))
    for box in dict.fromkeys(evidence_boxes):
        rect = _scaled(box, scale, canvas.size)
        if rect is not None:
            _outline(draw, rect, EVIDENCE_COLOUR, max(1, line // 2))
    font = _font(max(16, round(long_side / 36)))
    rects = [_scaled(box, scale, canvas.size) for box in regions]
    for rect in rects:
        if rect is not None:
            _outline(draw, rect, REGION_COLOUR, line)
    for number, rect in enumerate(rects, start=1):
        if rect is not None:
            _label(draw, rect, str(number), font, inset=line + 2, width=canvas.width)
    return canvas


def _downscaled(rgb: np.ndarray, scale: float) -> Image.Image:
    """Return a new RGB image of the array, resized by ``scale`` (at most 1).

    Large reductions first keep every k-th pixel (k = floor(1 / scale)), then average the
    rest of the way (box filter): a display picture in tens of milliseconds on 12 MP, not a
    resampling fit for analysis.
    """
    height, width = rgb.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    step = math.floor(1.0 / scale + 1e-9)
    if step >= 2:
        # Pixels as 3-byte items: a strided copy of whole pixels is twice as fast.
        packed = np.ascontiguousarray(rgb).reshape(height, width * 3).view("V3")
        kept = np.ascontiguousarray(packed[::step, ::step])
        image = Image.fromarray(kept.view(np.uint8).reshape(kept.shape[0], kept.shape[1], 3))
    else:
        image = Image.fromarray(np.ascontiguousarray(rgb))
    if image.size == size:
        return image.copy() if step < 2 else image
    return image.resize(size, Image.Resampling.BOX)


def _scaled(box: Box, scale: float, size: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """Return the box's inclusive pixel corners on the canvas, or None when it is outside."""
    width, height = size
    x0 = min(math.floor(box.x0 * scale), width - 1)
    y0 = min(math.floor(box.y0 * scale), height - 1)
    x1 = min(math.ceil(box.x1 * scale), width) - 1
    y1 = min(math.ceil(box.y1 * scale), height) - 1
    if box.x0 * scale >= width or box.y0 * scale >= height:
        return None
    return (x0, y0, max(x0, x1), max(y0, y1))


def _outline(
    draw: ImageDraw.ImageDraw,
    rect: tuple[int, int, int, int],
    colour: tuple[int, int, int],
    width: int,
) -> None:
    """Outline ``rect`` inward with ``width`` pixels of colour between two dark rims."""
    x0, y0, x1, y1 = rect
    draw.rectangle((x0 - 1, y0 - 1, x1 + 1, y1 + 1), outline=EDGE_COLOUR, width=width + 2)
    draw.rectangle(rect, outline=colour, width=width)


def _label(
    draw: ImageDraw.ImageDraw,
    rect: tuple[int, int, int, int],
    text: str,
    font: _Font,
    *,
    inset: int,
    width: int,
) -> None:
    """Write ``text`` at the box's top-left corner: above it when there is room, else inside."""
    stroke = max(1, round(getattr(font, "size", 12) / 8))
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font, stroke_width=stroke)
    text_w, text_h = right - left, bottom - top
    x0, y0, _, _ = rect
    x = min(x0, max(0, width - text_w)) - left
    above = y0 - text_h - 2
    y = (above if above >= 0 else y0 + inset) - top
    draw.text(
        (x, y), text, fill=LABEL_COLOUR, font=font, stroke_width=stroke, stroke_fill=EDGE_COLOUR
    )


@functools.cache
def _font(size: int) -> _Font:
    """Return Pillow's built-in font at ``size`` pixels (a bitmap font without FreeType)."""
    return ImageFont.load_default(size=size)
