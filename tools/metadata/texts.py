"""IPTC-IIM, XMP, ICC and file rows.

IPTC is read by Pillow (``IptcImagePlugin.getiptcinfo``), the ICC profile by Pillow's
LittleCMS binding (``ImageCms``), XMP packets are found by the ``provenance`` tool's
``find_xmp_packets`` and parsed with defusedxml, then flattened to qualified names.
"""

from __future__ import annotations

import io
import re
import warnings
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree as SafeET
from PIL import Image, IptcImagePlugin

from sleuth.tools.builtin.provenance import xmp
from sleuth.tools.image import LoadedImage
from sleuth.tools.metadata.models import Rows

IPTC_NAMES = {
    (1, 90): "CodedCharacterSet", (2, 0): "RecordVersion", (2, 3): "ObjectTypeReference",
    (2, 5): "ObjectName", (2, 7): "EditStatus", (2, 10): "Urgency",
    (2, 12): "SubjectReference", (2, 15): "Category", (2, 20): "SupplementalCategories",
    (2, 22): "FixtureIdentifier", (2, 25): "Keywords", (2, 26): "ContentLocationCode",
    (2, 27): "ContentLocationName", (2, 30): "ReleaseDate", (2, 35): "ReleaseTime",
    (2, 37): "ExpirationDate", (2, 38): "ExpirationTime", (2, 40): "SpecialInstructions",
    (2, 42): "ActionAdvised", (2, 45): "ReferenceService", (2, 47): "ReferenceDate",
    (2, 50): "ReferenceNumber", (2, 55): "DateCreated", (2, 60): "TimeCreated",
    (2, 62): "DigitalCreationDate", (2, 63): "DigitalCreationTime",
    (2, 65): "OriginatingProgram", (2, 70): "ProgramVersion", (2, 75): "ObjectCycle",
    (2, 80): "By-line", (2, 85): "By-lineTitle", (2, 90): "City", (2, 92): "Sub-location",
    (2, 95): "Province-State", (2, 100): "Country-PrimaryLocationCode",
    (2, 101): "Country-PrimaryLocationName", (2, 103): "OriginalTransmissionReference",
    (2, 105): "Headline", (2, 110): "Credit", (2, 115): "Source", (2, 116): "CopyrightNotice",
    (2, 118): "Contact", (2, 120): "Caption-Abstract", (2, 121): "LocalCaption",
    (2, 122): "Writer-Editor", (2, 130): "ImageType", (2, 131): "ImageOrientation",
    (2, 135): "LanguageIdentifier",
}  # fmt: skip
"""IPTC-IIM 4.2 dataset names (record, dataset)."""
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
XML_NS = "http://www.w3.org/XML/1998/namespace"
LISTS = (f"{{{RDF}}}Seq", f"{{{RDF}}}Bag", f"{{{RDF}}}Alt")
MAX_DEPTH = 16
MAX_ICC = 4 * 1024 * 1024
_XMLNS = re.compile(rb"""xmlns:([A-Za-z_][\w.-]{0,40})\s*=\s*["']([^"'<>]{1,300})["']""")
_ERRORS = (OSError, ValueError, SyntaxError, TypeError, KeyError, IndexError, EOFError)


def file_rows(image: LoadedImage, rows: Rows) -> None:
    """Add the File rows: format, size, mode, bytes, SHA-256, frames, orientation."""
    rows.add("File", "Format", image.format)
    rows.add("File", "Size", f"{image.size[0]} × {image.size[1]} pixels")
    rows.add("File", "Mode", image.mode)
    rows.add("File", "Bytes", f"{len(image.raw):,}")
    rows.add("File", "SHA-256", image.sha256)
    if image.frames > 1:
        rows.add("File", "Frames", str(image.frames))
    if image.orientation != 1:
        rows.add("File", "Orientation applied", str(image.orientation))


def iptc_rows(picture: Image.Image, rows: Rows, notes: list[str]) -> None:
    """Add a row per IPTC-IIM dataset (JPEG APP13 and TIFF), read by Pillow."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            info = IptcImagePlugin.getiptcinfo(picture)  # type: ignore[arg-type]
    except _ERRORS as err:
        notes.append(f"IPTC block unreadable: {type(err).__name__}")
        return
    if not info:
        return
    utf8 = info.get((1, 90)) in (b"\x1b%G", [b"\x1b%G"])
    for key, value in info.items():
        name = IPTC_NAMES.get(key, f"{key[0]}:{key[1]}")
        values = value if isinstance(value, list) else [value]
        text = "; ".join(_iptc_text(v, utf8) for v in values[:64])
        if not rows.add("IPTC", name, text):
            return


def _iptc_text(value: bytes, utf8: bool) -> str:
    if not isinstance(value, bytes):
        return str(value)
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        text = value.decode("utf-8" if utf8 else "latin-1", "replace")
    binary = any(ord(c) < 0x20 and c not in "\t\n\r" for c in text[:4096])
    return value[:32].hex(" ") if binary else text


def icc_rows(icc: bytes, rows: Rows, notes: list[str]) -> None:
    """Add the ICC profile's description, copyright, device and colour space rows."""
    if len(icc) > MAX_ICC:
        notes.append(f"ICC profile of {len(icc):,} bytes not read (over {MAX_ICC:,})")
        return
    from PIL import ImageCms

    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc)).profile
        fields = {
            "Description": profile.profile_description,
            "Copyright": profile.copyright,
            "Manufacturer": profile.manufacturer,
            "Model": profile.model,
            "Device class": profile.device_class,
            "Colour space": profile.xcolor_space,
            "Version": f"{profile.version:g}",
        }
    except (ImageCms.PyCMSError, *_ERRORS) as err:
        notes.append(f"ICC profile unreadable: {type(err).__name__}")
        return
    rows.add("ICC", "Bytes", f"{len(icc):,}")
    for name, value in fields.items():
        if isinstance(value, str) and value.strip() and not rows.add("ICC", name, value):
            return


def xmp_rows(packets: list[bytes], rows: Rows, notes: list[str]) -> None:
    """Flatten XMP packets into rows named by qualified names.

    Simple properties give ``prefix:Name``; list items are joined with ``; `` when they
    are all text, else numbered ``prefix:Name[n]``; structures give
    ``prefix:Parent/prefix:Child``. Language alternatives are joined.

    Parameters
    ----------
    packets : list of bytes
        Output of the provenance tool's ``find_xmp_packets`` (bounded).
    rows : Rows
        Where the rows go.
    notes : list of str
        Where packets that do not parse are noted.
    """
    for number, packet in enumerate(packets, 1):
        try:
            root = SafeET.fromstring(packet)
        except (ParseError, defusedxml.DefusedXmlException, ValueError, UnicodeError) as err:
            notes.append(f"XMP packet {number} unreadable: {type(err).__name__}")
            continue
        prefixes: dict[str, str] = {}
        for match in _XMLNS.finditer(packet[: xmp.MAX_PACKET]):
            uri = match.group(2).decode("utf-8", "replace")
            prefixes.setdefault(uri, match.group(1).decode("ascii"))
        walker = _XmpWalker(prefixes, rows)
        for rdf in root.iter(f"{{{RDF}}}RDF"):
            for description in rdf:
                if description.tag == f"{{{RDF}}}Description":
                    walker.properties(description, "", 0)
        if walker.too_deep:
            notes.append(f"XMP packet {number} nested deeper than {MAX_DEPTH} levels: cut there")
        if walker.elements > xmp.MAX_ELEMENTS:
            notes.append(f"XMP packet {number} cut at {xmp.MAX_ELEMENTS:,} elements")
        if rows.full:
            return


class _XmpWalker:
    """Turns RDF/XML into rows, bounded in depth, elements and rows."""

    def __init__(self, prefixes: dict[str, str], rows: Rows) -> None:
        self.prefixes = prefixes
        self.rows = rows
        self.elements = 0
        self.too_deep = False

    def name(self, tag: str) -> str:
        """Return ``prefix:local`` for ``{uri}local`` (the URI when no prefix is declared)."""
        uri, _, local = tag[1:].rpartition("}") if tag.startswith("{") else ("", "", tag)
        prefix = self.prefixes.get(uri) or ("xml" if uri == XML_NS else uri)
        return f"{prefix}:{local}" if prefix else local

    def attributes(self, node: Element, path: str) -> None:
        """Emit a row per attribute of ``node`` outside the RDF namespace."""
        for key, value in node.attrib.items():
            if not key.startswith(f"{{{RDF}}}"):
                self.rows.add("XMP", path + self.name(key), value)

    def properties(self, node: Element, path: str, depth: int) -> None:
        """Emit a row per property of ``node`` (its attributes and child elements)."""
        if depth > MAX_DEPTH:
            self.too_deep = True
            return
        self.attributes(node, path)
        for child in node:
            if self.rows.full:
                self.rows.cut = True
                return
            if child.tag == f"{{{RDF}}}Description":
                self.properties(child, path, depth + 1)
            else:
                self.value(child, path + self.name(child.tag), depth + 1)

    def value(self, element: Element, name: str, depth: int) -> None:
        """Emit the value of one property element: text, resource, list or structure."""
        self.elements += 1
        self.too_deep = self.too_deep or depth > MAX_DEPTH
        if self.rows.full:
            self.rows.cut = True
        if depth > MAX_DEPTH or self.rows.full or self.elements > xmp.MAX_ELEMENTS:
            return
        resource = element.attrib.get(f"{{{RDF}}}resource")
        children = list(element)
        if resource is not None:
            self.rows.add("XMP", name, resource)
        elif not children:
            text = (element.text or "").strip()
            if text or not element.attrib:
                self.rows.add("XMP", name, text)
            self.attributes(element, name + "/")  # qualifiers, shorthand structures
        elif len(children) == 1 and children[0].tag in LISTS:
            items = list(children[0])[:256]
            if all(not list(item) and len(item.attrib) <= 1 for item in items):
                self.rows.add("XMP", name, "; ".join((i.text or "").strip() for i in items))
            else:
                for index, item in enumerate(items, 1):
                    self.value(item, f"{name}[{index}]", depth + 1)
        else:
            self.properties(element, name + "/", depth)
