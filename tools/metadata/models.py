"""The metadata panel's data: rows, GPS, thumbnail, C2PA chain, generator text.

Every string in these models comes from the file and is untrusted: control characters
are removed and lengths bounded here, but markup is kept as text; escaping it is the
renderer's job.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
"""Control characters and bidirectional overrides (which could reorder what is shown)."""
_LINE_BREAKS = re.compile(r"[\t\n\r]")


class MetadataRow(BaseModel):
    """One metadata field as the panel shows it.

    Attributes
    ----------
    group : str
        ``EXIF``, ``GPS``, ``IPTC``, ``XMP``, ``PNG text``, ``C2PA``, ``ICC`` or ``File``.
    tag : str
        Human name: Pillow's EXIF tag names, IPTC dataset names, XMP qualified names
        (``prefix:Name``, ``parent/prefix:child`` and ``[n]`` for structures and lists).
    value : str
        Printable text on one line, at most ``max_value_chars`` long, ending in ``…``
        when cut.
    """

    model_config = ConfigDict(frozen=True)

    group: str
    tag: str
    value: str


class Gps(BaseModel):
    """Where the EXIF GPS directory says the picture was taken.

    Attributes
    ----------
    latitude, longitude : float
        Decimal degrees, negative for south and west.
    altitude : float or None
        Metres above sea level (negative below), when recorded.
    text : str
        The position as shown, e.g. ``48.85837 N, 2.29448 E, 35 m``.
    """

    model_config = ConfigDict(frozen=True)

    latitude: float
    longitude: float
    altitude: float | None
    text: str


class EmbeddedThumbnail(BaseModel):
    """The EXIF (IFD1) thumbnail, re-encoded, and how far it is from the image.

    Attributes
    ----------
    width, height : int
        Size of ``jpeg``.
    jpeg : bytes
        The thumbnail decoded and re-encoded as a small baseline JPEG (at most
        320 pixels a side, no metadata), turned upright like the image.
    mismatch : float or None
        ``(1 - r) / 2`` in [0, 1], where ``r`` is the correlation of the thumbnail with
        the image downscaled to its size: the better of the ``provenance`` tool's
        measure (dark bars trimmed from the thumbnail first) and the same measure on the
        untrimmed thumbnail. 0 is the same picture; above 0.2 the tool reports a
        different one. None when the two could not be compared.
    note : str
        One sentence on what the mismatch means.
    """

    model_config = ConfigDict(frozen=True)

    width: int
    height: int
    jpeg: bytes
    mismatch: float | None
    note: str


class C2paManifest(BaseModel):
    """One manifest of a C2PA manifest store (strings are excerpts of file text).

    Attributes
    ----------
    label : str
        The manifest's label (its URN).
    claim_generator : str or None
        The software that wrote the manifest.
    signer : str or None
        Issuer (organisation) of the signing certificate, with its common name.
    issued : str or None
        Signing time as the manifest states it (ISO 8601).
    actions : list of str
        ``c2pa.created``, ``c2pa.edited``, ..., each followed by its software agent in
        parentheses when named.
    ingredients : list of str
        Ingredient titles, each followed by its relationship (``parentOf``, ...).
    ai_source : str or None
        The digital source type the manifest's actions declare (the IPTC term, e.g.
        ``trainedAlgorithmicMedia``), the strongest when several.
    """

    model_config = ConfigDict(frozen=True)

    label: str
    claim_generator: str | None
    signer: str | None
    issued: str | None
    actions: list[str]
    ingredients: list[str]
    ai_source: str | None


class C2paChain(BaseModel):
    """The C2PA manifest store: whether it holds, why, and its manifests.

    Attributes
    ----------
    state : {"valid", "invalid", "untrusted", "unreadable"}
        ``valid``: the signature validates and the bytes are unchanged (no trust list
        is loaded offline, so ``valid`` is only given when the signer is not flagged as
        untrusted); ``untrusted``: it validates but the signer is not on a trust list;
        ``invalid``: a signature, hash or credential check fails; ``unreadable``: the
        store could not be read (damaged, unsupported, or a cloud-only manifest).
    reason : str
        Why, first: ``signature does not validate: ...``, ``signer not on the trust
        list ...``, ``credential expired ...``.
    manifests : list of C2paManifest
        The active manifest first, then its ingredients' manifests (breadth first),
        then any other manifest of the store.
    """

    model_config = ConfigDict(frozen=True)

    state: Literal["valid", "invalid", "untrusted", "unreadable"]
    reason: str
    manifests: list[C2paManifest]


class GeneratorText(BaseModel):
    """Generation settings an image generator wrote into the file.

    Attributes
    ----------
    source : str
        What and where: ``A1111 parameters``, ``ComfyUI prompt``, ``ComfyUI workflow``,
        ``InvokeAI invokeai_metadata``, ``A1111 EXIF UserComment``, ...
    text : str
        The text, line breaks kept, other control characters removed, at most
        :data:`GENERATOR_CHARS` characters (ending in ``…`` when cut).
    """

    model_config = ConfigDict(frozen=True)

    source: str
    text: str


class ImageMetadata(BaseModel):
    """Everything the metadata panel shows about one file.

    Attributes
    ----------
    reader : str
        Which library read what.
    rows : list of MetadataRow
        File, C2PA, ICC, EXIF, GPS, IPTC, PNG text and XMP rows, in that order.
    gps : Gps or None
        The GPS position, when the EXIF records a valid one.
    thumbnail : EmbeddedThumbnail or None
        The EXIF thumbnail, when there is a decodable one.
    c2pa : C2paChain or None
        None when the file has no C2PA manifest.
    generator : list of GeneratorText
        Generator settings found in text chunks or EXIF.
    notes : list of str
        What could not be read or was cut.
    """

    model_config = ConfigDict(frozen=True)

    reader: str
    rows: list[MetadataRow]
    gps: Gps | None
    thumbnail: EmbeddedThumbnail | None
    c2pa: C2paChain | None
    generator: list[GeneratorText]
    notes: list[str]


GENERATOR_CHARS = 20_000
"""Longest :attr:`GeneratorText.text` (a ComfyUI workflow can run to megabytes)."""
MAX_NOTES = 20


def clean(text: str, limit: int, *, lines: bool = False) -> str:
    r"""Return ``text`` without control characters, cut to ``limit`` characters.

    Parameters
    ----------
    text : str
        Untrusted text.
    limit : int
        Longest result; a cut text ends in ``…`` (counted in the limit).
    lines : bool
        Keep tabs and line breaks (``\r\n`` becomes ``\n``); otherwise they become
        spaces.

    Returns
    -------
    str
        Markup is kept as it is.
    """
    text = text[: limit * 4 + 8]
    if lines:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    else:
        text = _LINE_BREAKS.sub(" ", text)
    text = _CONTROL.sub("", text).strip()
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


class Rows:
    """Collects rows up to a bound; past it, rows are dropped and ``cut`` is set."""

    def __init__(self, max_rows: int, max_chars: int) -> None:
        self.rows: list[MetadataRow] = []
        self.max_rows = max_rows
        self.max_chars = max_chars
        self.cut = False

    @property
    def full(self) -> bool:
        """True when no more rows fit."""
        return len(self.rows) >= self.max_rows

    def add(self, group: str, tag: str, value: str) -> bool:
        """Add a row (cleaned and bounded); return False when it did not fit."""
        if self.full:
            self.cut = True
            return False
        self.rows.append(
            MetadataRow(group=group, tag=clean(tag, 200), value=clean(value, self.max_chars))
        )
        return True
