"""dimensions: a generator's frame is a multiple-of-64 size on a losslessly stored file."""

import math

import pytest

from tests.conftest import loaded, photo


def run(registry, image):
    (finding,) = registry.run("dimensions", image).findings
    return finding


def test_a_1024_square_png_is_a_generator_frame_and_the_same_pixels_as_jpeg_are_not(registry):
    rgb = photo(0, (1024, 1024))
    png = run(registry, loaded(rgb, "PNG"))
    jpeg = run(registry, loaded(rgb, "JPEG", quality=90))
    for finding in (png, jpeg):
        assert finding.metrics["sides_multiple"] is True
        assert finding.metrics["square"] is True
        assert finding.metrics["aspect_log"] == 0.0
        assert finding.metrics["megapixels_log"] == pytest.approx(math.log(1.048576), abs=1e-4)
        assert "multiples of 64, as generators output; square" in finding.summary
    assert png.metrics["lossless"] is True
    assert jpeg.metrics["lossless"] is False


def test_a_camera_frame_is_not_a_generator_size(registry):
    finding = run(registry, loaded(photo(0, (1000, 750)), "PNG"))
    assert finding.metrics["sides_multiple"] is False
    assert finding.metrics["square"] is False
    assert finding.metrics["aspect_log"] == pytest.approx(math.log(4 / 3), abs=1e-4)
    assert "not a multiple-of-64 generator size" in finding.summary


def test_only_a_lossless_webp_counts_as_lossless(registry):
    rgb = photo(0, (512, 512))
    assert run(registry, loaded(rgb, "WEBP", lossless=True)).metrics["lossless"] is True
    assert run(registry, loaded(rgb, "WEBP", quality=90)).metrics["lossless"] is False


def test_the_side_multiple_is_a_parameter(registry):
    image = loaded(photo(0, (1000, 752)), "PNG")
    (finding,) = registry.run("dimensions", image, {"multiple": 8}).findings
    assert finding.metrics["sides_multiple"] is True
    assert run(registry, image).metrics["sides_multiple"] is False
