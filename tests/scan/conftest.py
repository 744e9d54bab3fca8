"""A small folder of images to scan: photos, a copy, a near copy, a broken file, an archive."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from sleuth.settings import Settings
from tests.conftest import encode, photo


def jpeg(seed: int, size: tuple[int, int] = (320, 240), quality: int = 90) -> bytes:
    """A synthetic photo as JPEG (the same scene for every seed, other sensor noise)."""
    return encode(photo(seed, size), "JPEG", quality=quality)


def scene(name: str, fmt: str = "JPEG") -> bytes:
    """Another of scikit-image's bundled photographs (a different scene), encoded."""
    from skimage import data

    pixels = getattr(data, name)()
    return encode(pixels, fmt, **({"quality": 90} if fmt == "JPEG" else {}))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Images in a folder tree: 3 photos, an exact copy, a resized copy, junk, a zip."""
    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    (root / "a.jpg").write_bytes(jpeg(1))
    (root / "b.png").write_bytes(scene("chelsea", "PNG"))
    (root / "sub" / "c.jpg").write_bytes(scene("coffee"))
    (root / "sub" / "a-copy.jpg").write_bytes(jpeg(1))
    resized = Image.open(io.BytesIO(jpeg(1))).resize((300, 225))
    buffer = io.BytesIO()
    resized.save(buffer, format="JPEG", quality=80)
    (root / "a-smaller.jpg").write_bytes(buffer.getvalue())
    (root / "broken.jpg").write_bytes(jpeg(4)[:200])
    (root / "notes.txt").write_text("not an image")
    with zipfile.ZipFile(root / "batch.zip", "w") as archive:
        archive.writestr("inside/d.jpg", scene("rocket"))
        archive.writestr("readme.md", "x")
    return root


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings over a case store in the test's folder."""
    return Settings(data_dir=tmp_path / "data")
