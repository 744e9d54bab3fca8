"""EXIF rows (IFD0, Exif, Interop, IFD1, GPS), the GPS position and the embedded thumbnail.

Decoded with Pillow's ``Image.Exif``; the thumbnail is cut out and compared with the
image by the ``provenance`` tool's own code.
"""

from __future__ import annotations

import io
import math
import warnings
from typing import Any

import numpy as np
from PIL import ExifTags, Image, TiffImagePlugin, UnidentifiedImageError

from sleuth.tools.builtin.provenance import exif as provenance_exif
from sleuth.tools.builtin.provenance.generator import decode_user_comment
from sleuth.tools.metadata.models import EmbeddedThumbnail, Gps, Rows

POINTERS = {0x8769, 0x8825, 0xA005, 0x0201, 0x0202}
"""Offsets to other directories or to the thumbnail: structure, not content."""
MAKER_NOTE = 0x927C
USER_COMMENT = 0x9286
MAX_ITEMS = 64
"""Elements of an array value shown before ``…``."""
MAX_BYTES_SHOWN = 32
THUMBNAIL_SIDE = 320
THUMBNAIL_PIXELS = 1_000_000
MISMATCH_LIMIT = (1.0 - provenance_exif.THUMB_MATCH) / 2.0
"""Mismatch above which the ``provenance`` tool reports a different picture."""
_ERRORS = (OSError, ValueError, SyntaxError, TypeError, KeyError, IndexError, EOFError)


def load_exif(blob: bytes, notes: list[str]) -> Image.Exif | None:
    r"""Parse an EXIF block (with or without the ``Exif\0\0`` prefix); a note when broken."""
    parsed = Image.Exif()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            parsed.load(blob if blob.startswith(b"Exif\x00\x00") else b"Exif\x00\x00" + blob)
        except _ERRORS as err:
            notes.append(f"EXIF block unreadable: {type(err).__name__}: {str(err)[:120]}")
            return None
    for warning in caught[:3]:
        notes.append(f"EXIF block damaged: {str(warning.message)[:120]}")
    return parsed


def exif_rows(exif: Image.Exif, rows: Rows, notes: list[str]) -> dict[int, Any]:
    """Add a row per EXIF tag of IFD0, the Exif, Interop and IFD1 directories and GPS.

    Parameters
    ----------
    exif : PIL.Image.Exif
        Parsed EXIF.
    rows : Rows
        Where the rows go.
    notes : list of str
        Where unreadable directories are noted.

    Returns
    -------
    dict
        The GPS directory (tag number to value), empty when there is none.
    """
    sections: list[tuple[str, str, dict[int, Any]]] = [("EXIF", "", dict(exif))]
    gps: dict[int, Any] = {}
    for ifd, group, prefix in (
        (ExifTags.IFD.Exif, "EXIF", ""),
        (ExifTags.IFD.Interop, "EXIF", "Interop "),
        (ExifTags.IFD.GPSInfo, "GPS", ""),
        (ExifTags.IFD.IFD1, "EXIF", "Thumbnail "),
    ):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                found = dict(exif.get_ifd(ifd))
        except _ERRORS as err:
            notes.append(f"EXIF {ifd.name} directory unreadable: {type(err).__name__}")
            continue
        if ifd == ExifTags.IFD.GPSInfo:
            gps = found
        sections.append((group, prefix, found))
    for group, prefix, tags in sections:
        names = ExifTags.GPSTAGS if group == "GPS" else ExifTags.TAGS
        for tag, value in tags.items():
            if not isinstance(tag, int) or (tag in POINTERS and group == "EXIF"):
                continue
            name = names.get(tag, f"Tag 0x{tag:04X}")
            if not rows.add(group, prefix + name, show_value(tag, value, rows.max_chars)):
                return gps
    return gps


def show_value(tag: int, value: object, limit: int) -> str:
    """Return an EXIF value as text: numbers, text, or bytes as text when printable, else hex.

    The MakerNote (vendor-specific binary) is shown as its size only.
    """
    if tag == MAKER_NOTE and isinstance(value, bytes | str):
        return f"({len(value)} bytes, vendor format, not decoded)"
    if tag == USER_COMMENT and isinstance(value, bytes | str):
        return decode_user_comment(value[: limit * 8])
    if isinstance(value, bytes):
        return show_bytes(value, limit)
    if isinstance(value, tuple | list):
        shown = ", ".join(show_value(0, item, limit) for item in value[:MAX_ITEMS])
        return shown + (", …" if len(value) > MAX_ITEMS else "")
    if isinstance(value, TiffImagePlugin.IFDRational):
        return _rational(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dict):
        return f"({len(value)} entries)"
    return str(value)[: limit * 4]


def show_bytes(value: bytes, limit: int) -> str:
    """Return bytes as text when they decode to printable text, else as short hex."""
    body = value[: limit * 4].rstrip(b"\x00")
    if body:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            text = ""
        if text and text.isprintable():
            return text
    head = value[:MAX_BYTES_SHOWN].hex(" ")
    return head + (f" … ({len(value)} bytes)" if len(value) > MAX_BYTES_SHOWN else "")


def _rational(value: TiffImagePlugin.IFDRational) -> str:
    if value.denominator == 0:
        return "undefined (division by zero)"
    number = float(value)
    if value.numerator == 1 and value.denominator > 1:
        return f"1/{value.denominator}"
    return f"{number:.6g}"


def read_gps(gps: dict[int, Any], notes: list[str]) -> Gps | None:
    """Return the position of a GPS directory, or None (with a note when it is invalid).

    Parameters
    ----------
    gps : dict
        The GPS directory: tag 1/2 latitude reference and degrees-minutes-seconds,
        3/4 longitude, 5/6 altitude reference (1: below sea level) and altitude.

    Returns
    -------
    Gps or None
        South and west are negative; None when latitude or longitude is missing.
    """
    if 2 not in gps or 4 not in gps:
        return None
    latitude, longitude = _degrees(gps.get(2)), _degrees(gps.get(4))
    if latitude is None or longitude is None or abs(latitude) > 90 or abs(longitude) > 180:
        notes.append("GPS position unreadable or out of range")
        return None
    lat_ref, lon_ref = _ref(gps.get(1), "N"), _ref(gps.get(3), "E")
    latitude = -latitude if lat_ref == "S" else latitude
    longitude = -longitude if lon_ref == "W" else longitude
    altitude = _number(gps.get(6))
    if altitude is not None:
        below = gps.get(5) in (1, b"\x01", "\x01")
        altitude = -abs(altitude) if below else altitude
    text = (
        f"{abs(latitude):.5f} {'S' if latitude < 0 else 'N'}, "
        f"{abs(longitude):.5f} {'W' if longitude < 0 else 'E'}"
    )
    if altitude is not None:
        text += f", {altitude:.0f} m"
    return Gps(latitude=latitude, longitude=longitude, altitude=altitude, text=text)


def _ref(value: object, default: str) -> str:
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return value.strip("\x00 ").upper()[:1] if isinstance(value, str) else default


def _number(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _degrees(value: object) -> float | None:
    if not isinstance(value, tuple | list) or not 1 <= len(value) <= 3:
        return _number(value)
    parts = [_number(v) for v in value]
    if any(p is None for p in parts):
        return None
    return sum(p / 60**i for i, p in enumerate(parts) if p is not None)


def read_thumbnail(
    thumbnail: bytes, full: np.ndarray, orientation: int, notes: list[str]
) -> EmbeddedThumbnail | None:
    """Re-encode the EXIF thumbnail and measure how far it is from the image.

    Parameters
    ----------
    thumbnail : bytes
        The IFD1 JPEG, as the ``provenance`` tool cuts it out (bounded in size).
    full : ndarray of uint8, shape (H, W, 3)
        The whole image, upright.
    orientation : int
        EXIF orientation applied to ``full``; the thumbnail is turned the same way.
    notes : list of str
        Where an undecodable thumbnail is noted.

    Returns
    -------
    EmbeddedThumbnail or None
        None when the thumbnail does not decode.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(thumbnail), formats=["JPEG"]) as picture:
                if picture.size[0] * picture.size[1] > THUMBNAIL_PIXELS:
                    notes.append("EXIF thumbnail too large to show")
                    return None
                small = picture.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        notes.append("EXIF thumbnail present but not a decodable JPEG")
        return None
    method = {2: 0, 3: 3, 4: 1, 5: 5, 6: 4, 7: 6, 8: 2}.get(orientation)
    if method is not None:
        small = small.transpose(Image.Transpose(method))
    trimmed = provenance_exif.thumbnail_similarity(thumbnail, full, orientation=orientation)
    whole = _whole_similarity(small, full)
    candidates = [s for s in (trimmed, whole) if s is not None]
    similarity = max(candidates, key=lambda s: s[0]) if candidates else None
    small.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=85)
    mismatch, note = _judge(similarity)
    return EmbeddedThumbnail(
        width=small.width, height=small.height, jpeg=buffer.getvalue(), mismatch=mismatch, note=note
    )


def _whole_similarity(thumb: Image.Image, full: np.ndarray) -> tuple[float, float] | None:
    """Correlate the whole thumbnail with the whole image at the thumbnail's size.

    The provenance tool's measure trims dark bars from the thumbnail first, which suits
    letterboxed camera thumbnails but misaligns a picture whose own edges are dark (a
    night sky, a planet on black); the panel takes the better of the two.
    """
    width, height = thumb.size
    if width < 8 or height < 8:
        return None
    grey = np.asarray(thumb.convert("L"), dtype=np.float64)
    big = Image.fromarray(np.ascontiguousarray(full))
    factor = max(1, min(big.width // (width * 2), big.height // (height * 2)))
    reduced = (big.reduce(factor) if factor > 1 else big).convert("L")
    image = np.asarray(reduced.resize((width, height), Image.Resampling.BOX), dtype=np.float64)
    a, b = grey - grey.mean(), image - image.mean()
    denom = math.sqrt(float((a * a).sum() * (b * b).sum()))
    correlation = float((a * b).sum() / denom) if denom > 0 else 0.0
    aspect_error = abs((width / height) / (big.width / big.height) - 1.0)
    return correlation, aspect_error


def _judge(similarity: tuple[float, float] | None) -> tuple[float | None, str]:
    if similarity is None:
        return None, "The thumbnail could not be compared with the image (too small or blank)."
    correlation, aspect_error = similarity
    mismatch = round(min(max((1.0 - correlation) / 2.0, 0.0), 1.0), 4)
    if aspect_error > 0.05:
        return mismatch, (
            "The thumbnail has another shape than the image: the image was cropped after "
            "the thumbnail was written."
        )
    if mismatch > MISMATCH_LIMIT:
        return mismatch, (
            "The thumbnail shows a different picture: the image was edited after capture, "
            "or its metadata was copied from another photo."
        )
    return mismatch, (
        "The thumbnail matches the image, as it does straight from a camera (software that "
        "rewrites metadata can also regenerate it)."
    )
