"""IPTC/XMP provenance.

``Iptc4xmpExt:DigitalSourceType``, the IPTC 2025.1 AI fields, and the
``dcterms:provenance`` link to a cloud-hosted C2PA manifest.

XMP packets are found in the raw bytes (JPEG APP1, WebP ``XMP `` chunk, uncompressed PNG
iTXt, TIFF, HEIF) and in decoded PNG iTXt text, bounded in number and size, and parsed
with defusedxml (no DTDs, no entities).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from xml.etree.ElementTree import ParseError

import defusedxml
import defusedxml.ElementTree as SafeET

from sleuth.tools.base import Finding
from sleuth.tools.builtin.provenance.generator import excerpt

MAX_PACKET = 1024 * 1024
MAX_PACKETS = 8
MAX_ELEMENTS = 50_000
STARTS = (b"<x:xmpmeta", b"<x:xapmeta")
IPTC_EXT = "iptc.org/std/iptc4xmpext/"

SOURCE_TYPES = {
    "trainedAlgorithmicMedia": "ai",
    "algorithmicMedia": "ai",
    "compositeWithTrainedAlgorithmicMedia": "composite",
    "compositeSynthetic": "composite",
    "algorithmicallyEnhanced": "enhanced",
    "digitalCapture": "capture",
    "computationalCapture": "capture",
    "negativeFilm": "capture",
    "positiveFilm": "capture",
    "print": "capture",
    "compositeCapture": "capture",
    "screenCapture": "other",
    "humanEdits": "other",
    "minorHumanEdits": "other",
    "composite": "other",
    "digitalArt": "other",
    "digitalCreation": "other",
    "virtualRecording": "other",
    "dataDrivenMedia": "other",
    "softwareImage": "other",
}
"""IPTC NewsCodes digital source types and what they say about origin: ``ai`` (generated),
``composite`` (generated parts), ``enhanced``, ``capture`` (camera/scan), ``other``."""
_CANONICAL = {k.lower(): k for k in SOURCE_TYPES}
SEVERITY = {"ai": 4, "composite": 3, "enhanced": 2, "capture": 1, "other": 0}
"""Order in which declared classes dominate when a file declares several."""
_FALLBACK_DST = re.compile(rb"digitalsourcetype/([A-Za-z]{3,60})", re.IGNORECASE)
_FALLBACK_AI = re.compile(rb"(AISystemUsed|AIPromptInformation)[\"'>=\s]+([^\"'<]{1,200})")


def source_type_term(value: str) -> tuple[str, str]:
    """Normalise a digital source type value to ``(term, class)``.

    Accepts the NewsCodes URI or the bare term, in any letter case. Unknown values give
    ``("unknown", "unknown")`` so that file text never leaks into a summary.
    """
    tail = value.strip().rstrip("/").rsplit("/", 1)[-1]
    term = _CANONICAL.get(tail.lower())
    if term is None:
        return "unknown", "unknown"
    return term, SOURCE_TYPES[term]


def strongest(terms: Iterable[str]) -> str | None:
    """Return the term whose class weighs most (AI before composite before capture)."""
    known = [t for t in terms if t in SOURCE_TYPES]
    if not known:
        return None
    return max(known, key=lambda t: SEVERITY[SOURCE_TYPES[t]])


def find_xmp_packets(raw: bytes, extra: Iterable[str | bytes] = ()) -> list[bytes]:
    """Collect XMP packets from a file's bytes and from already decoded texts.

    Parameters
    ----------
    raw : bytes
        The whole file.
    extra : iterable of str or bytes
        XMP text found elsewhere (a compressed PNG iTXt ``XML:com.adobe.xmp``).

    Returns
    -------
    list of bytes
        At most :data:`MAX_PACKETS` distinct packets, each at most :data:`MAX_PACKET`
        bytes; an unterminated packet is cut at that size and kept (it will be read by
        text search).

    References
    ----------
    .. [1] Adobe, "XMP Specification Part 3: Storage in Files", 2020.
    """
    packets: list[bytes] = []
    sources = [raw] + [e.encode("utf-8", "replace") if isinstance(e, str) else e for e in extra]
    for data in sources:
        for start_tag in STARTS:
            pos = 0
            while len(packets) < MAX_PACKETS:
                start = data.find(start_tag, pos)
                if start < 0:
                    break
                close = b"</" + start_tag[1:] + b">"
                end = data.find(close, start, start + MAX_PACKET)
                stop = start + MAX_PACKET if end < 0 else end + len(close)
                packet = data[start:stop]
                if packet not in packets:
                    packets.append(packet)
                pos = stop
    return packets


@dataclass
class XmpFacts:
    """Provenance fields read from XMP; values are untrusted excerpts."""

    source_types: list[str] = field(default_factory=list)
    unknown_source_types: int = 0
    ai_fields: dict[str, str] = field(default_factory=dict)
    creator_tool: str | None = None
    credit: str | None = None
    provenance_url: str | None = None
    malformed: int = 0
    by_text_search: bool = False


AI_FIELDS = ("AISystemUsed", "AISystemVersionUsed", "AIPromptInformation", "AIPromptWriterName")
WANTED = {"DigitalSourceType", "DigitalSourceFileType", "provenance", "CreatorTool", "Credit",
          *AI_FIELDS}  # fmt: skip


def read_xmp(packets: Iterable[bytes], *, limit: int = 200) -> XmpFacts:
    """Read digital source types, IPTC 2025.1 AI fields and provenance links from XMP.

    Properties are found in both RDF forms (attributes and elements, ``rdf:resource``
    or text, ``rdf:Alt`` lists). A packet that does not parse is searched as text for
    the same values and counted in ``malformed``.

    Parameters
    ----------
    packets : iterable of bytes
        Output of :func:`find_xmp_packets`.
    limit : int
        Length of the excerpts kept.

    Returns
    -------
    XmpFacts

    References
    ----------
    .. [1] IPTC, "IPTC Photo Metadata Standard 2025.1" (Digital Source Type, AI System
           Used, AI System Version Used, AI Prompt Information, AI Prompt Writer Name).
    .. [2] IPTC NewsCodes, "Digital Source Type" vocabulary,
           http://cv.iptc.org/newscodes/digitalsourcetype/.
    """
    facts = XmpFacts()
    for packet in packets:
        try:
            root = SafeET.fromstring(packet)
        except (ParseError, defusedxml.DefusedXmlException, ValueError, UnicodeError):
            facts.malformed += 1
            _read_text(packet, facts, limit)
            continue
        for count, element in enumerate(root.iter()):
            if count >= MAX_ELEMENTS:
                break
            for name, value in element.attrib.items():
                _record(facts, name, value, limit)
            tag = str(element.tag)
            if tag.rpartition("}")[2] in WANTED:
                _record(facts, tag, _element_value(element), limit)
    return facts


def _element_value(element: object) -> str:
    attrib = getattr(element, "attrib", {})
    for key, value in attrib.items():
        if key.endswith("}resource"):
            return str(value)
    parts = []
    for piece in element.itertext():  # type: ignore[attr-defined]
        parts.append(piece)
        if sum(len(p) for p in parts) > 8192:
            break
    return "".join(parts).strip()


def _record(facts: XmpFacts, qualified: str, value: str, limit: int) -> None:
    namespace, _, local = qualified.rpartition("}")
    if local not in WANTED or not value:
        return
    namespace = namespace.lower()
    if IPTC_EXT in namespace and local in ("DigitalSourceType", "DigitalSourceFileType"):
        term, _ = source_type_term(value)
        if term == "unknown":
            facts.unknown_source_types += 1
        elif term not in facts.source_types:
            facts.source_types.append(term)
    elif IPTC_EXT in namespace and local in AI_FIELDS:
        facts.ai_fields.setdefault(local, excerpt(value, limit))
    elif local == "provenance" and "purl.org/dc/terms" in namespace:
        facts.provenance_url = facts.provenance_url or excerpt(value, 300)
    elif local == "CreatorTool" and "ns.adobe.com/xap/1.0" in namespace:
        facts.creator_tool = facts.creator_tool or excerpt(value, 120)
    elif local == "Credit" and "ns.adobe.com/photoshop" in namespace:
        facts.credit = facts.credit or excerpt(value, 120)


def _read_text(packet: bytes, facts: XmpFacts, limit: int) -> None:
    for match in _FALLBACK_DST.finditer(packet[:MAX_PACKET]):
        term, _ = source_type_term(match.group(1).decode("ascii"))
        if term != "unknown" and term not in facts.source_types:
            facts.source_types.append(term)
            facts.by_text_search = True
    for match in _FALLBACK_AI.finditer(packet[:MAX_PACKET]):
        name = match.group(1).decode("ascii")
        facts.ai_fields.setdefault(name, excerpt(match.group(2).decode("utf-8", "replace"), limit))
        facts.by_text_search = True
    url = re.search(rb"provenance[\"'>=\s]+(https?://[^\"'<\s]{1,300})", packet[:MAX_PACKET])
    if url and facts.provenance_url is None:
        facts.provenance_url = excerpt(url.group(1).decode("ascii", "replace"), 300)


DECLARED = "a declaration in the file, the strongest evidence available"
FORGEABLE = "XMP is plain text: anyone can write, edit or strip it"


def xmp_finding(facts: XmpFacts, *, generator_tool: bool = False) -> Finding | None:
    """Turn the XMP provenance fields into one finding, or None when there are none.

    Parameters
    ----------
    facts : XmpFacts
        Output of :func:`read_xmp`.
    generator_tool : bool
        Whether ``xmp:CreatorTool`` names an image generator (decided by the caller).

    Returns
    -------
    Finding or None
        ``ai`` (0.95) for an AI digital source type or IPTC AI fields, ``real`` (0.3) for
        a declared capture, ``neutral`` otherwise.
    """
    term = strongest(facts.source_types)
    kind = SOURCE_TYPES[term] if term else None
    ai = facts.ai_fields
    metrics: dict[str, str | int | bool | None] = {
        "iptc_digital_source_type": term,
        "iptc_source_types": ",".join(facts.source_types) or None,
        "iptc_ai_system_used": ai.get("AISystemUsed"),
        "iptc_ai_system_version": ai.get("AISystemVersionUsed"),
        "iptc_ai_prompt_excerpt": ai.get("AIPromptInformation"),
        "iptc_ai_prompt_writer": ai.get("AIPromptWriterName"),
        "xmp_creator_tool": facts.creator_tool,
        "xmp_credit": facts.credit,
        "xmp_provenance_url": facts.provenance_url,
        "xmp_malformed_packets": facts.malformed,
    }
    caveats = [FORGEABLE]
    if facts.malformed:
        caveats.append(f"{facts.malformed} XMP packet(s) malformed; values read by text search")
    if kind in ("ai", "composite"):
        what = "AI-generated" if kind == "ai" else "partly AI-generated (composite)"
        summary = f"The XMP metadata declares the image {what} (IPTC {term}): {DECLARED}."
        return Finding(summary=summary, score=0.95, direction="ai", kind="provenance",
                       metrics=metrics, caveats=caveats)  # fmt: skip
    if ai:
        names = ", ".join(sorted(ai))
        summary = f"The XMP metadata carries IPTC AI-generation fields ({names}): {DECLARED}."
        return Finding(summary=summary, score=0.95, direction="ai", kind="provenance",
                       metrics=metrics, caveats=caveats)  # fmt: skip
    if generator_tool:
        summary = "The XMP CreatorTool names an image generator."
        return Finding(summary=summary, score=0.9, direction="ai", kind="provenance",
                       metrics=metrics, caveats=caveats)  # fmt: skip
    if kind == "capture":
        summary = f"The XMP metadata declares a capture (IPTC {term}), with no AI origin."
        return Finding(summary=summary, score=0.3, direction="real", kind="provenance",
                       metrics=metrics, caveats=caveats)  # fmt: skip
    if kind in ("enhanced", "other"):
        summary = f"The XMP metadata declares the source type {term}, neither AI nor capture."
        return Finding(summary=summary, score=0.4 if kind == "enhanced" else None,
                       kind="provenance", metrics=metrics, caveats=caveats)  # fmt: skip
    if facts.malformed or facts.unknown_source_types:
        summary = "XMP metadata is present but malformed or uses unknown source-type values."
        return Finding(summary=summary, kind="provenance", metrics=metrics, caveats=caveats)
    return None
