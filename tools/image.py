"""Safe image loading: one entry point from a path, bytes or base64 to a :class:`LoadedImage`.

Every byte read here is untrusted. Limits on bytes and pixels are checked from the
header before any pixel is decoded, so a small file that declares a huge canvas
(a decompression bomb) is refused without allocating it.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import io
import logging
import struct
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from sleuth.tools.box import Box
from sleuth.tools.errors import ImageLoadError

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class ImageLimits:
    """Hard limits applied before decoding.

    Parameters
    ----------
    max_bytes : int
        Largest accepted file, in bytes.
    max_pixels : int
        Largest accepted canvas, ``width * height`` as declared in the header.
    """

    max_bytes: int = 200 * 1024 * 1024
    max_pixels: int = 80_000_000


@dataclass(frozen=True, kw_only=True, eq=False)
class LoadedImage:
    """An image ready for analysis, or a rectangular view of one.

    Attributes
    ----------
    sha256 : str
        Hex digest of the file's bytes: the image's identity everywhere in sleuth.
    format : str
        Container format as Pillow names it (``JPEG``, ``PNG``, ``WEBP``, ...).
    mode : str
        Pillow mode of the file before conversion (``RGB``, ``CMYK``, ``I;16``, ...).
    size : tuple of int
        ``(width, height)`` of the whole image after EXIF orientation.
    rgb : ndarray of uint8, shape (H, W, 3)
        Read-only pixels of this view (the whole image unless cropped).
    full : ndarray of uint8, shape (size[1], size[0], 3)
        Read-only pixels of the whole image (the same array as ``rgb`` unless cropped).
    raw : bytes
        The file's bytes, for metadata and JPEG tools. Views share them.
    origin : tuple of int
        ``(x, y)`` of this view's top-left pixel in the whole image.
    orientation : int
        The EXIF orientation tag that was applied (1 when none).
    frames : int
        Number of frames in the file; only the first is analysed.
    notes : tuple of str
        What loading did to the pixels (first frame taken, CMYK converted, ...).
    """

    sha256: str
    format: str
    mode: str
    size: tuple[int, int]
    rgb: np.ndarray = field(repr=False)
    full: np.ndarray = field(repr=False)
    raw: bytes = field(repr=False)
    origin: tuple[int, int] = (0, 0)
    orientation: int = 1
    frames: int = 1
    notes: tuple[str, ...] = ()

    @functools.cached_property
    def gray(self) -> np.ndarray:
        """Return the view's luminance (BT.601 weights), read-only float32, computed once."""
        weights = np.array([0.299, 0.587, 0.114], np.float32)
        luma = np.empty(self.rgb.shape[:2], np.float32)
        # In bands of rows: the float copy stays in cache instead of a 12-byte-per-pixel
        # array of the whole image; each pixel's value is the same.
        for y in range(0, luma.shape[0], 64):
            np.matmul(self.rgb[y : y + 64].astype(np.float32), weights, out=luma[y : y + 64])
        luma.setflags(write=False)
        return luma

    @functools.cached_property
    def gray_profiles(self) -> tuple[np.ndarray, ...]:
        """Return :func:`difference_profiles` of :attr:`gray`, read-only, computed once."""
        profiles = tuple(difference_profiles(self.gray))
        for profile in profiles:
            profile.setflags(write=False)
        return profiles

    @property
    def width(self) -> int:
        """Width of this view in pixels."""
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        """Height of this view in pixels."""
        return int(self.rgb.shape[0])

    @property
    def region(self) -> Box:
        """Return this view as a box in the whole image's pixels."""
        x, y = self.origin
        return Box(x0=x, y0=y, x1=x + self.width, y1=y + self.height)

    @property
    def is_view(self) -> bool:
        """True when this is a crop of the whole image."""
        return (self.width, self.height) != self.size

    @property
    def is_jpeg(self) -> bool:
        """True when the file is a JPEG (its pixels carry JPEG compression history)."""
        return self.format in {"JPEG", "MPO"}

    def crop(self, box: Box) -> LoadedImage:
        """Return a view of ``box``, given in original pixels.

        Raises
        ------
        ToolInputError
            When the box is not inside the image.
        """
        box.check_inside(*self.size)
        pixels = self.full[box.y0 : box.y1, box.x0 : box.x1]
        return replace(self, rgb=pixels, origin=(box.x0, box.y0))

    def to_original(self, box: Box) -> Box:
        """Move a box from this view's pixel frame to original pixels."""
        return box.shift(*self.origin)

    def open_file(self) -> Image.Image:
        """Open the file's bytes again with Pillow, for header and metadata access.

        The result is lazy: no pixels are decoded until asked for.
        """
        return Image.open(io.BytesIO(self.raw))


def difference_profiles(gray: np.ndarray) -> list[np.ndarray]:
    """Return the column and row profiles of first differences, absolute and signed.

    Shared by the ``spectrum`` (periodicity) and ``noise`` (NPR) tools through
    :attr:`LoadedImage.gray_profiles`, so the two full-size difference arrays are
    made once per image.

    Averaging ``|d|`` over all rows turns a periodic modulation of local detail
    (upsampling, block coding) into a periodic 1-D signal; averaging the signed ``d``
    does the same for a fixed periodic pattern (a generator's upsampling layer).

    Parameters
    ----------
    gray : ndarray, shape (H, W)

    Returns
    -------
    list of ndarray
        ``[mean |dx| per column, mean |dy| per row, mean dx per column, mean dy per row]``.

    References
    ----------
    .. [1] Fan, Z. and de Queiroz, R. L. "Identification of bitmap compression
           history: JPEG detection and quantizer estimation." IEEE TIP 12(2), 2003.
    .. [2] Corvi, R. et al. "On the detection of synthetic images generated by
           diffusion models." ICASSP 2023.
    """
    profiles = []
    for axis in (1, 0):
        d = np.diff(gray, axis=axis)
        signed = d.mean(axis=1 - axis)
        profiles.append(np.abs(d, out=d).mean(axis=1 - axis))  # in place: d is our own copy
        profiles.append(signed)
    return [profiles[0], profiles[2], profiles[1], profiles[3]]


def load_image(source: str | Path | bytes, *, limits: ImageLimits | None = None) -> LoadedImage:
    """Load an image from a file path or from its bytes.

    Parameters
    ----------
    source : str, Path or bytes
        A path to an image file, or the file's bytes. To load base64 text use
        :func:`load_image_base64`.
    limits : ImageLimits, optional
        Byte and pixel limits; the defaults when omitted.

    Returns
    -------
    LoadedImage
        The first frame, EXIF-oriented, as 8-bit RGB.

    Raises
    ------
    ImageLoadError
        For missing, empty, oversized, truncated, malformed or unsupported input.
    """
    limits = limits or ImageLimits()
    if isinstance(source, bytes | bytearray | memoryview):
        raw = bytes(source)
    elif isinstance(source, str | Path):
        raw = _read_file(Path(source), limits)
    else:
        raise TypeError(f"load_image takes a path or bytes, not {type(source).__name__}")
    return _decode(raw, limits)


def load_image_base64(text: str, *, limits: ImageLimits | None = None) -> LoadedImage:
    """Load an image from base64 text, with or without a ``data:image/...;base64,`` prefix.

    Raises
    ------
    ImageLoadError
        When the text is not valid base64, or for any reason :func:`load_image` gives.
    """
    limits = limits or ImageLimits()
    body = text.split(",", 1)[1] if text.lstrip().startswith("data:") else text
    if len(body) * 3 // 4 > limits.max_bytes:
        raise _too_large(len(body) * 3 // 4, limits)
    try:
        raw = base64.b64decode("".join(body.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ImageLoadError("the text is not valid base64", reason="not_an_image") from None
    return load_image(raw, limits=limits)


def _read_file(path: Path, limits: ImageLimits) -> bytes:
    try:
        stat = path.stat()
    except OSError as err:
        raise ImageLoadError(f"cannot read {path}: {err.strerror}", reason="unreadable") from None
    if not path.is_file():
        raise ImageLoadError(f"{path} is not a regular file", reason="unreadable")
    if stat.st_size > limits.max_bytes:
        raise _too_large(stat.st_size, limits)
    return path.read_bytes()


def _too_large(n_bytes: int, limits: ImageLimits) -> ImageLoadError:
    return ImageLoadError(
        f"the file has {n_bytes / 1e6:.1f} MB, above the limit of "
        f"{limits.max_bytes / 1e6:.1f} MB (setting max_image_bytes)",
        reason="too_large",
    )


def _decode(raw: bytes, limits: ImageLimits) -> LoadedImage:
    if not raw:
        raise ImageLoadError("the file is empty (0 bytes)", reason="empty")
    if len(raw) > limits.max_bytes:
        raise _too_large(len(raw), limits)
    _register_optional_plugins()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(raw))
            return _to_loaded(img, raw, limits)
    except ImageLoadError:
        raise
    except UnidentifiedImageError:
        raise ImageLoadError(
            "not an image in a format Pillow can read (JPEG, PNG, WebP, GIF, TIFF, BMP, "
            "and HEIF/AVIF when their plugin is installed)",
            reason="not_an_image",
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageLoadError(
            f"refused as a decompression bomb: {err}", reason="too_many_pixels"
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as err:
        reason = "truncated" if "truncated" in str(err).lower() else "unreadable"
        raise ImageLoadError(
            f"the image data is damaged or incomplete ({reason}): {err}", reason=reason
        ) from None


def _to_loaded(img: Image.Image, raw: bytes, limits: ImageLimits) -> LoadedImage:
    width, height = img.size
    if width * height > limits.max_pixels:
        raise ImageLoadError(
            f"the image declares {width}x{height} = {width * height / 1e6:.1f} MP, above the "
            f"limit of {limits.max_pixels / 1e6:.1f} MP (setting max_image_pixels)",
            reason="too_many_pixels",
        )
    fmt, mode = img.format or "unknown", img.mode
    frames = int(getattr(img, "n_frames", 1) or 1)
    notes: list[str] = []
    if frames > 1:
        notes.append(f"the file has {frames} frames; only the first is analysed")
    img.seek(0)
    img.load()
    orientation = int(img.getexif().get(0x0112, 1) or 1)
    if orientation not in range(1, 9):
        notes.append(f"ignored invalid EXIF orientation {orientation}")
        orientation = 1
    if orientation != 1:
        img = ImageOps.exif_transpose(img)
        notes.append(f"rotated upright by EXIF orientation {orientation}")
    rgb = _to_rgb8(img, notes)
    rgb.setflags(write=False)
    return LoadedImage(
        full=rgb,
        sha256=hashlib.sha256(raw).hexdigest(),
        format=fmt,
        mode=mode,
        size=(rgb.shape[1], rgb.shape[0]),
        rgb=rgb,
        raw=raw,
        orientation=orientation,
        frames=frames,
        notes=tuple(notes),
    )


def _to_rgb8(img: Image.Image, notes: list[str]) -> np.ndarray:
    """Convert any Pillow mode to an 8-bit RGB array, noting what was lost."""
    mode = img.mode
    if mode in {"I;16", "I;16B", "I;16L", "I;16N", "I", "F"}:
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or arr.max() > 255 else 255.0
        gray = np.clip(np.rint(arr * (255.0 / top)), 0, 255).astype(np.uint8)
        notes.append(f"{mode} samples scaled to 8 bits")
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in {"RGBA", "LA", "PA", "RGBa", "La"}:
        alpha = np.asarray(img.getchannel("A"))
        transparent = float(np.mean(alpha < 255))
        if transparent > 0:
            notes.append(f"alpha channel dropped ({transparent:.0%} of pixels not opaque)")
    if mode == "CMYK":
        notes.append("converted from CMYK to RGB")
    elif mode not in {"RGB", "RGBA", "L", "P", "LA", "1", "PA"}:
        notes.append(f"converted from {mode} to RGB")
    if img.mode != "RGB":
        img = img.convert("RGB")  # for an RGB image this would only copy the pixels
    return np.asarray(img, dtype=np.uint8)


@functools.cache
def _register_optional_plugins() -> None:
    """Register the HEIF/AVIF opener when ``pillow-heif`` is installed (once, lazily)."""
    try:
        import pillow_heif  # type: ignore[import-not-found]
    except ImportError:
        return
    pillow_heif.register_heif_opener()
    logger.debug("registered the pillow-heif opener")
