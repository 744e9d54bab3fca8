"""Shared fixtures: images built at test time, and the shared image set when it is present."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sleuth.tools import LoadedImage, ToolRegistry, load_image

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """The shared image set: $SLEUTH_SHARED_DATA, else ../shared/data beside the checkout."""
    return Path(os.environ.get("SLEUTH_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    root = shared_data_dir()
    if not (root / "manifest.csv").is_file():
        pytest.skip(f"shared image set not found at {root}")
    return root


@pytest.fixture(scope="session")
def manifest(shared_data: Path) -> list[dict[str, str]]:
    with open(shared_data / "manifest.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="session")
def registry() -> ToolRegistry:
    return ToolRegistry.discover()


def photo(seed: int = 0, size: tuple[int, int] = (512, 384), noise: float = 3.0) -> np.ndarray:
    """A photo-like RGB array plus seeded sensor noise.

    A scikit-image photograph, cropped (and mirrored past its edges for large sizes),
    never resampled: resampling is exactly what some tools detect.
    """
    from skimage import data

    width, height = size
    base = data.astronaut()
    reps = (-(-height // base.shape[0]), -(-width // base.shape[1]))
    rows = [
        np.concatenate([_mirror(base, i, j) for j in range(reps[1])], axis=1)
        for i in range(reps[0])
    ]
    tiled = np.concatenate(rows, axis=0)
    rng = np.random.default_rng(seed)
    arr = tiled[:height, :width].astype(np.float64) + rng.normal(0.0, noise, (height, width, 3))
    return np.clip(np.rint(arr), 0, 255).astype(np.uint8)


def _mirror(arr: np.ndarray, i: int, j: int) -> np.ndarray:
    out = arr[::-1] if i % 2 else arr
    return out[:, ::-1] if j % 2 else out


def encode(rgb: np.ndarray, fmt: str = "PNG", **save: object) -> bytes:
    """Encode an array with Pillow and return the file's bytes."""
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format=fmt, **save)
    return buf.getvalue()


def loaded(rgb: np.ndarray, fmt: str = "PNG", **save: object) -> LoadedImage:
    """Encode then load, as sleuth would see the file."""
    return load_image(encode(rgb, fmt, **save))
