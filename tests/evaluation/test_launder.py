"""Laundering removes every metadata block and re-encodes the pixels as one JPEG."""

import io

import numpy as np
from PIL import Image, PngImagePlugin

from sleuth.evaluation.launder import launder
from sleuth.tools import ToolRegistry, load_image
from tests.conftest import photo

A1111 = "a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 320x240"


def _png_with_everything(rgb: np.ndarray) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", A1111)
    info.add_itxt("XML:com.adobe.xmp", "<x:xmpmeta xmlns:x='adobe:ns:meta/'></x:xmpmeta>")
    exif = Image.Exif()
    exif[0x010F] = "Canon"
    exif[0x0131] = "Stable Diffusion"
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", pnginfo=info, exif=exif, icc_profile=b"x" * 64)
    return buf.getvalue()


def _segments(data: bytes) -> list[int]:
    """JPEG marker codes before the scan."""
    markers, pos = [], 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        markers.append(marker)
        if marker == 0xDA:
            break
        pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
    return markers


def test_laundering_strips_every_metadata_block():
    source = load_image(_png_with_everything(photo(0, (320, 240))))
    registry = ToolRegistry.discover()
    declared = registry.run("provenance", source).findings
    assert any(f.direction == "ai" for f in declared)  # the source does declare it
    data = launder(source)
    app_markers = [m for m in _segments(data) if 0xE1 <= m <= 0xEF or m == 0xFE]
    assert data[:2] == b"\xff\xd8" and app_markers == []  # only APP0 (JFIF) may remain
    for needle in (b"parameters", b"Exif", b"xmpmeta", b"Canon", b"ICC_PROFILE"):
        assert needle not in data
    laundered = load_image(data)
    findings = registry.run("provenance", laundered).findings
    assert all(f.direction == "neutral" and f.score is None for f in findings)


def test_laundering_re_encodes_at_the_same_size_as_jpeg_quality_90():
    rgb = photo(1, (333, 251))
    data = launder(load_image(_png_with_everything(rgb)))
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "JPEG" and img.size == (333, 251)
        pixels = np.asarray(img.convert("RGB")).astype(int)
    assert 0 < np.abs(pixels - rgb).mean() < 4  # lossy, but the same picture
    fit = load_image(data)
    jpeg = ToolRegistry.discover().run("jpeg", fit).findings[0]
    assert jpeg.metrics["quality"] == 90


def test_laundering_applies_exif_orientation_first():
    rgb = photo(2, (300, 200))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=95, exif=exif)
    data = launder(load_image(buf.getvalue()))
    with Image.open(io.BytesIO(data)) as img:
        assert img.size == (200, 300)
