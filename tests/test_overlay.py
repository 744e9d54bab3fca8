"""Heatmaps as colour overlays: colour map, alpha ramp, legend, placement, size bound."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from sleuth.present.overlay import (
    COLOUR_MAP,
    colour_lut,
    coloured_overlay,
    legend_stops,
    overlay_placement,
)
from sleuth.tools.base import Artifact, ToolContext, read_artifact
from sleuth.tools.box import Box


def gradient(width: int = 256, height: int = 16) -> np.ndarray:
    row = np.linspace(0, 255, width).round().astype(np.uint8)
    return np.tile(row, (height, 1))


def saved(tmp_path, pixels, **described) -> Artifact:
    ctx = ToolContext(tool="ela", artifact_dir=tmp_path)
    described.setdefault("kind", "heatmap")
    described.setdefault("description", "Error level per pixel.")
    art = ctx.artifact("heatmap", pixels, **described)
    assert art.path is not None
    found = read_artifact(tmp_path / f"{art.name}.png")
    assert found is not None
    return found


def rgba(data: bytes) -> np.ndarray:
    picture = Image.open(io.BytesIO(data))
    assert picture.format == "PNG" and picture.mode == "RGBA"
    return np.asarray(picture)


def test_a_gradient_gives_rising_alpha_and_the_maps_ends(tmp_path):
    art = saved(tmp_path, gradient())
    pixels = rgba(coloured_overlay(art.path))
    assert pixels.shape == (16, 256, 4)
    alpha = pixels[0, :, 3].astype(int)
    assert alpha[0] == 0 and alpha[-1] > 200
    assert np.all(np.diff(alpha) >= 0) and alpha[128] > alpha[64] > 0
    lut = colour_lut()
    assert tuple(pixels[0, 0, :3]) == tuple(lut[0])
    assert tuple(pixels[0, -1, :3]) == tuple(lut[255])
    assert COLOUR_MAP == "inferno"
    assert tuple(lut[0]) == (0, 0, 4) and tuple(lut[255]) == (252, 255, 164)  # inferno's ends


def test_the_legend_runs_from_dark_to_light():
    stops = legend_stops(5)
    assert [value for value, _ in stops] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert stops[0][1] == "#000004" and stops[-1][1] == "#fcffa4"
    assert all(len(colour) == 7 and colour.startswith("#") for _, colour in stops)
    with pytest.raises(ValueError):
        legend_stops(1)


def test_the_overlay_is_bounded_in_size(tmp_path):
    art = saved(tmp_path, gradient(3000, 1500))
    assert rgba(coloured_overlay(art.path, max_side=512)).shape[:2] == (256, 512)
    small = saved(tmp_path / "small", gradient(100, 50))
    assert rgba(coloured_overlay(small.path, max_side=512)).shape[:2] == (50, 100)


def test_unreadable_files_raise(tmp_path):
    text = tmp_path / "not-an-image.png"
    text.write_text("hello")
    with pytest.raises(OSError):
        coloured_overlay(text)
    with pytest.raises(OSError):
        coloured_overlay(tmp_path / "missing.png")
    art = saved(tmp_path, gradient())
    with pytest.raises(ValueError):
        coloured_overlay(art.path, max_side=0)


def test_placement_of_a_region_artifact(tmp_path):
    box = Box(x0=100, y0=50, x1=300, y1=250)
    art = saved(tmp_path, gradient(200, 200), source=box)
    assert art.source == box
    assert overlay_placement(art, (400, 500)) == pytest.approx((0.25, 0.1, 0.5, 0.4))
    whole = saved(tmp_path / "whole", gradient())
    assert overlay_placement(whole, (256, 16)) == (0.0, 0.0, 1.0, 1.0)
    past = Artifact(name="x", kind="map", description="d", width=8, height=8,
                    source=Box(x0=300, y0=0, x1=500, y1=100))  # fmt: skip
    assert overlay_placement(past, (400, 400)) == pytest.approx((0.75, 0.0, 0.25, 0.25))


@pytest.mark.parametrize("kind", ["spectrum", "crop"])
def test_kinds_that_are_not_maps_have_no_placement(kind):
    art = Artifact(name="x", kind=kind, description="d", width=8, height=8)
    assert overlay_placement(art, (400, 300)) is None


def test_the_table_is_matplotlibs_inferno():
    colormaps = pytest.importorskip("matplotlib").colormaps
    expected = np.rint(colormaps["inferno"](np.linspace(0, 1, 256))[:, :3] * 255)
    assert np.array_equal(colour_lut(), expected.astype(np.uint8))
