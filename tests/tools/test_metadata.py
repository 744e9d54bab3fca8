"""The metadata panel's reader: rows, GPS, thumbnail, generator text, C2PA chain, hostile input."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from PIL import ExifTags, Image, PngImagePlugin

from sleuth.tools import load_image
from sleuth.tools.metadata import ImageMetadata, read_metadata
from tests.conftest import encode, loaded, photo


def rows_of(meta: ImageMetadata, group: str) -> dict[str, str]:
    return {row.tag: row.value for row in meta.rows if row.group == group}


def camera_exif(lat_ref: str = "N", lon_ref: str = "E") -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "Canon"
    exif[0x0110] = "Canon EOS R5"
    exif.get_ifd(ExifTags.IFD.Exif)[0x9003] = "2024:05:01 10:20:30"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[1], gps[2] = lat_ref, (48.0, 51.0, 30.12)
    gps[3], gps[4] = lon_ref, (2.0, 17.0, 40.2)
    gps[5], gps[6] = b"\x00", 35.0
    return exif


def test_exif_rows_and_gps():
    meta = read_metadata(loaded(photo(), "JPEG", exif=camera_exif().tobytes()))
    exif = rows_of(meta, "EXIF")
    assert exif["Make"] == "Canon"
    assert exif["Model"] == "Canon EOS R5"
    assert exif["DateTimeOriginal"] == "2024:05:01 10:20:30"
    assert "ExifOffset" not in exif  # pointers are structure, not content
    assert rows_of(meta, "GPS")["GPSLatitudeRef"] == "N"
    assert meta.gps is not None
    assert meta.gps.latitude == pytest.approx(48.85837, abs=1e-5)
    assert meta.gps.longitude == pytest.approx(2.29450, abs=1e-5)
    assert meta.gps.altitude == pytest.approx(35.0)
    assert meta.gps.text == "48.85837 N, 2.29450 E, 35 m"
    assert rows_of(meta, "File")["Format"] == "JPEG"
    assert meta.reader.startswith("Pillow ")
    assert meta.notes == []


def test_gps_south_and_west_are_negative():
    meta = read_metadata(loaded(photo(), "JPEG", exif=camera_exif("S", "W").tobytes()))
    assert meta.gps is not None
    assert meta.gps.latitude < 0 and meta.gps.longitude < 0
    assert meta.gps.text.startswith("48.85837 S, 2.29450 W")


def exif_with_thumbnail(thumbnail: bytes) -> bytes:
    """A little-endian EXIF block: IFD0 with Make, IFD1 pointing at a JPEG thumbnail."""
    ifd0 = struct.pack("<H", 1) + struct.pack("<HHI4s", 0x010F, 2, 4, b"Cam\x00")
    ifd0 += struct.pack("<I", 26)  # IFD1 follows IFD0 (8 + 18)
    start = 26 + 2 + 2 * 12 + 4
    ifd1 = struct.pack("<H", 2)
    ifd1 += struct.pack("<HHII", 0x0201, 4, 1, start)
    ifd1 += struct.pack("<HHII", 0x0202, 4, 1, len(thumbnail))
    ifd1 += struct.pack("<I", 0)
    return b"Exif\x00\x00II*\x00" + struct.pack("<I", 8) + ifd0 + ifd1 + thumbnail


def thumbnail_of(rgb: np.ndarray) -> bytes:
    small = Image.fromarray(rgb).resize((160, 120), Image.Resampling.BOX)
    return encode(np.asarray(small), "JPEG", quality=90)


def test_a_thumbnail_of_another_picture_mismatches_more():
    rgb = photo(size=(640, 480))
    same = read_metadata(loaded(rgb, "JPEG", exif=exif_with_thumbnail(thumbnail_of(rgb))))
    other = photo(seed=1, size=(640, 480))[::-1, ::-1]
    edited = read_metadata(loaded(rgb, "JPEG", exif=exif_with_thumbnail(thumbnail_of(other))))
    assert same.thumbnail is not None and edited.thumbnail is not None
    assert same.thumbnail.mismatch is not None and edited.thumbnail.mismatch is not None
    assert edited.thumbnail.mismatch > same.thumbnail.mismatch + 0.2
    assert same.thumbnail.mismatch < 0.1
    assert "matches" in same.thumbnail.note and "different picture" in edited.thumbnail.note
    shown = Image.open(io.BytesIO(edited.thumbnail.jpeg))
    assert shown.format == "JPEG" and shown.size == (160, 120)
    assert (edited.thumbnail.width, edited.thumbnail.height) == (160, 120)
    assert rows_of(same, "EXIF")["Make"] == "Cam"


def test_a_picture_on_black_matches_its_own_thumbnail():
    rgb = photo(size=(640, 480)).copy()
    rgb[:120], rgb[-120:], rgb[:, :160], rgb[:, -160:] = 0, 0, 0, 0  # a subject on black
    meta = read_metadata(loaded(rgb, "JPEG", exif=exif_with_thumbnail(thumbnail_of(rgb))))
    assert meta.thumbnail is not None and meta.thumbnail.mismatch is not None
    assert meta.thumbnail.mismatch < 0.1 and "matches" in meta.thumbnail.note


def png_with_text(pairs: dict[str, str], **save: object) -> bytes:
    info = PngImagePlugin.PngInfo()
    for key, value in pairs.items():
        info.add_text(key, value)
    return encode(photo(size=(64, 64)), "PNG", pnginfo=info, **save)


A1111 = (
    "a castle on a hill, golden hour\n"
    "Negative prompt: blurry\n"
    "Steps: 30, Sampler: DPM++ 2M, CFG scale: 7, Seed: 42, Size: 512x512, Model: sdxl_base"
)


def test_a1111_parameters_become_generator_text():
    meta = read_metadata(load_image(png_with_text({"parameters": A1111})))
    (found,) = meta.generator
    assert found.source == "A1111 parameters"
    assert found.text == A1111  # line breaks kept
    assert rows_of(meta, "PNG text")["parameters"].startswith("a castle on a hill, golden hour ")


def test_comfyui_chunks_are_both_shown():
    prompt = '{"3": {"class_type": "KSampler", "inputs": {"seed": 1}}}'
    workflow = '{"nodes": [{"id": 3, "type": "KSampler"}]}'
    meta = read_metadata(load_image(png_with_text({"prompt": prompt, "workflow": workflow})))
    assert {g.source: g.text for g in meta.generator} == {
        "ComfyUI prompt": prompt,
        "ComfyUI workflow": workflow,
    }


def test_values_keep_markup_but_lose_control_characters_and_are_bounded():
    hostile = "<script>alert(1)</script>\x1b[31m\x00red\u202e" + "x" * 1000
    meta = read_metadata(load_image(png_with_text({"Comment": hostile})), max_value_chars=120)
    value = rows_of(meta, "PNG text")["Comment"]
    assert value.startswith("<script>alert(1)</script>[31mred")
    assert not any(ord(c) < 0x20 or c == "\u202e" for c in value)
    assert len(value) == 120 and value.endswith("…")


def test_rows_are_bounded_with_a_note():
    meta = read_metadata(load_image(png_with_text({f"k{i}": "v" for i in range(50)})), max_rows=12)
    assert len(meta.rows) == 12
    assert "cut at 12 rows" in meta.notes


XMP = b"""<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF
 xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
 xmlns:dc="http://purl.org/dc/elements/1.1/"
 xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
 xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/"
 xmlns:stEvt="http://ns.adobe.com/xap/1.0/sType/ResourceEvent#">
<rdf:Description rdf:about=""
 Iptc4xmpExt:DigitalSourceType="http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia">
<dc:subject><rdf:Bag><rdf:li>castle</rdf:li><rdf:li>&lt;b&gt;hill</rdf:li></rdf:Bag></dc:subject>
<xmpMM:History><rdf:Seq><rdf:li rdf:parseType="Resource"><stEvt:action>created</stEvt:action>
<stEvt:softwareAgent>Generator 1.0</stEvt:softwareAgent></rdf:li></rdf:Seq></xmpMM:History>
</rdf:Description></rdf:RDF></x:xmpmeta>"""


def test_xmp_is_flattened_to_qualified_names():
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", XMP.decode())
    meta = read_metadata(load_image(encode(photo(size=(64, 64)), "PNG", pnginfo=info)))
    xmp = rows_of(meta, "XMP")
    assert xmp["Iptc4xmpExt:DigitalSourceType"].endswith("/trainedAlgorithmicMedia")
    assert xmp["dc:subject"] == "castle; <b>hill"
    assert xmp["xmpMM:History[1]/stEvt:action"] == "created"
    assert xmp["xmpMM:History[1]/stEvt:softwareAgent"] == "Generator 1.0"
    assert "defusedxml" in meta.reader


def test_garbage_exif_becomes_a_note():
    meta = read_metadata(loaded(photo(), "JPEG", exif=b"Exif\x00\x00" + b"\xff\x13garbage" * 9))
    assert any(note.startswith("EXIF block unreadable") for note in meta.notes)
    assert rows_of(meta, "File")["Format"] == "JPEG"


def test_truncated_exif_becomes_a_note():
    blob = camera_exif().tobytes()
    meta = read_metadata(loaded(photo(), "JPEG", exif=blob[:40]))
    assert meta.notes and any("EXIF" in note for note in meta.notes)


def png_with_itxt(key: str, text: str) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_itxt(key, text, zip=True)
    return encode(photo(size=(64, 64)), "PNG", pnginfo=info)


ENTITY_BOMB = (
    '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">'
    '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]>'
    '<x:xmpmeta xmlns:x="adobe:ns:meta/">&c;</x:xmpmeta>'
)
RDF_OPEN = (
    '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
    'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:a="urn:a"><rdf:Description>'
)
DEEP_XMP = RDF_OPEN + "<a:x>" * 5000 + "</a:x>" * 5000 + "</rdf:Description></rdf:RDF></x:xmpmeta>"
WIDE_XMP = RDF_OPEN + "<a:x>v</a:x>" * 60_000 + "</rdf:Description></rdf:RDF></x:xmpmeta>"


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(png_with_text({"Comment": "x" * (8 * 1024 * 1024)}), id="huge-text"),
        pytest.param(png_with_itxt("XML:com.adobe.xmp", ENTITY_BOMB), id="entity-bomb"),
        pytest.param(png_with_itxt("XML:com.adobe.xmp", "<x:xmpmeta><<<&& no"), id="bad-xmp"),
        pytest.param(png_with_itxt("XML:com.adobe.xmp", DEEP_XMP), id="deep-xmp"),
        pytest.param(png_with_itxt("XML:com.adobe.xmp", WIDE_XMP), id="wide-xmp"),
        pytest.param(png_with_text({"prompt": "[" * 100_000, "workflow": "{"}), id="deep-json"),
    ],
)
def test_hostile_blocks_are_bounded_and_never_raise(raw):
    meta = read_metadata(load_image(raw))
    assert len(meta.rows) <= 500
    assert all(len(row.value) <= 300 for row in meta.rows)
    assert all(len(g.text) <= 20_000 for g in meta.generator)
    assert len(meta.model_dump_json()) < 400_000


def test_cut_xmp_is_noted():
    deep = read_metadata(load_image(png_with_itxt("XML:com.adobe.xmp", DEEP_XMP)))
    assert any("nested deeper" in note for note in deep.notes)
    wide = read_metadata(load_image(png_with_itxt("XML:com.adobe.xmp", WIDE_XMP)), max_rows=50)
    assert len(wide.rows) == 50 and "cut at 50 rows" in wide.notes


def c2pa_file(shared_data, manifest, name: str) -> bytes:
    (row,) = [r for r in manifest if r["file"].endswith(name)]
    return (shared_data / row["file"]).read_bytes()


@pytest.mark.data
def test_a_signed_chain_from_the_shared_set(shared_data, manifest):
    meta = read_metadata(load_image(c2pa_file(shared_data, manifest, "fixtures__CACA.jpg")))
    chain = meta.c2pa
    assert chain is not None
    assert chain.state == "untrusted"  # a test certificate: validates, not on a trust list
    assert chain.reason.startswith("signer not on the trust list")
    active, ingredient = chain.manifests
    assert active.ingredients == ["CA.jpg (parentOf)"]
    assert ingredient.ingredients == ["A.jpg (parentOf)"]
    assert active.signer is not None and active.issued is not None
    assert "c2pa.color_adjustments" in active.actions
    assert rows_of(meta, "C2PA")["Validation"] == "untrusted"
    assert "c2pa-python" in meta.reader


@pytest.mark.data
def test_an_altered_file_states_invalid_first(shared_data, manifest):
    meta = read_metadata(load_image(c2pa_file(shared_data, manifest, "fixtures__XCA.jpg")))
    assert meta.c2pa is not None
    assert meta.c2pa.state == "invalid"
    assert meta.c2pa.reason.startswith("signature does not validate: the image's bytes changed")


@pytest.mark.data
def test_an_ai_manifest_declares_its_source(shared_data, manifest):
    raw = c2pa_file(shared_data, manifest, "TrustNXT__amazon-titan-g1.png")
    chain = read_metadata(load_image(raw)).c2pa
    assert chain is not None
    assert chain.manifests[0].ai_source == "trainedAlgorithmicMedia"
