"""Pixel tools find what was done to an image, where it was done."""

import io

import numpy as np
import pytest
from PIL import Image

from sleuth.tools import Box, load_image
from tests.conftest import encode, photo

PASTED = Box(x0=200, y0=150, x1=360, y1=270)


def paste(background: np.ndarray, source: np.ndarray, box: Box = PASTED) -> np.ndarray:
    out = background.copy()
    out[box.y0 : box.y1, box.x0 : box.x1] = source[box.y0 : box.y1, box.x0 : box.x1]
    return out


def decoded(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("final", [("JPEG", {"quality": 95}), ("PNG", {})])
def test_ela_boxes_a_region_with_another_compression_history(registry, seed, final):
    base = photo(seed, (640, 480))
    background = decoded(encode(base, "JPEG", quality=70))  # compressed once before
    composite = paste(background, base)  # the pasted area never was
    image = load_image(encode(composite, final[0], **final[1]))
    (finding,) = registry.run("ela", image).findings
    assert finding.boxes, finding.summary
    assert finding.boxes[0].iou(PASTED) >= 0.5


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_noise_boxes_a_region_pasted_from_an_upsampled_image(registry, seed):
    base = photo(seed, (640, 480))
    half = Image.fromarray(base).resize((320, 240), Image.Resampling.BICUBIC)
    upsampled = np.asarray(half.resize((640, 480), Image.Resampling.BICUBIC))
    image = load_image(encode(paste(base, upsampled)))
    (finding,) = registry.run("noise", image).findings
    assert finding.boxes, finding.summary
    assert finding.boxes[0].iou(PASTED) >= 0.5


@pytest.mark.parametrize("seed", [1, 2])
def test_untouched_images_score_below_manipulated_ones(registry, seed):
    base = photo(seed, (640, 480))
    spliced = paste(decoded(encode(base, "JPEG", quality=70)), base)
    half = Image.fromarray(base).resize((320, 240), Image.Resampling.BICUBIC)
    upsampled = paste(base, np.asarray(half.resize((640, 480), Image.Resampling.BICUBIC)))
    # ELA's re-save (q90) must differ from the last save, or every area is equally
    # idempotent; noise is judged on lossless files, where JPEG noise does not mask it.
    cases = {"ela": (spliced, "JPEG", {"quality": 95}), "noise": (upsampled, "PNG", {})}
    for tool, (manipulated, fmt, save) in cases.items():
        clean = registry.run(tool, load_image(encode(base, fmt, **save))).findings[0]
        edited = registry.run(tool, load_image(encode(manipulated, fmt, **save))).findings[0]
        assert clean.direction == "neutral", (tool, clean.summary)
        assert all(box.iou(PASTED) < 0.2 for box in clean.boxes), tool
        assert clean.score + 0.1 < edited.score, tool


def test_region_analysis_reports_boxes_in_original_pixels(registry):
    base = photo(1, (640, 480))
    composite = paste(decoded(encode(base, "JPEG", quality=70)), base)
    image = load_image(encode(composite))
    region = Box(x0=120, y0=80, x1=520, y1=400)
    (finding,) = registry.run("ela", image, region=region).findings
    assert finding.boxes[0].iou(PASTED) >= 0.5


@pytest.mark.parametrize("resample", [Image.Resampling.NEAREST, Image.Resampling.BILINEAR])
def test_spectrum_scores_2x_upsampling_above_the_original(registry, resample):
    original = photo(0, (512, 512))
    upsampled = np.asarray(Image.fromarray(original).resize((1024, 1024), resample))
    before = registry.run("spectrum", load_image(encode(original))).findings[0]
    after = registry.run("spectrum", load_image(encode(upsampled))).findings[0]
    assert after.score > before.score + 0.5
    assert after.metrics["period"] == 2
    assert before.metrics["period"] is None


def test_spectrum_reads_a_1_5x_resize_as_a_3_pixel_period(registry):
    original = Image.fromarray(photo(0, (512, 512)))
    resized = np.asarray(original.resize((768, 768), Image.Resampling.BICUBIC))
    finding = registry.run("spectrum", load_image(encode(resized))).findings[0]
    assert finding.metrics["period"] == 3
    assert finding.direction == "ai"


def test_spectrum_discounts_8_pixel_lattices_in_jpeg_files(registry):
    big = photo(0, (1024, 768))
    as_jpeg = load_image(encode(big, "JPEG", quality=70))
    as_png = load_image(encode(decoded(encode(big, "JPEG", quality=70))))
    jpeg_finding = registry.run("spectrum", as_jpeg).findings[0]
    png_finding = registry.run("spectrum", as_png).findings[0]
    assert jpeg_finding.metrics["jpeg_grid"] is True
    assert jpeg_finding.score < png_finding.score
    assert any("JPEG" in c for c in png_finding.caveats)


BLACK = Box(x0=0, y0=0, x1=160, y1=480)


def textured(seed: int, size: tuple[int, int] = (640, 480)) -> np.ndarray:
    """Even texture with sensor noise: every area alike, so only what is done to it shows."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    width, height = size
    field = ndimage.gaussian_filter(rng.normal(0.0, 1.0, (height, width)), 2.0) * 120 + 128
    rgb = np.repeat(field[..., None], 3, axis=2) + rng.normal(0.0, 3.0, (height, width, 3))
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_candidate_is_the_pasted_patch_never_a_flat_black_area(registry, seed):
    """Black has no noise, no error level and no detail: degenerate, not anomalous."""
    from sleuth.tools.survey import run_survey

    base = textured(seed)
    half = Image.fromarray(base).resize((320, 240), Image.Resampling.BICUBIC)
    composite = paste(base, np.asarray(half.resize((640, 480), Image.Resampling.BICUBIC)))
    composite[BLACK.y0 : BLACK.y1, BLACK.x0 : BLACK.x1] = 0
    image = load_image(encode(composite))
    survey = run_survey(registry, image, tools=["ela", "noise", "texture"])
    assert survey.candidates, survey.results
    assert survey.candidates[0].box.iou(PASTED) >= 0.5
    for candidate in survey.candidates:
        box = candidate.box
        in_black = max(0, min(box.x1, BLACK.x1) - box.x0) * box.height
        assert in_black < 0.5 * box.area, box


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("pasted", ["lossless", "recompressed off the grid"])
def test_jpeg_boxes_a_region_that_missed_the_first_compression(registry, seed, pasted):
    base = photo(seed, (640, 480))
    background = decoded(encode(base, "JPEG", quality=75))  # the host's first save
    if pasted == "lossless":
        source = base
    else:  # compressed at quality 70 on a grid 3 and 5 pixels off the file's
        source = np.pad(decoded(encode(base[5:, 3:], "JPEG", quality=70)), ((5, 0), (3, 0), (0, 0)))
    image = load_image(encode(paste(background, source), "JPEG", quality=95))
    local = registry.run("jpeg", image).findings[-1]
    assert "local_regions" in local.metrics
    # One of its boxes, as the localisation track scores candidates: on this synthetic
    # host the first one also frames a smooth area next to the paste.
    assert max((box.iou(PASTED) for box in local.boxes), default=0.0) >= 0.5, local.summary
    assert local.score is None and local.direction == "neutral"


def test_jpeg_local_map_only_for_jpeg_files(registry):
    png = load_image(encode(photo(1, (640, 480)), "PNG"))
    assert all("local_regions" not in f.metrics for f in registry.run("jpeg", png).findings)
