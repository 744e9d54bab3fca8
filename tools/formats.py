"""Which image formats sleuth accepts, and structure caps checked before any decoding.

Pillow opens dozens of formats, some through external programs (EPS through
Ghostscript). sleuth passes an explicit list to ``Image.open`` so that nothing else is
ever tried, and names a refused format when its signature is recognisable.

Two structures make a small file cost unbounded CPU in Pillow, and neither the byte nor
the pixel limit sees them: a progressive JPEG with thousands of scans (each scan walks
every block of the image) and a TIFF with thousands of chained pages (Pillow's page
count is quadratic). Both are walked here, from the bytes, with a cap on each.
"""

from __future__ import annotations

import functools
import logging
import re
import struct
from collections.abc import Callable

from PIL import Image, features

from sleuth.tools.errors import ImageLoadError

logger = logging.getLogger(__name__)

CORE_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "TIFF", "BMP")
"""Always accepted (Pillow format ids; MPO opens as JPEG, APNG as PNG)."""

HEIF_EXTRA = "pip install 'sleuth[heif]'"
"""How to get the HEIF/HEIC opener (pillow-heif)."""

MAX_JPEG_SCANS = 100
"""Scans (SOS segments) accepted in a JPEG.

Encoders write 1 scan per component for baseline files and about 10 for progressive
ones (libjpeg's default script: 10 for colour, 6 for grey; mozjpeg's optimised scripts
stay in the same range). Each scan costs a pass over every block of the image, about
5 ms at the 80 MP pixel cap, so 100 scans keep a 10x margin over real encoders and bound
the cost of scans to about half a second.
"""

MAX_JPEG_SEGMENTS = 5000
"""Marker segments accepted in a JPEG (bounds the cost of the walk itself and of
Pillow's marker parsing, one Python call per segment). A 64 KB APP segment is the
largest there is, so a file at the default byte cap has at most about 3,200 full ones.
"""

MAX_TIFF_PAGES = 1000
"""Pages (IFDs in the main chain) accepted in a TIFF; only the first is analysed.

Counting them here is linear (about 1 microsecond a page); Pillow's own ``n_frames`` is
quadratic (16,000 pages took 2 s, 64,000 took 28 s).
"""

_ISO_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs"}
_ISO_HEIF_BRANDS |= {b"mif1", b"msf1", b"mif2"}
_ISO_AVIF_BRANDS = {b"avif", b"avis"}

_OWN_SIGNATURES: tuple[tuple[str, Callable[[bytes], bool]], ...] = (
    ("XPM", lambda raw: raw.startswith(b"/* XPM */")),  # before Pillow's looser XBM test
    ("IM", lambda raw: raw.startswith(b"Image type:")),
    ("TGA", lambda raw: raw[-18:] == b"TRUEVISION-XFILE.\x00"),
)
"""Formats Pillow opens without a signature test (or with one shared by another)."""

_JPEG_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7]")
"""The next marker after entropy-coded data (``FF 00`` is a stuffed byte, ``FF D0-D7``
restart markers inside the scan)."""


@functools.cache
def heif_plugin() -> bool:
    """Register pillow-heif's HEIF/HEIC opener once; return whether it is installed."""
    try:
        import pillow_heif
    except (ImportError, OSError):  # OSError: installed, but its libheif cannot load
        return False
    pillow_heif.register_heif_opener()
    logger.debug("registered the pillow-heif opener")
    return True


def pillow_avif() -> bool:
    """Tell whether this Pillow build decodes AVIF (Pillow 11.2 or later, with libavif)."""
    try:
        return bool(features.check_module("avif"))
    except ValueError:  # a Pillow that does not know the module
        return False


def accepted_formats() -> tuple[str, ...]:
    """Return the Pillow format ids sleuth opens, in the order Pillow should try them.

    Returns
    -------
    tuple of str
        :data:`CORE_FORMATS`, plus ``HEIF`` when pillow-heif is installed (the ``heif``
        extra) and ``AVIF`` when Pillow's own AVIF codec is built in.
    """
    Image.init()  # every plugin imported now, never later inside a forked worker
    extra = (("HEIF",) if heif_plugin() else ()) + (("AVIF",) if pillow_avif() else ())
    return CORE_FORMATS + extra


def describe_accepted(accepted: tuple[str, ...]) -> str:
    """Return the accepted formats as a phrase for messages."""
    names = [{"WEBP": "WebP"}.get(f, f) for f in accepted]
    if "HEIF" not in accepted:
        names.append(f"HEIF with the heif extra ({HEIF_EXTRA})")
    return ", ".join(names)


def refusal(raw: bytes, accepted: tuple[str, ...]) -> ImageLoadError:
    """Explain why Pillow, limited to ``accepted``, could not identify ``raw``.

    Only signatures are compared (no refused format's code ever runs on the bytes).

    Parameters
    ----------
    raw : bytes
        The file.
    accepted : tuple of str
        What :func:`accepted_formats` returned for the attempt.

    Returns
    -------
    ImageLoadError
        ``unsupported`` when the format is recognised (with the extra to install for
        HEIF), ``unreadable`` for an accepted HEIF/AVIF its decoder rejects,
        ``not_an_image`` otherwise.
    """
    iso = iso_image_kind(raw)
    if iso == "HEIF" and "HEIF" not in accepted:
        return ImageLoadError(
            f"a HEIF/HEIC image, which needs the heif extra: {HEIF_EXTRA}", reason="unsupported"
        )
    if iso == "AVIF" and "AVIF" not in accepted:
        return ImageLoadError(
            "an AVIF image, but this Pillow build has no AVIF codec (Pillow 11.2 or later "
            "decodes it)",
            reason="unsupported",
        )
    if iso in accepted:
        return ImageLoadError(
            f"a {iso} image that its decoder cannot read (damaged or incomplete)",
            reason="unreadable",
        )
    if (name := known_format(raw, accepted)) is not None:
        return ImageLoadError(
            f"{name} files are not accepted; sleuth reads {describe_accepted(accepted)}",
            reason="unsupported",
        )
    return ImageLoadError(
        f"not an image in a format sleuth reads ({describe_accepted(accepted)})",
        reason="not_an_image",
    )


def iso_image_kind(raw: bytes) -> str | None:
    """Return ``HEIF`` or ``AVIF`` for an ISO base media file of that kind, else None."""
    if raw[4:8] != b"ftyp":
        return None
    size = min(int.from_bytes(raw[:4], "big"), 64)  # major brand, version, compatible brands
    brands = {raw[8:12]} | {raw[i : i + 4] for i in range(16, size - 3, 4)}
    if brands & _ISO_AVIF_BRANDS:
        return "AVIF"
    return "HEIF" if brands & _ISO_HEIF_BRANDS else None


def known_format(raw: bytes, accepted: tuple[str, ...]) -> str | None:
    """Name the refused format whose signature ``raw`` carries, or None.

    Uses Pillow's own signature tests (``_accept`` of each plugin, the same 16-byte
    prefix Pillow gives them), plus :data:`_OWN_SIGNATURES` for formats without one.
    """
    for name, test in _OWN_SIGNATURES:
        if test(raw):
            return name
    Image.init()
    prefix = raw[:16]
    for name in Image.ID:
        accept = Image.OPEN[name][1]
        if name in accepted or accept is None:
            continue
        try:
            if accept(prefix):
                return name
        except (IndexError, ValueError, TypeError, struct.error):
            continue
    return None


def check_structure(raw: bytes) -> int | None:
    """Apply the structure caps to a JPEG or TIFF, reading only markers and directories.

    Parameters
    ----------
    raw : bytes
        The file.

    Returns
    -------
    int or None
        The number of pages of a TIFF (None for other formats).

    Raises
    ------
    ImageLoadError
        ``too_complex`` when a JPEG has more than :data:`MAX_JPEG_SCANS` scans or
        :data:`MAX_JPEG_SEGMENTS` segments, or a TIFF more than :data:`MAX_TIFF_PAGES`.
    """
    if raw.startswith(b"\xff\xd8\xff"):
        jpeg_scans(raw)
        return None
    if raw[:4] in (b"II*\x00", b"MM\x00*", b"MM*\x00", b"II\x00*", b"II+\x00", b"MM\x00+"):
        return tiff_pages(raw)
    return None


def jpeg_scans(raw: bytes) -> int:
    """Count the scans of the first image of a JPEG, refusing past the caps.

    Walks marker segments from SOI to EOI; entropy-coded data after each SOS is skipped
    with one regular-expression search, so the walk costs one Python step per segment.

    Returns
    -------
    int
        Number of SOS segments.

    Raises
    ------
    ImageLoadError
        ``too_complex`` past :data:`MAX_JPEG_SCANS` scans or :data:`MAX_JPEG_SEGMENTS`
        segments.

    References
    ----------
    .. [1] ITU-T T.81 (JPEG), Annex B: compressed data formats.
    """
    pos, scans, segments, end = 2, 0, 0, len(raw)
    while pos + 1 < end:
        if raw[pos] != 0xFF or raw[pos + 1] == 0xFF:  # garbage or fill bytes
            found = _JPEG_MARKER.search(raw, pos + 1)
            if found is None:
                break
            pos = found.start()
            continue
        marker = raw[pos + 1]
        if marker == 0xD9:  # EOI: later images (MPO) are never decoded
            break
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # no length field
            pos += 2
            continue
        segments += 1
        if segments > MAX_JPEG_SEGMENTS:
            raise _too_complex(f"more than {MAX_JPEG_SEGMENTS} JPEG marker segments")
        length = int.from_bytes(raw[pos + 2 : pos + 4], "big")
        pos += 2 + max(length, 2)
        if marker == 0xDA:
            scans += 1
            if scans > MAX_JPEG_SCANS:
                raise _too_complex(
                    f"more than {MAX_JPEG_SCANS} JPEG scans (progressive encoders write about 10)"
                )
            found = _JPEG_MARKER.search(raw, pos)
            pos = found.start() if found else end
    return scans


def tiff_pages(raw: bytes) -> int:
    """Count the pages of a TIFF by following its IFD chain, refusing past the cap.

    Mirrors how Pillow reads the header (byte order, BigTIFF when the third byte is
    43). The count stops at a loop or at an offset outside the file; Pillow reports
    those when it decodes.

    Returns
    -------
    int
        Number of IFDs in the main chain (0 when the first offset is invalid).

    Raises
    ------
    ImageLoadError
        ``too_complex`` past :data:`MAX_TIFF_PAGES` pages.

    References
    ----------
    .. [1] Adobe, "TIFF Revision 6.0", 1992, section 2; BigTIFF (libtiff.org).
    """
    order = "<" if raw[:2] == b"II" else ">"
    big = raw[2] == 43
    count_fmt, entry, next_fmt = (
        (order + "Q", 20, order + "Q") if big else (order + "H", 12, order + "L")
    )
    count_size, next_size = struct.calcsize(count_fmt), struct.calcsize(next_fmt)
    header = 16 if big else 8
    if len(raw) < header:
        return 0
    offset = struct.unpack_from(next_fmt, raw, header - next_size)[0]
    pages, seen = 0, set()
    while offset and offset not in seen and offset + count_size <= len(raw):
        pages += 1
        if pages > MAX_TIFF_PAGES:
            raise _too_complex(f"more than {MAX_TIFF_PAGES} TIFF pages")
        seen.add(offset)
        n = struct.unpack_from(count_fmt, raw, offset)[0]
        link = offset + count_size + n * entry
        if link + next_size > len(raw):
            break
        offset = struct.unpack_from(next_fmt, raw, link)[0]
    return pages


def _too_complex(what: str) -> ImageLoadError:
    return ImageLoadError(
        f"the file has {what}: refused, as decoding time grows with every one",
        reason="too_complex",
    )
