"""Web-style copies of an image: what a trip through the web does to a file.

A photo or a generated image reaches an investigator after platforms and people have
handled it: metadata stripped, cropped, resized, re-encoded as JPEG or WebP. The
functions here make such copies from decoded pixels, reproducibly: the evaluation's
``web`` track draws one recipe per image from the image's own hash, and the agent's
stability check re-runs the pixel tools on fixed variants to see whether the verdict
survives them.

Every copy is a bare file: no EXIF, XMP, ICC, C2PA or text chunk is carried over.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from sleuth.tools.image import ImageLimits, LoadedImage, load_image

WEB_LONG_SIDES = (512, 720, 1080, 1280, 1600, 2048)
"""Long sides the ``web`` recipe resizes to (down or up), as platforms and exports do."""
WEB_AREA = (0.60, 0.95)
"""Share of the area a web crop keeps."""
WEB_QUALITY = (60, 92)
"""JPEG/WebP quality range of a web copy."""
WEB_WEBP_SHARE = 0.2
"""Share of web copies saved as WebP (the rest JPEG)."""
WEB_444_SHARE = 0.25
"""Share of the JPEG web copies saved without chroma subsampling (4:4:4)."""


@dataclass(frozen=True)
class WebRecipe:
    """One web-style transformation, in the order it is applied.

    Attributes
    ----------
    crop : tuple of int
        ``(x0, y0, x1, y1)`` kept from the source pixels.
    size : tuple of int
        ``(width, height)`` after resizing the crop.
    format : {'JPEG', 'WEBP'}
    quality : int
    subsampling : {'4:2:0', '4:4:4'}
        Chroma subsampling of a JPEG (WebP always subsamples).
    """

    crop: tuple[int, int, int, int]
    size: tuple[int, int]
    format: str
    quality: int
    subsampling: str = "4:2:0"

    def describe(self) -> str:
        """One line naming every step, for logs and reports."""
        x0, y0, x1, y1 = self.crop
        chroma = f" {self.subsampling}" if self.format == "JPEG" else ""
        return (
            f"crop {x1 - x0}x{y1 - y0} at ({x0},{y0}), resize to {self.size[0]}x{self.size[1]}, "
            f"{self.format} q{self.quality}{chroma}"
        )


def web_recipe(width: int, height: int, seed: int | str) -> WebRecipe:
    """Draw the web recipe for an image of this size.

    The crop keeps a random share of the area in :data:`WEB_AREA` with a slightly
    changed aspect ratio, at a random place; the long side is then resized to one of
    :data:`WEB_LONG_SIDES`; the copy is a JPEG (mostly 4:2:0) or, for a share of
    :data:`WEB_WEBP_SHARE`, a lossy WebP, at a quality in :data:`WEB_QUALITY`.

    Parameters
    ----------
    width, height : int
        Source size in pixels (after EXIF orientation).
    seed : int or str
        Same seed, same recipe; the evaluation passes the image's sha256.

    Returns
    -------
    WebRecipe
    """
    rng = np.random.default_rng(_seed_int(seed))
    area = rng.uniform(*WEB_AREA)
    stretch = float(np.exp(rng.uniform(-0.15, 0.15)))
    fw = min(1.0, float(np.sqrt(area) * stretch))
    fh = min(1.0, float(area / fw))
    cw, ch = max(1, round(width * fw)), max(1, round(height * fh))
    x0 = int(rng.integers(0, width - cw + 1))
    y0 = int(rng.integers(0, height - ch + 1))
    long_side = int(rng.choice(WEB_LONG_SIDES))
    scale = long_side / max(cw, ch)
    size = (max(1, round(cw * scale)), max(1, round(ch * scale)))
    quality = int(rng.integers(WEB_QUALITY[0], WEB_QUALITY[1] + 1))
    if rng.random() < WEB_WEBP_SHARE:
        return WebRecipe((x0, y0, x0 + cw, y0 + ch), size, "WEBP", quality)
    subsampling = "4:4:4" if rng.random() < WEB_444_SHARE else "4:2:0"
    return WebRecipe((x0, y0, x0 + cw, y0 + ch), size, "JPEG", quality, subsampling)


def apply_recipe(pixels: np.ndarray, recipe: WebRecipe) -> bytes:
    """Apply a recipe to decoded RGB pixels and return the encoded file.

    Parameters
    ----------
    pixels : ndarray of uint8, shape (H, W, 3)
    recipe : WebRecipe

    Returns
    -------
    bytes
        A bare JPEG or WebP file.
    """
    picture = Image.fromarray(pixels).crop(recipe.crop)
    if picture.size != recipe.size:
        shrinking = recipe.size[0] < picture.size[0]
        method = Image.Resampling.LANCZOS if shrinking else Image.Resampling.BICUBIC
        picture = picture.resize(recipe.size, method)
    return encode(picture, recipe.format, recipe.quality, recipe.subsampling)


def web_copy(pixels: np.ndarray, seed: int | str) -> tuple[bytes, WebRecipe]:
    """Return a web-style copy of the pixels and the recipe drawn for it."""
    height, width = pixels.shape[:2]
    recipe = web_recipe(width, height, seed)
    return apply_recipe(pixels, recipe), recipe


def encode(picture: Image.Image, fmt: str, quality: int, subsampling: str = "4:2:0") -> bytes:
    """Encode a picture as a bare JPEG or lossy WebP (no metadata of any kind).

    Parameters
    ----------
    picture : PIL.Image.Image
        RGB.
    fmt : {'JPEG', 'WEBP'}
    quality : int
        1-100.
    subsampling : {'4:2:0', '4:4:4'}
        JPEG chroma subsampling.

    Returns
    -------
    bytes
    """
    buf = io.BytesIO()
    if fmt == "JPEG":
        picture.save(buf, format="JPEG", quality=quality, subsampling=subsampling)
    elif fmt == "WEBP":
        picture.save(buf, format="WEBP", quality=quality, method=4)
    else:
        raise ValueError(f"unknown format {fmt!r}; use JPEG or WEBP")
    return buf.getvalue()


def load_copy(data: bytes) -> LoadedImage:
    """Load a copy made by this module (or any file sleuth encoded itself).

    Decoded in-process: the decode budget's worker process guards against hostile files,
    and costs a few tens of milliseconds a file that sleuth's own encoder does not need.
    """
    return load_image(data, limits=ImageLimits(decode_seconds=0))


def _seed_int(seed: int | str) -> int:
    if isinstance(seed, int):
        return seed
    return int.from_bytes(hashlib.sha256(f"web|{seed}".encode()).digest()[:8], "big")


STABILITY_VARIANTS = 3
"""How many fixed copies :func:`stability_variants` can make."""
STABILITY_SCALE = 0.75
"""Downscale factor of the first stability variant."""
STABILITY_CROP = 8
"""Pixels the crop variant cuts from the right and bottom edges (fewer on tiny images)."""


def stability_variants(pixels: np.ndarray, count: int = 3) -> list[tuple[str, bytes]]:
    """Return fixed web-style copies of the pixels for the agent's stability check.

    The copies, in this order (the first ``count`` are made):

    1. downscaled to 75% (Lanczos), saved as JPEG q85;
    2. re-encoded as JPEG q80 at the same size;
    3. cropped by 8 pixels from the right and bottom edges, saved as JPEG q90.

    Every copy is a bare 4:2:0 JPEG; the same pixels always give the same bytes.

    Parameters
    ----------
    pixels : ndarray of uint8, shape (H, W, 3)
        Decoded RGB pixels of the whole image.
    count : int
        How many copies, 0 to :data:`STABILITY_VARIANTS`.

    Returns
    -------
    list of (str, bytes)
        A plain-words name of each copy (for the verdict) and its file.
    """
    if not 0 <= count <= STABILITY_VARIANTS:
        raise ValueError(f"count={count} is out of range; use 0..{STABILITY_VARIANTS}")
    picture = Image.fromarray(pixels)
    width, height = picture.size
    makers = (_downscaled, _reencoded, _cropped)[:count]
    return [make(picture, width, height) for make in makers]


def _downscaled(picture: Image.Image, width: int, height: int) -> tuple[str, bytes]:
    size = (max(1, round(width * STABILITY_SCALE)), max(1, round(height * STABILITY_SCALE)))
    small = picture.resize(size, Image.Resampling.LANCZOS)
    return f"downscaled to {STABILITY_SCALE:.0%}, JPEG q85", encode(small, "JPEG", 85)


def _reencoded(picture: Image.Image, width: int, height: int) -> tuple[str, bytes]:
    del width, height
    return "re-encoded as JPEG q80", encode(picture, "JPEG", 80)


def _cropped(picture: Image.Image, width: int, height: int) -> tuple[str, bytes]:
    dx, dy = min(STABILITY_CROP, width // 16), min(STABILITY_CROP, height // 16)
    cut = picture.crop((0, 0, width - dx, height - dy))
    edges = f"{dx} px" if dx == dy else f"{dx} and {dy} px"
    name = f"cropped by {edges} at the right and bottom, JPEG q90"
    return name, encode(cut, "JPEG", 90)
