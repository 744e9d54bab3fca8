"""spectrum: periodic lattices in the noise residual, and none in a natural photo."""

import numpy as np
import pytest
from skimage import data

from sleuth.tools.builtin.spectrum import STRONG, lattice_period, periodic_peaks
from tests.conftest import loaded

NATURAL = ("astronaut", "coffee", "chelsea")


def with_lattice(rgb: np.ndarray, period: int, amplitude: float = 1.0) -> np.ndarray:
    """Add a faint 2-D cosine lattice (about one grey level) to every channel."""
    y, x = np.mgrid[: rgb.shape[0], : rgb.shape[1]]
    pattern = amplitude * (np.cos(2 * np.pi * x / period) + np.cos(2 * np.pi * y / period))
    return np.clip(np.rint(rgb + pattern[..., None]), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("name", NATURAL)
def test_a_natural_photo_has_no_lattice(registry, name):
    (finding,) = registry.run("spectrum", loaded(getattr(data, name)())).findings
    assert finding.metrics["period"] is None
    assert finding.direction == "neutral"
    assert finding.score < 0.5


@pytest.mark.parametrize("period", [2, 3, 4])
def test_a_planted_lattice_is_found_with_its_period(registry, period):
    rgb = with_lattice(data.astronaut(), period)
    (finding,) = registry.run("spectrum", loaded(rgb)).findings
    assert finding.metrics["period"] == period
    assert finding.metrics[f"peak_period_{period}"] >= STRONG
    assert finding.direction == "ai"
    assert f"{period}-pixel period" in finding.summary


def test_periodic_peaks_single_out_the_planted_frequency():
    rng = np.random.default_rng(0)
    x = np.arange(480)
    profile = rng.normal(0.0, 1.0, x.size) + np.cos(2 * np.pi * x / 3)
    peaks = periodic_peaks(profile)
    assert peaks[1 / 3] >= STRONG
    assert all(value < STRONG for freq, value in peaks.items() if freq != 1 / 3)
    assert lattice_period(peaks, strong=STRONG) == 3


def test_a_profile_too_short_to_read_has_no_peaks():
    peaks = periodic_peaks(np.cos(2 * np.pi * np.arange(40) / 2))
    assert set(peaks.values()) == {0.0}
    assert lattice_period(peaks, strong=STRONG) is None
