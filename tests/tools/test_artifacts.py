"""Saved artifacts describe themselves: kind, description and the region they cover."""

from __future__ import annotations

import numpy as np
from PIL import Image, PngImagePlugin

from sleuth.tools import Box
from sleuth.tools.base import ARTIFACT_KEY, ToolContext, read_artifact


def test_a_saved_artifact_reads_back_with_its_kind_and_source(tmp_path):
    context = ToolContext(tool="ela", artifact_dir=tmp_path, tag="r1")
    box = Box(x0=10, y0=20, x1=90, y1=60)
    made = context.artifact(
        "map", np.linspace(0, 1, 200).reshape(10, 20), kind="heatmap", description="d", source=box
    )
    read = read_artifact(tmp_path / "ela-r1-map.png")
    assert read is not None
    assert (read.name, read.kind, read.source, read.width, read.height) == (
        made.name,
        "heatmap",
        box,
        20,
        10,
    )
    assert read.pixels().shape == (10, 20)


def test_a_png_without_a_valid_description_gives_none(tmp_path):
    plain = tmp_path / "plain.png"
    Image.new("L", (4, 4)).save(plain)
    forged = tmp_path / "forged.png"
    info = PngImagePlugin.PngInfo()
    info.add_text(ARTIFACT_KEY, '{"kind": "script", "width": -1}')
    Image.new("L", (4, 4)).save(forged, pnginfo=info)
    not_png = tmp_path / "x.png"
    not_png.write_bytes(b"<html>")
    assert read_artifact(plain) is None
    assert read_artifact(forged) is None
    assert read_artifact(not_png) is None
    assert read_artifact(tmp_path / "missing.png") is None
