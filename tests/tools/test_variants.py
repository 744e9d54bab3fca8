"""Web-style copies: reproducible, within the recipe's ranges, bare of metadata."""

import io

import numpy as np
import pytest
from PIL import Image

from sleuth.tools import load_image
from sleuth.tools.variants import (
    WEB_AREA,
    WEB_LONG_SIDES,
    WEB_QUALITY,
    apply_recipe,
    web_copy,
    web_recipe,
)
from tests.conftest import photo


def test_the_same_seed_gives_the_same_recipe_and_the_same_bytes():
    pixels = photo(0, (640, 480))
    a, recipe_a = web_copy(pixels, "f" * 64)
    b, recipe_b = web_copy(pixels, "f" * 64)
    assert recipe_a == recipe_b and a == b
    recipes = {web_recipe(640, 480, f"{i:064x}") for i in range(40)}
    assert len(recipes) > 30  # a seed per image, not one recipe for all


@pytest.mark.parametrize("size", [(640, 480), (1024, 1024), (300, 2000), (3, 2)])
def test_recipes_stay_within_the_documented_ranges(size):
    width, height = size
    formats = set()
    for i in range(200):
        r = web_recipe(width, height, i)
        x0, y0, x1, y1 = r.crop
        assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
        if min(size) > 100:
            kept = (x1 - x0) * (y1 - y0) / (width * height)
            assert WEB_AREA[0] - 0.02 <= kept <= WEB_AREA[1] + 0.02
        assert max(r.size) in WEB_LONG_SIDES
        assert WEB_QUALITY[0] <= r.quality <= WEB_QUALITY[1]
        formats.add((r.format, r.subsampling))
    assert formats == {("JPEG", "4:2:0"), ("JPEG", "4:4:4"), ("WEBP", "4:2:0")}


def test_a_web_copy_carries_no_metadata_and_has_the_recipe_size(registry):
    pixels = photo(1, (800, 600))
    source = Image.fromarray(pixels)
    exif = Image.Exif()
    exif[0x010F] = "Canon"
    buf = io.BytesIO()
    source.save(buf, format="JPEG", exif=exif.tobytes())
    image = load_image(buf.getvalue())
    data, recipe = web_copy(image.full, image.sha256)
    copy = load_image(data)
    assert copy.size == recipe.size and copy.format == recipe.format
    with Image.open(io.BytesIO(data)) as img:
        assert not img.getexif() and "icc_profile" not in img.info
    findings = registry.run("provenance", copy).findings
    assert all(f.direction == "neutral" for f in findings)


def test_apply_recipe_crops_before_resizing():
    pixels = np.zeros((100, 200, 3), np.uint8)
    pixels[:, 100:] = 255  # right half white
    recipe = web_recipe(200, 100, 0)
    recipe = type(recipe)((100, 0, 200, 100), (512, 512), "JPEG", 90)
    out = np.asarray(Image.open(io.BytesIO(apply_recipe(pixels, recipe))))
    assert out.shape == (512, 512, 3) and out.mean() > 250
