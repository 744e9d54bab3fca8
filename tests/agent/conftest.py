"""Fixtures for the agent: an isolated case store and images with known contents."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from sleuth.api import open_session
from sleuth.settings import Settings
from tests.conftest import encode, photo
from tests.tools.test_localisation import PASTED, paste


@pytest.fixture
def settings(tmp_path, monkeypatch) -> Settings:
    """Settings with the case store inside tmp_path and nothing read from the user's files."""
    monkeypatch.setenv("SLEUTH_CONFIG", str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text("")
    return Settings.load(data_dir=tmp_path / "data")


@pytest.fixture
def session(settings):
    with open_session(settings) as s:
        yield s


def composite_png() -> bytes:
    """A photo with a region pasted from an upsampled copy (box PASTED)."""
    base = photo(1, (640, 480))
    half = Image.fromarray(base).resize((320, 240), Image.Resampling.BICUBIC)
    upsampled = np.asarray(half.resize((640, 480), Image.Resampling.BICUBIC))
    return encode(paste(base, upsampled))


def png_with_text(rgb: np.ndarray, chunks: dict[str, str]) -> bytes:
    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


A1111 = "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 320x240, Model: sd15"

__all__ = ["PASTED", "A1111", "composite_png", "png_with_text"]
