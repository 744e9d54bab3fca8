"""``provenance``: what the file declares about its origin.

Reads C2PA manifests (offline), IPTC/XMP digital source types and AI fields, generator
metadata (A1111/Forge, ComfyUI, InvokeAI, NovelAI, Fooocus, SwarmUI, OpenAI Labs), camera
EXIF and its consistency, and decodes the Stable Diffusion invisible watermark on lossless
files. Every byte of metadata is untrusted input: it is bounded, never executed, and
reaches findings only as short excerpts in metrics.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from sleuth.tools.base import Finding, ToolContext, ToolResult, forensic_tool
from sleuth.tools.builtin.provenance import c2pa_reader, exif, generator, watermark, xmp
from sleuth.tools.image import LoadedImage

LOSSLESS = {"PNG", "BMP", "TIFF", "PPM"}
"""Formats whose pixels can still carry the invisible watermark (plus lossless WebP)."""
_PIL_ERRORS = (OSError, ValueError, SyntaxError, struct.error, TypeError, KeyError, EOFError)


class ProvenanceParams(BaseModel):
    """Parameters of :func:`provenance`."""

    model_config = ConfigDict(extra="forbid")

    watermark: bool = Field(
        True,
        description="Decode the Stable Diffusion invisible watermark on lossless files "
        "(PNG, lossless WebP, TIFF, BMP). JPEG is never decoded: it erases the mark.",
    )
    watermark_max_pixels: int = Field(
        16_000_000,
        ge=65_536,
        le=100_000_000,
        description="Cost bound of the watermark decoder: larger images are read on a "
        "central band of rows of this many pixels.",
    )
    excerpt_chars: int = Field(
        200, ge=20, le=1000, description="Length of quoted metadata excerpts in metrics."
    )


@dataclass
class Container:
    """Metadata pulled out of the file's container, before interpretation."""

    texts: dict[str, str] = field(default_factory=dict)
    exif: Image.Exif | None = None
    exif_blob: bytes | None = None
    xmp_extra: list[str | bytes] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def read_container(image: LoadedImage) -> Container:
    """Collect text chunks, EXIF and XMP from the file without decoding pixels.

    Parameters
    ----------
    image : LoadedImage
        The loaded file; only ``raw`` and ``format`` are read.

    Returns
    -------
    Container
        ``notes`` says what could not be read.
    """
    box = Container()
    if image.raw.startswith(generator.PNG_SIGNATURE):
        png = generator.read_png_chunks(image.raw)
        box.texts = dict(png.texts)
        if (packet := box.texts.pop("XML:com.adobe.xmp", None)) is not None:
            box.xmp_extra.append(packet)
        box.exif_blob = png.exif
        box.notes += [f"text chunk {k[:40]!r} cut at {generator.MAX_TEXT} characters"
                      for k in png.truncated[:5]]  # fmt: skip
        if png.damaged:
            box.notes.append("the PNG chunk structure is damaged")
        if box.exif_blob:
            box.exif = _load_exif(box.exif_blob, box.notes)
        return box
    try:
        with image.open_file() as img:
            info = dict(img.info)
            box.exif = img.getexif()
    except _PIL_ERRORS as err:
        box.notes.append(f"metadata unreadable by Pillow ({type(err).__name__})")
        return box
    blob = info.get("exif")
    box.exif_blob = blob if isinstance(blob, bytes) else None
    for key, value in info.items():
        if isinstance(value, str) and key not in ("exif", "xmp"):
            box.texts[str(key)[:79]] = value[: generator.MAX_TEXT]
    if isinstance(info.get("xmp"), bytes | str):
        box.xmp_extra.append(info["xmp"])
    return box


def _load_exif(blob: bytes, notes: list[str]) -> Image.Exif | None:
    parsed = Image.Exif()
    try:
        parsed.load(blob if blob.startswith(b"Exif\x00\x00") else b"Exif\x00\x00" + blob)
    except _PIL_ERRORS:
        notes.append("the EXIF block is unreadable")
        return None
    return parsed


def is_lossless(image: LoadedImage) -> bool:
    """Tell whether the format stores pixels losslessly (WebP: a ``VP8L`` bitstream)."""
    if image.format in LOSSLESS:
        return True
    if image.format != "WEBP" or image.raw[:4] != b"RIFF":
        return False
    pos = 12
    kinds: set[bytes] = set()
    while pos + 8 <= len(image.raw) and len(kinds) < 64:
        kind, size = image.raw[pos : pos + 4], struct.unpack("<I", image.raw[pos + 4 : pos + 8])[0]
        kinds.add(kind)
        pos += 8 + size + (size & 1)
    return b"VP8L" in kinds and b"VP8 " not in kinds


def _read_exif(box: Container) -> exif.ExifFacts | None:
    if box.exif is None or (len(box.exif) == 0 and not box.exif_blob):
        return None
    try:
        return exif.read_exif(box.exif, box.exif_blob)
    except _PIL_ERRORS as err:
        box.notes.append(f"the EXIF is unreadable ({type(err).__name__})")
        return None


def _exif_findings(
    image: LoadedImage, facts: exif.ExifFacts, generator_reported: bool
) -> list[Finding]:
    similarity = None
    if facts.thumbnail is not None and (facts.text.get("Make") or facts.text.get("Model")):
        similarity = exif.thumbnail_similarity(
            facts.thumbnail, image.full, orientation=image.orientation
        )
    return exif.exif_findings(
        facts,
        size=image.size,
        orientation=image.orientation,
        thumbnail=similarity,
        generator_reported=generator_reported,
    )


@forensic_tool(
    name="provenance",
    params=ProvenanceParams,
    summary="Read what the file declares about its origin: C2PA Content Credentials "
    "(offline), IPTC digitalSourceType and AI fields in XMP, generator settings (A1111, "
    "ComfyUI, InvokeAI, NovelAI, ...), camera EXIF and its consistency, and the Stable "
    "Diffusion invisible watermark. A declared AI origin is the strongest evidence there is; "
    "run this first.",
    caveat="Metadata is easily stripped (screenshots, social media, re-encoding), so absence "
    "proves nothing; camera EXIF can be copied or forged; C2PA signatures are not checked "
    "against a trust list; the watermark is read only on lossless files.",
    score_meaning="Suspicion that the image is AI-generated given the declared provenance: "
    "0.95 or more for a declared AI origin (C2PA/IPTC source type, generator metadata, "
    "watermark), 0.2-0.3 for camera or capture provenance without an AI claim, none when "
    "nothing is declared.",
    cost="cheap",
    survey=True,
    regional=False,
    aliases=("provenance", "metadata", "exif", "c2pa", "xmp", "iptc", "watermark"),
)
def provenance(image: LoadedImage, params: ProvenanceParams, ctx: ToolContext) -> ToolResult:
    """Read every provenance source of the file and report one finding per source."""
    del ctx  # no artifacts
    limit = params.excerpt_chars
    findings: list[Finding] = []
    facts = c2pa_reader.read_c2pa(image.raw, image.format)
    if facts is not None:
        findings.append(c2pa_reader.c2pa_finding(facts))
    box = read_container(image)
    xmp_facts = xmp.read_xmp(xmp.find_xmp_packets(image.raw, box.xmp_extra), limit=limit)
    tool_name = xmp_facts.creator_tool or ""
    generator_tool = bool(tool_name) and exif.GENERATOR_NAMES.search(tool_name) is not None
    if (found := xmp.xmp_finding(xmp_facts, generator_tool=generator_tool)) is not None:
        findings.append(found)
    exif_facts = _read_exif(box)
    exif_text = exif_facts.text if exif_facts is not None else {}
    claims = generator.find_generator_claims(box.texts, exif_text, limit=limit)
    if (found := generator.generator_finding(claims)) is not None:
        findings.append(found)
    if exif_facts is not None:
        findings += _exif_findings(image, exif_facts, generator_reported=bool(claims))
    matches: list[watermark.WatermarkMatch] = []
    checked = params.watermark and is_lossless(image)
    if checked:
        matches = watermark.match_payloads(image.full, max_pixels=params.watermark_max_pixels)
        if (found := watermark.watermark_finding(matches)) is not None:
            findings.append(found)
    if not findings:
        findings.append(_nothing_found(checked, matches))
    if box.notes:
        findings.append(
            Finding(
                summary="Part of the metadata could not be read: " + "; ".join(box.notes[:5]),
                kind="provenance",
                caveats=["damaged or oversized metadata is not evidence by itself"],
            )
        )
    return ToolResult(findings=findings)


def _nothing_found(checked: bool, matches: list[watermark.WatermarkMatch]) -> Finding:
    metrics: dict[str, str | int | float | bool | None] = {"sd_watermark_checked": checked}
    metrics.update(watermark.watermark_metrics(matches))
    return Finding(
        summary="No provenance data found (no C2PA, IPTC source type, generator metadata, "
        "camera EXIF or watermark); absence is not evidence of authenticity.",
        kind="provenance",
        metrics=metrics,
        caveats=["most platforms strip metadata, and most generators write none"],
    )
