import math

import numpy as np
from PIL import Image

from sleuth.tools.builtin.noise import npr_block_ratio, npr_deviation_log
from tests.conftest import loaded, photo


def ratio(rgb: np.ndarray) -> float:
    return npr_block_ratio(loaded(rgb).gray_profiles)


def upsampled(rgb: np.ndarray, resample: Image.Resampling) -> np.ndarray:
    image = Image.fromarray(rgb)
    half = image.resize((image.width // 2, image.height // 2), Image.Resampling.BOX)
    return np.asarray(half.resize(image.size, resample))


def test_npr_ratio_is_near_one_for_a_photo_and_departs_after_upsampling():
    rgb = photo(seed=5)
    assert 0.9 < ratio(rgb) < 1.1
    assert ratio(upsampled(rgb, Image.Resampling.NEAREST)) < 0.05
    bilinear = ratio(upsampled(rgb, Image.Resampling.BILINEAR))
    assert not 0.9 < bilinear < 1.1


def test_npr_deviation_grows_with_the_departure_either_way():
    assert npr_deviation_log(1.0) == math.log(1e-4)
    assert npr_deviation_log(0.5) == npr_deviation_log(2.0)
    assert npr_deviation_log(0.99) < npr_deviation_log(0.9) < npr_deviation_log(0.5)
    assert math.isfinite(npr_deviation_log(0.0))


def test_a_flat_image_has_no_npr_trace():
    assert ratio(np.full((64, 64, 3), 128, np.uint8)) == 1.0


def test_noise_tool_reports_the_npr_deviation(registry):
    rgb = photo(seed=6)
    (plain,) = registry.run("noise", loaded(rgb)).findings
    (resized,) = registry.run("noise", loaded(upsampled(rgb, Image.Resampling.BILINEAR))).findings
    assert plain.metrics["npr_deviation_log"] < resized.metrics["npr_deviation_log"]
