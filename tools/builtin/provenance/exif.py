"""EXIF camera fields and their plausibility.

Make and model, exposure data, dates, software names, and whether the embedded
thumbnail shows the same picture.
"""

from __future__ import annotations

import io
import math
import re
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from PIL import ExifTags, Image, UnidentifiedImageError

from sleuth.tools.base import Finding
from sleuth.tools.builtin.provenance.generator import decode_user_comment, excerpt

IFD0_TEXT = {0x010F: "Make", 0x0110: "Model", 0x0131: "Software", 0x010E: "ImageDescription",
             0x013B: "Artist", 0x0132: "DateTime"}  # fmt: skip
EXIF_TEXT = {0x9003: "DateTimeOriginal", 0x9004: "DateTimeDigitized", 0xA434: "LensModel"}
EXPOSURE = {0x829A: "ExposureTime", 0x829D: "FNumber", 0x8827: "ISO", 0x920A: "FocalLength"}
PLAUSIBLE = {"ExposureTime": (1e-6, 3600.0), "FNumber": (0.5, 128.0), "ISO": (1.0, 1.0e7),
             "FocalLength": (0.1, 5000.0)}  # fmt: skip
"""Ranges outside which a camera value is absurd rather than unusual."""
MAX_THUMBNAIL = 512 * 1024
THUMB_MATCH = 0.6
"""Correlation of the thumbnail with the downscaled image below which they differ."""

GENERATOR_NAMES = re.compile(
    r"novelai|midjourney|dall[\s·\-]?e|stable[\s_-]?diffusion|comfyui|invokeai|fooocus|"
    r"automatic1111|adobe firefly|\bfirefly\b|google imagen|imagen \d|\bgemini\b|"
    r"image creator|leonardo\.ai|ideogram|\bflux\b|\bkrea\b|craiyon|nightcafe|dreamstudio|"
    r"playground ?ai|\bopenai\b|chatgpt|gpt-image|\bsora\b|diffusers|ai generated",
    re.IGNORECASE,
)
"""Software names of image generators (matched in EXIF Software and XMP CreatorTool)."""
EDITOR_NAMES = {
    "photoshop": "Adobe Photoshop", "lightroom": "Adobe Lightroom", "gimp": "GIMP",
    "picasa": "Picasa", "photo gallery": "Windows Photo Gallery", "snapseed": "Snapseed",
    "affinity": "Affinity Photo", "pixelmator": "Pixelmator", "capture one": "Capture One",
    "darktable": "darktable", "rawtherapee": "RawTherapee", "paint.net": "Paint.NET",
    "imagemagick": "ImageMagick", "canva": "Canva", "matplotlib": "Matplotlib",
}  # fmt: skip
"""Substrings of Software values naming editors or libraries (lower case) and their names."""


@dataclass
class ExifFacts:
    """The EXIF fields provenance reads, decoded and bounded."""

    text: dict[str, str] = field(default_factory=dict)
    exposure: dict[str, float] = field(default_factory=dict)
    pixel_size: tuple[int, int] | None = None
    thumbnail: bytes | None = None
    problems: list[str] = field(default_factory=list)


def read_exif(exif: Image.Exif, blob: bytes | None = None) -> ExifFacts:
    r"""Decode the camera, software and generator fields of an EXIF directory.

    Parameters
    ----------
    exif : PIL.Image.Exif
        Parsed EXIF (``Image.getexif()`` or ``Image.Exif().load(blob)``).
    blob : bytes, optional
        The raw EXIF (TIFF) bytes, with or without the ``Exif\0\0`` prefix, to cut
        the IFD1 JPEG thumbnail from.

    Returns
    -------
    ExifFacts
        Strings are control-free and cut to 2000 characters, except ``UserComment``,
        which is kept longer for :mod:`generator`.

    References
    ----------
    .. [1] CIPA DC-008-2023, "Exchangeable image file format for digital still cameras:
           Exif Version 3.0".
    """
    facts = ExifFacts()
    try:
        sub = exif.get_ifd(ExifTags.IFD.Exif)
        ifd1 = exif.get_ifd(ExifTags.IFD.IFD1)
    except (KeyError, ValueError, TypeError, OSError, SyntaxError):
        sub, ifd1 = {}, {}
        facts.problems.append("the EXIF sub-directories are unreadable")
    for tag, name in IFD0_TEXT.items():
        _put_text(facts, name, exif.get(tag))
    for tag, name in EXIF_TEXT.items():
        _put_text(facts, name, sub.get(tag))
    for tag, name in ((0x9286, "UserComment"), (0x927C, "MakerNote")):
        value = sub.get(tag, exif.get(tag))
        if isinstance(value, bytes | str) and value:
            text = decode_user_comment(value) if name == "UserComment" else _ascii(value)
            if text.strip():
                facts.text[name] = text
    for tag, name in EXPOSURE.items():
        number = _number(sub.get(tag))
        if number is not None:
            facts.exposure[name] = number
    width, height = _number(sub.get(0xA002)), _number(sub.get(0xA003))
    if width and height and width < 1e6 and height < 1e6:
        facts.pixel_size = (int(width), int(height))
    if blob is not None:
        facts.thumbnail = _thumbnail_bytes(blob, ifd1)
    return facts


def _put_text(facts: ExifFacts, name: str, value: object) -> None:
    if isinstance(value, bytes):
        value = _ascii(value)
    if isinstance(value, str) and value.strip("\x00 "):
        facts.text[name] = excerpt(value.strip("\x00 "), 2000)


def _ascii(value: bytes | str) -> str:
    if isinstance(value, str):
        return value[:4096]
    return value[:4096].decode("latin-1").strip("\x00")


def _number(value: object) -> float | None:
    if isinstance(value, tuple | list):
        value = value[0] if value else None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _thumbnail_bytes(blob: bytes, ifd1: dict[int, Any]) -> bytes | None:
    tiff = blob[6:] if blob.startswith(b"Exif\x00\x00") else blob
    offset, length = ifd1.get(0x0201), ifd1.get(0x0202)
    if not isinstance(offset, int) or not isinstance(length, int):
        return None
    if not 0 < length <= MAX_THUMBNAIL or offset < 8 or offset + length > len(tiff):
        return None
    return bytes(tiff[offset : offset + length])


def camera_fields(facts: ExifFacts) -> tuple[bool, list[str]]:
    """Say whether the EXIF looks like a camera's, and list what is implausible in it.

    Parameters
    ----------
    facts : ExifFacts
        Output of :func:`read_exif`.

    Returns
    -------
    camera : bool
        Make or Model present together with at least two exposure fields.
    problems : list of str
        Absurd exposure values and inconsistent dates.
    """
    text = facts.text
    camera = bool(text.get("Make") or text.get("Model")) and len(facts.exposure) >= 2
    problems = list(facts.problems)
    for name, value in facts.exposure.items():
        low, high = PLAUSIBLE[name]
        if not low <= value <= high:
            problems.append(f"implausible {name} {value:g}")
    dates = {k: _date(text.get(k)) for k in ("DateTimeOriginal", "DateTimeDigitized", "DateTime")}
    for name, raw in ((k, text.get(k)) for k in dates):
        if raw and dates[name] is None:
            problems.append(f"{name} is not a valid date")
    now = datetime.now()
    for name, when in dates.items():
        if when is not None and not datetime(1970, 1, 1) <= when <= now.replace(year=now.year + 1):
            problems.append(f"{name} year {when.year} is implausible")
    original, modified = dates["DateTimeOriginal"], dates["DateTime"]
    if original and modified and (original - modified).total_seconds() > 86400:
        problems.append("the capture date is later than the modification date")
    return camera, problems


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(value.strip()[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None


def software_kind(name: str) -> tuple[str, str] | None:
    """Classify a Software string: ``("generator", name)``, ``("editor", name)`` or None.

    The returned name for an editor is this module's own label, never file text.
    """
    if GENERATOR_NAMES.search(name):
        return "generator", excerpt(name, 80)
    low = name.lower()
    for key, label in EDITOR_NAMES.items():
        if key in low:
            return "editor", label
    return None


def thumbnail_similarity(
    thumbnail: bytes, rgb: np.ndarray, *, orientation: int = 1
) -> tuple[float, float] | None:
    """Compare the EXIF thumbnail with the image downscaled to the same size.

    Black bars that cameras add to fit a fixed thumbnail shape are trimmed first.

    Parameters
    ----------
    thumbnail : bytes
        The IFD1 JPEG thumbnail.
    rgb : ndarray of uint8, shape (H, W, 3)
        The whole image, already turned upright by the EXIF orientation.
    orientation : int
        The EXIF orientation that was applied to ``rgb``; the thumbnail gets the same.

    Returns
    -------
    correlation : float
        Pearson correlation of the two grey images, in [-1, 1].
    aspect_error : float
        Relative difference of aspect ratios.
    None
        When the thumbnail cannot be decoded or is tiny.

    References
    ----------
    .. [1] Kee, E., and Farid, H. "Digital image authentication from thumbnails."
           Proc. SPIE 7541, Media Forensics and Security II, 2010.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            thumb: Image.Image = Image.open(io.BytesIO(thumbnail))
            if thumb.size[0] * thumb.size[1] > 1_000_000:
                return None
            thumb = thumb.convert("L")
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None
    method = {2: 0, 3: 3, 4: 1, 5: 5, 6: 4, 7: 6, 8: 2}.get(orientation)
    if method is not None:
        thumb = thumb.transpose(Image.Transpose(method))
    grey = np.asarray(thumb, dtype=np.float64)
    rows = np.flatnonzero(grey.mean(axis=1) > 12)
    cols = np.flatnonzero(grey.mean(axis=0) > 12)
    if rows.size < 8 or cols.size < 8:
        return None
    grey = grey[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    th, tw = grey.shape
    height, width = rgb.shape[:2]
    aspect_error = abs((tw / th) / (width / height) - 1.0)
    big = Image.fromarray(np.ascontiguousarray(rgb))
    factor = max(1, min(width // (tw * 2), height // (th * 2)))
    small = (big.reduce(factor) if factor > 1 else big).convert("L")
    image = np.asarray(small.resize((tw, th), Image.Resampling.BOX), dtype=np.float64)
    a, b = grey - grey.mean(), image - image.mean()
    denom = math.sqrt(float((a * a).sum() * (b * b).sum()))
    correlation = float((a * b).sum() / denom) if denom > 0 else 0.0
    return correlation, aspect_error


WEAK = "camera EXIF is weak evidence: it is easily copied from another photo, forged or stripped"


def exif_findings(
    facts: ExifFacts,
    *,
    size: tuple[int, int],
    orientation: int = 1,
    thumbnail: tuple[float, float] | None = None,
    generator_reported: bool = False,
) -> list[Finding]:
    """Judge the EXIF: generator software, camera fields and their consistency.

    Parameters
    ----------
    facts : ExifFacts
        Output of :func:`read_exif`.
    size : tuple of int
        ``(width, height)`` of the upright image.
    orientation : int
        EXIF orientation applied when loading.
    thumbnail : tuple of float, optional
        ``(correlation, aspect_error)`` from :func:`thumbnail_similarity`.
    generator_reported : bool
        Whether generator metadata was already reported (the Software tag is then not
        reported again).

    Returns
    -------
    list of Finding
        A generator-software finding (``ai``, 0.95); a camera finding: ``real`` (0.3) when
        consistent, ``neutral`` (0.5) when not; or an editor finding (``neutral``).
    """
    findings = []
    software = facts.text.get("Software", "")
    kind = software_kind(software) if software else None
    if kind is not None and kind[0] == "generator" and not generator_reported:
        findings.append(
            Finding(
                summary="The EXIF Software tag names an image generator: a declaration in the "
                "file, the strongest evidence available.",
                score=0.95,
                direction="ai",
                kind="provenance",
                metrics={"exif_software": excerpt(software, 120)},
                caveats=["a Software tag is plain text that anyone can write or strip"],
            )
        )
    camera, problems = camera_fields(facts)
    metrics, caveats, mismatch = _exif_context(facts, software, size, orientation, thumbnail)
    editor = kind[1] if kind is not None and kind[0] == "editor" else None
    if editor is not None:
        metrics["exif_editor"] = editor
        caveats.append(f"re-saved with {editor}")
    found = _camera_finding(camera, problems + mismatch, editor, metrics, caveats)
    return findings if found is None else [*findings, found]


def _exif_context(
    facts: ExifFacts,
    software: str,
    size: tuple[int, int],
    orientation: int,
    thumbnail: tuple[float, float] | None,
) -> tuple[dict[str, str | float | None], list[str], list[str]]:
    """Return the EXIF metrics, caveats on the file's later history, and thumbnail problems."""
    text = facts.text
    caveats = [WEAK]
    problems = []
    metrics: dict[str, str | float | None] = {
        "exif_make": text.get("Make"),
        "exif_model": text.get("Model"),
        "exif_software": excerpt(software, 120) or None,
        "exif_datetime_original": text.get("DateTimeOriginal"),
        "exif_datetime": text.get("DateTime"),
        **{f"exif_{k.lower()}": round(v, 6) for k, v in facts.exposure.items()},
    }
    if facts.pixel_size is not None:
        width, height = facts.pixel_size
        expected = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
        if expected != size and (width, height) != size:
            caveats.append(f"EXIF records {width}x{height} pixels: resized or cropped since")
    if thumbnail is not None:
        correlation, aspect_error = thumbnail
        metrics["exif_thumbnail_correlation"] = round(correlation, 3)
        if aspect_error > 0.05:
            caveats.append("the EXIF thumbnail has another aspect ratio: cropped since capture")
        elif correlation < THUMB_MATCH:
            problems.append(f"the EXIF thumbnail shows a different picture (r={correlation:.2f})")
    return metrics, caveats, problems


def _camera_finding(
    camera: bool,
    problems: list[str],
    editor: str | None,
    metrics: dict[str, str | float | None],
    caveats: list[str],
) -> Finding | None:
    """Judge the camera fields: consistent, inconsistent, implausible, or an editor's save."""
    if camera and problems:
        return Finding(
            summary=f"Camera EXIF is present but inconsistent: {'; '.join(problems[:4])}.",
            score=0.5,
            kind="provenance",
            metrics=metrics,
            caveats=[*caveats, "metadata copied onto another image or edited by hand"],
        )
    if camera:
        return Finding(
            summary="Camera EXIF (make, model, exposure settings) is present and self-consistent.",
            score=0.3,
            direction="real",
            kind="provenance",
            metrics=metrics,
            caveats=caveats,
        )
    if problems:
        return Finding(
            summary=f"The EXIF has implausible values: {'; '.join(problems[:4])}.",
            kind="provenance",
            metrics=metrics,
            caveats=caveats,
        )
    if editor is not None:
        return Finding(
            summary=f"The EXIF Software tag names an editor or library ({editor}): the "
            "file was re-saved by software.",
            kind="provenance",
            metrics=metrics,
            caveats=["editing says nothing about whether the content was generated"],
        )
    return None
