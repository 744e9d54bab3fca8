"""Everything a file says about itself, for the metadata panel: :func:`read_metadata`.

Full EXIF (IFD0, Exif, Interop, IFD1 and GPS directories), IPTC-IIM, XMP flattened to
qualified names, PNG text chunks, the ICC profile, file facts, the EXIF thumbnail and
how far it is from the image, the C2PA manifest chain with its validation state, and
generator settings (A1111, ComfyUI, ...).

Which reader
    EXIF is read with Pillow, not exifread. Pillow is already a dependency, is what
    loads the image and what the ``provenance`` tool reads EXIF with, so the panel and
    the tool cannot disagree about a file; it decodes every standard directory (IFD0,
    Exif, GPS, Interop, IFD1) with the standard tag names. What exifread adds is
    decoding of some vendors' MakerNotes, which the panel shows as a size only
    (vendor formats are undocumented binary, and parsing them is attack surface for no
    forensic gain here). The container walk (PNG chunks, XMP packets, the IFD1
    thumbnail) and the C2PA store are read by the ``provenance`` tool's own code, so
    there is one parser of each.

Everything read is untrusted: values are strings without control characters, bounded
in length (markup is kept as text: escaping is the renderer's job), rows and list
items are bounded in number, nothing is evaluated, and a block that does not parse
becomes a note instead of an exception.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from importlib import metadata as distributions
from typing import TypeVar

import PIL
from PIL import Image

from sleuth.tools.builtin.provenance import Container, generator, read_container, xmp
from sleuth.tools.builtin.provenance import exif as provenance_exif
from sleuth.tools.image import LoadedImage
from sleuth.tools.metadata import c2pa_chain, exif_rows, texts
from sleuth.tools.metadata.models import (
    GENERATOR_CHARS,
    MAX_NOTES,
    C2paChain,
    C2paManifest,
    EmbeddedThumbnail,
    GeneratorText,
    Gps,
    ImageMetadata,
    MetadataRow,
    Rows,
    clean,
)

__all__ = [
    "C2paChain",
    "C2paManifest",
    "EmbeddedThumbnail",
    "GeneratorText",
    "Gps",
    "ImageMetadata",
    "MetadataRow",
    "read_metadata",
]

_QUOTED = re.compile(r"'([^']{1,79})'")
_SHORT_NAMES = {
    "AUTOMATIC1111/Forge-style WebUI": "A1111",
    "an unidentified generator": "Unidentified generator",
    "a diffusion app (JSON parameters)": "Diffusion app",
}
T = TypeVar("T")


def read_metadata(
    image: LoadedImage, *, max_rows: int = 500, max_value_chars: int = 300
) -> ImageMetadata:
    """Read every metadata block of a file for display.

    Parameters
    ----------
    image : LoadedImage
        The loaded file (a view reads the whole file's metadata).
    max_rows : int
        Most rows returned; past it a note says the list was cut.
    max_value_chars : int
        Longest row value, ``…`` included.

    Returns
    -------
    ImageMetadata
        Never raises on hostile input: what could not be read is in ``notes``.
    """
    rows = Rows(max(max_rows, 0), max(max_value_chars, 1))
    notes: list[str] = []
    readers = [f"Pillow {PIL.__version__} (file, EXIF, IPTC, ICC profile)"]
    texts.file_rows(image, rows)
    chain = _guarded("C2PA", notes, lambda: c2pa_chain.read_chain(image.raw, image.format))
    if chain is not None:
        readers.append(f"c2pa-python {_version('c2pa-python')} (C2PA, offline)")
        _c2pa_rows(chain, rows)
    box = _guarded("container", notes, lambda: read_container(image)) or Container()
    notes += box.notes
    if image.raw.startswith(generator.PNG_SIGNATURE):
        readers.append("the provenance tool's PNG chunk reader (PNG text, eXIf)")
    picture = _guarded("file", notes, image.open_file)
    info = dict(picture.info) if picture is not None else {}
    icc = info.get("icc_profile")
    if isinstance(icc, bytes) and icc:
        _guarded("ICC profile", notes, lambda: texts.icc_rows(icc, rows, notes))
    exif = _load_exif(image, picture, box.exif_blob, notes)
    gps, thumbnail, exif_text = None, None, {}
    if exif is not None:
        found = _guarded("EXIF", notes, lambda: exif_rows.exif_rows(exif, rows, notes))
        gps = _guarded("GPS", notes, lambda: exif_rows.read_gps(found or {}, notes))
        facts = _guarded("EXIF", notes, lambda: provenance_exif.read_exif(exif, box.exif_blob))
        exif_text = facts.text if facts is not None else {}
        if facts is not None and facts.thumbnail is not None:
            small = facts.thumbnail
            thumbnail = _guarded("EXIF thumbnail", notes, lambda: _thumbnail(image, small, notes))
    if picture is not None:
        _guarded("IPTC", notes, lambda: texts.iptc_rows(picture, rows, notes))
        picture.close()
    _guarded("text", notes, lambda: _text_rows(image, box.texts, info.get("comment"), rows))
    packets = _guarded("XMP", notes, lambda: xmp.find_xmp_packets(image.raw, box.xmp_extra))
    if packets:
        readers.append(f"defusedxml {_version('defusedxml')} (XMP)")
        _guarded("XMP", notes, lambda: texts.xmp_rows(packets, rows, notes))
    found_text = _guarded("generator", notes, lambda: _generator(box.texts, exif_text)) or []
    if rows.cut:
        notes.append(f"cut at {rows.max_rows} rows")
    return ImageMetadata(
        reader=", ".join(readers),
        rows=rows.rows,
        gps=gps,
        thumbnail=thumbnail,
        c2pa=chain,
        generator=found_text,
        notes=[clean(n, 300) for n in dict.fromkeys(notes)][:MAX_NOTES],
    )


def _guarded(section: str, notes: list[str], read: Callable[[], T]) -> T | None:
    """Run one section's reader; an unexpected error becomes a note, not an exception.

    The panel must show whatever else a hostile file holds when one block trips a
    parser; the note names the section and the error so that it is seen, not hidden.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return read()
    except Exception as err:
        notes.append(f"{section} unreadable: {type(err).__name__}: {str(err)[:120]}")
        return None


def _version(distribution: str) -> str:
    try:
        return distributions.version(distribution)
    except distributions.PackageNotFoundError:
        return "(version unknown)"


def _load_exif(
    image: LoadedImage, picture: Image.Image | None, blob: bytes | None, notes: list[str]
) -> Image.Exif | None:
    if picture is not None and blob is None:
        found = picture.info.get("exif")
        blob = found if isinstance(found, bytes) else None
    if blob:
        return exif_rows.load_exif(blob, notes)
    if image.format == "TIFF" and picture is not None:  # EXIF lives in the TIFF's own IFD
        return _guarded("EXIF", notes, picture.getexif)
    return None


def _thumbnail(image: LoadedImage, small: bytes, notes: list[str]) -> EmbeddedThumbnail | None:
    return exif_rows.read_thumbnail(small, image.full, image.orientation, notes)


def _c2pa_rows(chain: C2paChain, rows: Rows) -> None:
    rows.add("C2PA", "Validation", chain.state)
    rows.add("C2PA", "Reason", chain.reason)
    rows.add("C2PA", "Manifests", str(len(chain.manifests)))
    if chain.manifests:
        active = chain.manifests[0]
        rows.add("C2PA", "Active manifest", active.label)
        for tag, value in (
            ("Claim generator", active.claim_generator),
            ("Signer", active.signer),
            ("Signed", active.issued),
            ("Digital source type", active.ai_source),
        ):
            if value:
                rows.add("C2PA", tag, value)


def _text_rows(image: LoadedImage, found: dict[str, str], comment: object, rows: Rows) -> None:
    group = "PNG text" if image.format == "PNG" else "File"
    for key, value in found.items():
        if not rows.add(group, key if group == "PNG text" else f"Text {key}", value):
            return
    if isinstance(comment, bytes) and comment:
        rows.add("File", "Comment", exif_rows.show_bytes(comment, rows.max_chars))


def _generator(found: dict[str, str], exif_text: dict[str, str]) -> list[GeneratorText]:
    """Return the text of each generator declaration the provenance tool recognises."""
    lowered = {key.lower(): value for key, value in found.items()}
    out: list[GeneratorText] = []
    for claim in generator.find_generator_claims(found, exif_text):
        name = _SHORT_NAMES.get(claim.generator, claim.generator)
        if claim.source.startswith("EXIF"):
            keys = [("EXIF UserComment", exif_text.get("UserComment", ""))]
        else:
            keys = [(key, lowered.get(key.lower(), "")) for key in _QUOTED.findall(claim.source)]
        for key, text in keys:
            if text.strip() and len(out) < 16:
                shown = clean(text, GENERATOR_CHARS, lines=True)
                out.append(GeneratorText(source=f"{name} {key}", text=shown))
    return out
