import numpy as np

from sleuth.tools import Box
from tests.conftest import loaded, photo


def test_zoom_maps_crop_back_to_original_pixels(registry):
    image = loaded(photo())
    region = Box(x0=100, y0=50, x1=180, y1=110)
    result = registry.run("zoom", image, {"target": 400, "margin": 0.25}, region=region)
    (finding,) = result.findings
    (crop,) = result.artifacts
    assert finding.boxes == [region]
    assert crop.source == Box(x0=80, y0=35, x1=200, y1=125)
    assert max(crop.width, crop.height) == 400
    # corners of the crop land on the corners of its source region
    assert crop.to_original(0, 0) == (80, 35)
    assert crop.to_original(crop.width, crop.height) == (200, 125)
    # the centre pixel of the crop shows the centre of the source region
    centre = crop.pixels()[crop.height // 2, crop.width // 2].astype(int)
    expected = image.full[80, 140].astype(int)
    assert np.abs(centre - expected).max() < 40
