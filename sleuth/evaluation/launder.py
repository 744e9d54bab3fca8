"""Laundering: strip every metadata block and re-encode, so no file shortcut survives."""

from __future__ import annotations

import io

from PIL import Image

from sleuth.tools import LoadedImage

LAUNDER_QUALITY = 90
"""JPEG quality of the laundered copy."""


def launder(image: LoadedImage, *, quality: int = LAUNDER_QUALITY) -> bytes:
    """Return the image's pixels as a bare JPEG: no EXIF, XMP, ICC, C2PA or text chunks.

    The pixels are the decoded image as every tool sees it (EXIF orientation applied,
    alpha dropped), encoded once at ``quality`` with Pillow's defaults (4:2:0 chroma,
    baseline, standard IJG tables) at the same size. Nothing of the source file's
    container is carried over, so format and metadata cannot tell the classes apart.

    Parameters
    ----------
    image : LoadedImage
        The decoded source file.
    quality : int
        JPEG quality of the re-encode.

    Returns
    -------
    bytes
        A JPEG file (SOI, quantization and Huffman tables, frame, scan, EOI only).
    """
    picture = Image.fromarray(image.full)
    buf = io.BytesIO()
    picture.save(buf, format="JPEG", quality=quality, optimize=False)
    return buf.getvalue()
