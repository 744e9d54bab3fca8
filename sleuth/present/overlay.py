"""Heatmaps as colour overlays that sit over the photo, and where they sit.

A heatmap artifact (grey values, 0 = nothing, 255 = strongest) becomes an RGBA PNG: the
colour comes from the inferno colour map, and the alpha rises with the value, so low
values are transparent and the photo shows through. The map's 256 entries are
matplotlib's inferno (perceptually uniform, readable in greyscale and by most
colour-blind viewers), sampled once with matplotlib 3.11 and written here as hex, so
the core install does not need matplotlib.
"""

from __future__ import annotations

import functools
import io
import struct
from pathlib import Path

import numpy as np
from PIL import Image

from sleuth.tools.base import Artifact

COLOUR_MAP = "inferno"
"""Name of the colour map of :func:`coloured_overlay` and :func:`legend_stops`."""
ALPHA_FLOOR = 0.1
"""Values at or below this fraction of the maximum are fully transparent."""
ALPHA_MAX = 220
"""Alpha of the strongest value (of 255): the photo stays faintly visible underneath."""
MAX_PIXELS = 80_000_000
"""Largest artifact decoded (its header is checked first)."""
NOT_SPATIAL = frozenset({"spectrum", "crop"})
"""Artifact kinds that are not a map over the image (a spectrum; a crop is the photo itself)."""

_INFERNO = (
    "00000401000501010601010802010a02020c02020e03021004031204031405041706041907051b08051d09061f0a0722"
    "0b07240c08260d08290e092b10092d110a30120a32140b34150b37160b39180c3c190c3e1b0c411c0c431e0c451f0c48"
    "210c4a230c4c240c4f260c51280b53290b552b0b572d0b592f0a5b310a5c320a5e340a5f3609613809623909633b0964"
    "3d09653e0966400a67420a68440a68450a69470b6a490b6a4a0c6b4c0c6b4d0d6c4f0d6c510e6c520e6d540f6d550f6d"
    "57106e59106e5a116e5c126e5d126e5f136e61136e62146e64156e65156e67166e69166e6a176e6c186e6d186e6f196e"
    "71196e721a6e741a6e751b6e771c6d781c6d7a1d6d7c1d6d7d1e6d7f1e6c801f6c82206c84206b85216b87216b88226a"
    "8a226a8c23698d23698f24699025689225689326679526679727669827669a28659b29649d29649f2a63a02a63a22b62"
    "a32c61a52c60a62d60a82e5fa92e5eab2f5ead305dae305cb0315bb1325ab3325ab43359b63458b73557b93556ba3655"
    "bc3754bd3853bf3952c03a51c13a50c33b4fc43c4ec63d4dc73e4cc83f4bca404acb4149cc4248ce4347cf4446d04545"
    "d24644d34743d44842d54a41d74b3fd84c3ed94d3dda4e3cdb503bdd513ade5238df5337e05536e15635e25734e35933"
    "e45a31e55c30e65d2fe75e2ee8602de9612bea632aeb6429eb6628ec6726ed6925ee6a24ef6c23ef6e21f06f20f1711f"
    "f1731df2741cf3761bf37819f47918f57b17f57d15f67e14f68013f78212f78410f8850ff8870ef8890cf98b0bf98c0a"
    "f98e09fa9008fa9207fa9407fb9606fb9706fb9906fb9b06fb9d07fc9f07fca108fca309fca50afca60cfca80dfcaa0f"
    "fcac11fcae12fcb014fcb216fcb418fbb61afbb81dfbba1ffbbc21fbbe23fac026fac228fac42afac62df9c72ff9c932"
    "f9cb35f8cd37f8cf3af7d13df7d340f6d543f6d746f5d949f5db4cf4dd4ff4df53f4e156f3e35af3e55df2e661f2e865"
    "f2ea69f1ec6df1ed71f1ef75f1f179f2f27df2f482f3f586f3f68af4f88ef5f992f6fa96f8fb9af9fc9dfafda1fcffa4"
)
"""matplotlib's inferno, 256 RGB entries as hex (matplotlib.colormaps["inferno"])."""


@functools.cache
def colour_lut() -> np.ndarray:
    """Return the colour map as a read-only uint8 array of shape (256, 3)."""
    table = np.frombuffer(bytes.fromhex("".join(_INFERNO)), dtype=np.uint8).reshape(256, 3)
    table.setflags(write=False)
    return table


def alpha_ramp() -> np.ndarray:
    """Return the alpha of each value 0-255: 0 up to :data:`ALPHA_FLOOR`, then rising linearly.

    Returns
    -------
    ndarray of uint8, shape (256,)
        ``ALPHA_MAX * clip((v / 255 - ALPHA_FLOOR) / (1 - ALPHA_FLOOR), 0, 1)``, rounded.
    """
    values = np.arange(256) / 255.0
    ramp = np.clip((values - ALPHA_FLOOR) / (1.0 - ALPHA_FLOOR), 0.0, 1.0)
    return np.rint(ramp * ALPHA_MAX).astype(np.uint8)


def coloured_overlay(artifact: Path, *, max_side: int = 1024) -> bytes:
    """Colour a saved heatmap artifact as an RGBA PNG to lay over the photo.

    Parameters
    ----------
    artifact : Path
        A heatmap PNG written by a tool (grey values; a colour file is read as its
        luminance). Only PNG is opened.
    max_side : int
        Longest side of the result; larger maps are downscaled (box filter), smaller
        ones are left as they are (the page scales them to the placement).

    Returns
    -------
    bytes
        An RGBA PNG: colour from :func:`colour_lut`, alpha from :func:`alpha_ramp`.

    Raises
    ------
    OSError
        When the file cannot be read or is not an image.
    ValueError
        When ``max_side`` is below 1 or the image is larger than :data:`MAX_PIXELS`.
    """
    if max_side < 1:
        raise ValueError(f"max_side must be at least 1, not {max_side}")
    try:
        with Image.open(artifact, formats=["PNG"]) as picture:
            width, height = picture.size
            if width * height > MAX_PIXELS:
                raise ValueError(f"{artifact.name}: {width}x{height} pixels is too large a map")
            grey = picture.convert("L")
    except Image.DecompressionBombError as err:
        raise ValueError(f"{artifact.name}: {err}") from None
    except (SyntaxError, struct.error, EOFError) as err:
        raise OSError(f"{artifact.name} is not a readable PNG: {err}") from None
    if max(width, height) > max_side:
        scale = max_side / max(width, height)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        grey = grey.resize(size, Image.Resampling.BOX)
    values = np.asarray(grey)
    rgba = np.empty((*values.shape, 4), dtype=np.uint8)
    rgba[..., :3] = colour_lut()[values]
    rgba[..., 3] = alpha_ramp()[values]
    buffer = io.BytesIO()
    Image.fromarray(rgba).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def legend_stops(n: int = 5) -> list[tuple[float, str]]:
    """Return ``n`` evenly spaced stops of the colour map, for a CSS linear-gradient legend.

    Parameters
    ----------
    n : int
        Number of stops, at least 2 (the two ends).

    Returns
    -------
    list of (float, str)
        ``(value, "#rrggbb")`` from 0.0 to 1.0.

    Raises
    ------
    ValueError
        When ``n`` is below 2.
    """
    if n < 2:
        raise ValueError(f"a legend needs at least 2 stops, not {n}")
    lut = colour_lut()
    stops = []
    for i in range(n):
        value = i / (n - 1)
        red, green, blue = (int(c) for c in lut[round(value * 255)])
        stops.append((value, f"#{red:02x}{green:02x}{blue:02x}"))
    return stops


def overlay_placement(
    artifact: Artifact, image_size: tuple[int, int]
) -> tuple[float, float, float, float] | None:
    """Return where an artifact sits over the image, as fractions of the image.

    Parameters
    ----------
    artifact : Artifact
        The artifact, as :func:`sleuth.tools.base.read_artifact` returns it; its
        ``source`` box (original pixels) is the region it covers, the whole image when
        None.
    image_size : tuple of int
        ``(width, height)`` of the original image.

    Returns
    -------
    tuple of float or None
        ``(left, top, width, height)``, each in [0, 1] (a box reaching past the image is
        clipped to it); None for kinds that are not a map over the image
        (:data:`NOT_SPATIAL`) and for a box wholly outside the image.

    Raises
    ------
    ValueError
        When a side of ``image_size`` is not positive.
    """
    width, height = image_size
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, not {width}x{height}")
    if artifact.kind in NOT_SPATIAL:
        return None
    box = artifact.source
    if box is None:
        return (0.0, 0.0, 1.0, 1.0)
    x0, x1 = min(max(box.x0, 0), width), min(max(box.x1, 0), width)
    y0, y1 = min(max(box.y0, 0), height), min(max(box.y1, 0), height)
    if x1 <= x0 or y1 <= y0:
        return None
    return (x0 / width, y0 / height, (x1 - x0) / width, (y1 - y0) / height)
