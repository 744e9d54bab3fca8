"""Safe image loading: one entry point from a path, bytes or base64 to a :class:`LoadedImage`.

Every byte read here is untrusted. Limits on bytes and pixels are checked from the
header before any pixel is decoded, so a small file that declares a huge canvas
(a decompression bomb) is refused without allocating it. Only the formats of
:mod:`sleuth.tools.formats` are opened, JPEG scans and TIFF pages are capped before
decoding, and the decode itself runs under a time budget (:mod:`sleuth.tools.worker`).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import io
import stat
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image

from sleuth.tools.box import Box
from sleuth.tools.errors import ImageLoadError
from sleuth.tools.formats import accepted_formats, check_structure
from sleuth.tools.worker import decode_budgeted


@dataclass(frozen=True, kw_only=True)
class ImageLimits:
    """Hard limits applied before decoding.

    Parameters
    ----------
    max_bytes : int
        Largest accepted file, in bytes.
    max_pixels : int
        Largest accepted canvas, ``width * height`` as declared in the header.
    decode_seconds : float
        Longest a single decode may take, in CPU and in wall-clock seconds; the decode
        runs in a worker process that is stopped past it. 0 decodes in-process, unbounded.
    """

    max_bytes: int = 200 * 1024 * 1024
    max_pixels: int = 80_000_000
    decode_seconds: float = 20.0


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
        Number of frames a viewer shows (for an APNG whose default image is not part of
        the animation, the animation frames); only the first of them is analysed.
    notes : tuple of str
        What loading did to the pixels (first frame taken, hidden APNG default image,
        CMYK converted, ...).
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
    _degenerate: dict[int, np.ndarray] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @functools.cached_property
    def gray(self) -> np.ndarray:
        """Return the view's luminance (BT.601 weights), read-only float32, computed once."""
        weights = np.array([0.299, 0.587, 0.114], np.float32)
        height, width = self.rgb.shape[:2]
        luma = np.empty((height, width), np.float32)
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

    def degenerate_cells(self, cell: int) -> np.ndarray:
        """Return :func:`~sleuth.tools.proposal.degenerate_cells` of :attr:`gray`.

        Read-only, computed once per cell size (several tools mask the same cells).
        """
        if cell not in self._degenerate:
            from sleuth.tools.proposal import degenerate_cells

            cells = degenerate_cells(self.gray, cell)
            cells.setflags(write=False)
            self._degenerate[cell] = cells
        return self._degenerate[cell]

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

        The result is lazy: no pixels are decoded until asked for. Only the file's own
        format is tried, the one it was loaded as.
        """
        return Image.open(io.BytesIO(self.raw), formats=[_PILLOW_ID.get(self.format, self.format)])


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


def load_image(
    source: str | Path | bytes, *, limits: ImageLimits | None = None, name: str | None = None
) -> LoadedImage:
    """Load an image from a file path or from its bytes.

    Parameters
    ----------
    source : str, Path or bytes
        A path to an image file, or the file's bytes. To load base64 text use
        :func:`load_image_base64`.
    limits : ImageLimits, optional
        Byte, pixel and time limits; the defaults when omitted.
    name : str, optional
        How errors name the file; the path itself when ``source`` is a path.

    Returns
    -------
    LoadedImage
        The first displayed frame, EXIF-oriented, as 8-bit RGB.

    Raises
    ------
    ImageLoadError
        For missing, empty, oversized, truncated, malformed, refused or too costly input;
        one line, naming the file when its name is known.
    """
    limits = limits or ImageLimits()
    if isinstance(source, bytes | bytearray | memoryview):
        raw = bytes(source)
    elif isinstance(source, str | Path):
        name = name or _shown(source)
        raw = _read_file(Path(source), limits)
    else:
        raise TypeError(f"load_image takes a path or bytes, not {type(source).__name__}")
    try:
        return _decode(raw, limits)
    except ImageLoadError as err:
        if name is None:
            raise
        raise ImageLoadError(f"{_shown(name)}: {err}", reason=err.reason) from None


def load_image_base64(
    text: str, *, limits: ImageLimits | None = None, name: str | None = None
) -> LoadedImage:
    """Load an image from base64 text, with or without a ``data:image/...;base64,`` prefix.

    Parameters
    ----------
    text : str
        The base64 text.
    limits : ImageLimits, optional
        As for :func:`load_image`.
    name : str, optional
        How errors name the file.

    Returns
    -------
    LoadedImage
        As :func:`load_image`.

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
    return load_image(raw, limits=limits, name=name)


def _read_file(path: Path, limits: ImageLimits) -> bytes:
    try:
        info = path.stat()
    except (OSError, ValueError) as err:  # ValueError: a NUL byte in the name
        raise _unreadable(path, err) from None
    if not stat.S_ISREG(info.st_mode):
        raise ImageLoadError(f"{_shown(path)} is not a regular file", reason="unreadable")
    if info.st_size > limits.max_bytes:
        raise ImageLoadError(
            f"{_shown(path)}: {_too_large(info.st_size, limits)}", reason="too_large"
        )
    try:
        return path.read_bytes()
    except (OSError, ValueError) as err:
        raise _unreadable(path, err) from None


def _unreadable(path: Path, err: Exception) -> ImageLoadError:
    reason = getattr(err, "strerror", None) or str(err)
    return ImageLoadError(f"cannot read {_shown(path)}: {reason}", reason="unreadable")


def _shown(name: str | Path) -> str:
    """Return a file name for a one-line message (quoted, escaped, if it has control chars)."""
    text = str(name)
    return text if text.isprintable() else repr(text)


def _too_large(n_bytes: int, limits: ImageLimits) -> ImageLoadError:
    return ImageLoadError(
        f"the file has {n_bytes / 1e6:.1f} MB, above the limit of "
        f"{limits.max_bytes / 1e6:.1f} MB (setting max_image_bytes)",
        reason="too_large",
    )


_PILLOW_ID = {"MPO": "JPEG"}
"""Format names whose Pillow opener has another id (MPO files open through JPEG's)."""


def _decode(raw: bytes, limits: ImageLimits) -> LoadedImage:
    if not raw:
        raise ImageLoadError("the file is empty (0 bytes)", reason="empty")
    if len(raw) > limits.max_bytes:
        raise _too_large(len(raw), limits)
    pages = check_structure(raw)
    header, rgb = decode_budgeted(
        raw,
        accepted=accepted_formats(),
        max_pixels=limits.max_pixels,
        pages=pages,
        seconds=limits.decode_seconds,
    )
    rgb.setflags(write=False)
    return LoadedImage(
        full=rgb,
        sha256=hashlib.sha256(raw).hexdigest(),
        format=header["format"],
        mode=header["mode"],
        size=(rgb.shape[1], rgb.shape[0]),
        rgb=rgb,
        raw=raw,
        orientation=header["orientation"],
        frames=header["frames"],
        notes=tuple(header["notes"]),
    )
