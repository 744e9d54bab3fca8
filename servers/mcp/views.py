"""Images sent to an assistant: JPEG views sized to what the answer needs, within a budget."""

from __future__ import annotations

import base64
import io

import numpy as np
from mcp_types import ImageContent
from PIL import Image

VIEW_SIDE = 1024
"""Longest side of a view, before the budget shrinks it."""
QUALITIES = (85, 75, 65)
"""JPEG qualities tried, best first, before a view is shrunk further."""


def jpeg_view(picture: Image.Image | np.ndarray, budget: int, max_side: int = VIEW_SIDE) -> bytes:
    """Return ``picture`` as JPEG within ``budget`` bytes.

    Each side step tries :data:`QUALITIES` in turn; past the last, the picture shrinks by a
    quarter and tries again, down to 128 pixels (which any budget of a few kB holds).

    Parameters
    ----------
    picture : PIL.Image.Image or ndarray
        RGB or greyscale (a heatmap).
    budget : int
        Most bytes of the encoded view.
    max_side : int
        Longest side to start from.
    """
    view = Image.fromarray(picture) if isinstance(picture, np.ndarray) else picture
    view = view.convert("L" if view.mode in ("L", "1", "I;16", "I", "F") else "RGB")
    side = min(max(view.size), max_side)
    while True:
        small = view.copy()
        small.thumbnail((side, side))
        for quality in QUALITIES:
            buffer = io.BytesIO()
            small.save(buffer, format="JPEG", quality=quality)
            if buffer.tell() <= budget or side <= 128:
                return buffer.getvalue()
        side = max(128, int(side * 0.75))


def image_content(data: bytes, mime_type: str = "image/jpeg") -> ImageContent:
    """Return encoded image bytes as MCP image content."""
    return ImageContent(
        type="image", data=base64.b64encode(data).decode("ascii"), mime_type=mime_type
    )
