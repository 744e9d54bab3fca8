import numpy as np
import pytest

from sleuth.tools.builtin.colour.chroma import central_window, chroma_detail
from tests.conftest import loaded, photo


def test_chroma_detail_grows_with_colour_noise():
    rng = np.random.default_rng(0)
    base = photo(seed=1).astype(np.float32)
    grey = rng.normal(0, 6, base.shape[:2])[..., None]
    luma_noise = np.clip(base + grey, 0, 255).astype(np.uint8)
    colour_noise = np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)
    assert chroma_detail(colour_noise) > chroma_detail(luma_noise) + 0.3


def test_chroma_detail_of_a_greyscale_image_is_very_low():
    grey = photo(seed=2).mean(axis=2, keepdims=True).astype(np.uint8).repeat(3, axis=2)
    assert chroma_detail(grey) < -3.0


def test_chroma_detail_is_lowered_little_by_chroma_subsampling():
    rgb = photo(seed=3)
    png = chroma_detail(loaded(rgb).rgb)
    subsampled = chroma_detail(loaded(rgb, "JPEG", quality=95, subsampling="4:2:0").rgb)
    full_chroma = chroma_detail(loaded(rgb, "JPEG", quality=95, subsampling="4:4:4").rgb)
    assert full_chroma == pytest.approx(png, abs=0.1)
    assert png - 0.7 < subsampled < png


def test_central_window_is_block_aligned_and_bounded():
    rgb = np.zeros((1000, 3000, 3), np.uint8)
    window = central_window(rgb, 512)
    assert window.shape == (512, 512, 3)
    assert np.shares_memory(window, rgb)
    assert central_window(rgb[:100, :100], 512).shape == (100, 100, 3)


def test_colour_tool_reports_chroma_detail(registry):
    result = registry.run("colour", loaded(photo(seed=4)))
    (finding,) = result.findings
    assert np.isfinite(finding.metrics["chroma_detail"])
    assert "chroma detail" in finding.summary
