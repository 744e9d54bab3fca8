"""texture: residual levels of rich and poor patches, and areas too clean for their texture."""

import numpy as np
import pytest
from scipy import ndimage
from skimage import data

from sleuth.tools import Box, load_image
from sleuth.tools.builtin.texture import lattice_stride
from tests.conftest import encode, loaded, photo

RAMP = Box(x0=200, y0=150, x1=360, y1=270)


def smoothed(rgb: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    blurred = ndimage.gaussian_filter(rgb.astype(np.float64), sigma=(sigma, sigma, 0))
    return np.clip(np.rint(blurred), 0, 255).astype(np.uint8)


def with_ramps(rgb: np.ndarray, box: Box = RAMP) -> np.ndarray:
    """Paint diagonal triangle-wave ramps into ``box``: strong gradients, no fine residual."""
    y, x = np.mgrid[: rgb.shape[0], : rgb.shape[1]]
    ramps = np.rint(np.abs((x + y) % 64 - 32) * 7.5).astype(np.uint8)
    out = rgb.copy()
    out[box.y0 : box.y1, box.x0 : box.x1] = ramps[box.y0 : box.y1, box.x0 : box.x1, None]
    return out


@pytest.mark.parametrize("name", ["astronaut", "coffee"])
def test_smoothing_lowers_the_residual_and_makes_patches_cleaner_for_their_texture(registry, name):
    rgb = getattr(data, name)()
    (before,) = registry.run("texture", loaded(rgb)).findings
    (after,) = registry.run("texture", loaded(smoothed(rgb))).findings
    for group in ("rich", "poor"):
        assert after.metrics[f"{group}_residual"] < before.metrics[f"{group}_residual"] - 0.5
        assert after.metrics[f"{group}_smoothness"] < before.metrics[f"{group}_smoothness"]


def test_an_area_with_texture_but_no_fine_residual_is_boxed(registry):
    image = load_image(encode(with_ramps(photo(1, (640, 480)))))
    (finding,) = registry.run("texture", image).findings
    assert finding.boxes, finding.summary
    assert finding.boxes[0].iou(RAMP) >= 0.5


@pytest.mark.parametrize(("rows", "cols", "most"), [(10, 10, 4096), (100, 100, 4096), (7, 300, 64)])
def test_lattice_stride_is_the_smallest_that_keeps_within_the_bound(rows, cols, most):
    stride = lattice_stride(rows, cols, most)
    assert -(-rows // stride) * -(-cols // stride) <= most
    if stride > 1:
        assert -(-rows // (stride - 1)) * -(-cols // (stride - 1)) > most
