import collections
import io
import time

import numpy as np
import pytest
from PIL import Image
from scipy import fft

from sleuth.tools import Box, load_image
from sleuth.tools.builtin.jpeg.dct import block_dct
from sleuth.tools.builtin.jpeg.grid import expected_grid
from sleuth.tools.builtin.jpeg.tables import IJG_CHROMA, IJG_LUMA, estimate_ijg_quality, ijg_table
from tests.conftest import encode, loaded, photo


def decoded(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def metrics(result) -> dict:
    merged = {}
    for finding in result.findings:
        merged.update(finding.metrics)
    return merged


def run(registry, image, region=None):
    result = registry.run("jpeg", image, region=region)
    return result, metrics(result)


# ----------------------------------------------------------------- tables


@pytest.mark.parametrize("quality", [50, 75, 90, 95])
def test_quality_estimate_of_pillow_saves(registry, quality):
    _, m = run(registry, loaded(photo(), "JPEG", quality=quality))
    assert abs(m["quality"] - quality) <= 2
    assert m["table_kind"] == "ijg"
    assert m["subsampling"] == "4:2:0"
    assert m["progressive"] is False


@pytest.mark.parametrize("quality", [5, 10, 25, 49, 50, 51, 87, 99, 100])
def test_ijg_scaling_reproduces_libjpeg_tables(quality):
    img = Image.open(io.BytesIO(encode(photo(size=(64, 64)), "JPEG", quality=quality)))
    luma = np.array(img.quantization[0]).reshape(8, 8)
    chroma = np.array(img.quantization[1]).reshape(8, 8)
    assert (ijg_table(IJG_LUMA, quality) == luma).all()
    assert (ijg_table(IJG_CHROMA, quality) == chroma).all()
    fit = estimate_ijg_quality(luma, [chroma])
    assert fit.exact and fit.quality == quality


def test_custom_tables_are_recognised_and_lean_real(registry):
    luma = [2 + (i % 8) + (i // 8) for i in range(64)]
    chroma = [5 + (i % 8) + (i // 8) for i in range(64)]
    image = loaded(photo(), "JPEG", qtables=[luma, chroma], subsampling=1)
    result, m = run(registry, image)
    assert m["table_kind"] == "custom"
    assert m["subsampling"] == "4:2:2"
    tables = result.findings[0]
    assert tables.direction == "real" and tables.score == pytest.approx(0.3)
    assert tables.caveats  # editors can reproduce tables
    # cameras write baseline files: progressive custom tables come from software
    progressive = loaded(photo(), "JPEG", qtables=[luma, chroma], progressive=True)
    tables = run(registry, progressive)[0].findings[0]
    assert tables.direction == "neutral" and tables.score == pytest.approx(0.5)
    # after a detected re-save the tables only describe the last save
    twice = loaded(decoded(encode(photo(), "JPEG", quality=50)), "JPEG", qtables=[luma, chroma])
    result, m = run(registry, twice)
    assert m["dq_detected"] is True
    assert result.findings[0].direction == "neutral"


def test_library_default_quality_is_a_weak_ai_hint_and_others_neutral(registry):
    default = run(registry, loaded(photo(), "JPEG", quality=75))[0].findings[0]
    other = run(registry, loaded(photo(), "JPEG", quality=83))[0].findings[0]
    assert (default.direction, default.score) == ("ai", pytest.approx(0.55))
    assert (other.direction, other.score) == ("neutral", pytest.approx(0.5))


def test_progressive_and_grayscale_are_reported(registry):
    _, m = run(registry, loaded(photo(), "JPEG", quality=80, progressive=True))
    assert m["progressive"] is True
    gray = load_image(encode(photo()[:, :, 0], "JPEG", quality=80))
    _, m = run(registry, gray)
    assert m["subsampling"] == "grayscale" and m["table_kind"] == "ijg"
    assert m["quality"] == 80


def test_cmyk_jpeg_reports_tables_and_skips_the_luminance_test(registry):
    buf = io.BytesIO()
    Image.fromarray(photo()).convert("CMYK").save(buf, "JPEG", quality=85)
    result, m = run(registry, load_image(buf.getvalue()))
    assert m["quality"] == 85 and m["subsampling"] == "cmyk"
    assert m["dq_score"] is None and "CMYK" in result.findings[1].summary


# ----------------------------------------------------------------- double compression


def test_aligned_double_compression_scores_higher_than_single(registry):
    rgb = photo(size=(768, 576))
    single = loaded(rgb, "JPEG", quality=90)
    double = loaded(decoded(encode(rgb, "JPEG", quality=60)), "JPEG", quality=90)
    result, m_double = run(registry, double)
    _, m_single = run(registry, single)
    assert m_double["dq_score"] > m_single["dq_score"] + 0.4
    assert m_double["dq_detected"] and not m_single["dq_detected"]
    assert abs(m_double["dq_primary_quality"] - 60) <= 5
    dq = result.findings[1]
    assert dq.direction == "neutral" and dq.score is None
    assert "double" in dq.summary.lower()
    # re-saved: custom-table "real" lean would no longer apply; IJG stays as it was
    assert result.findings[0].metrics["quality"] == 90


def test_finer_first_compression_is_not_claimed(registry):
    rgb = photo(size=(768, 576))
    image = loaded(decoded(encode(rgb, "JPEG", quality=95)), "JPEG", quality=75)
    _, m = run(registry, image)
    assert not m["dq_detected"]


# ----------------------------------------------------------------- grid


def test_jpeg_cropped_then_resaved_shows_a_shifted_grid(registry):
    rgb = photo(size=(768, 576))
    cropped = decoded(encode(rgb, "JPEG", quality=60))[3:, 3:]
    result, m = run(registry, loaded(cropped, "JPEG", quality=90))
    assert (m["grid_offset_x"], m["grid_offset_y"]) == (0, 0)  # the file's own grid
    assert m["shifted_grid"] is True
    assert (m["shifted_grid_x"], m["shifted_grid_y"]) == (5, 5)  # 8 - 3
    _, plain = run(registry, loaded(rgb, "JPEG", quality=90))
    assert plain["shifted_grid"] is False and plain["grid_aligned"] is True


def test_earlier_grid_dominates_a_near_lossless_resave(registry):
    cropped = decoded(encode(photo(), "JPEG", quality=75))[3:, 3:]
    _, m = run(registry, loaded(cropped, "JPEG", quality=100))
    assert (m["grid_offset_x"], m["grid_offset_y"]) == (5, 5)
    assert m["grid_aligned"] is False and m["shifted_grid"] is True


def test_png_from_a_jpeg_shows_its_grid_and_a_pristine_png_does_not(registry):
    rgb = photo()
    was_jpeg = loaded(decoded(encode(rgb, "JPEG", quality=85))[5:, 2:])
    result, m = run(registry, was_jpeg)
    assert m["grid_found"] is True
    assert (m["grid_offset_x"], m["grid_offset_y"]) == (6, 3)
    assert "JPEG-compressed before" in result.findings[-1].summary
    _, m = run(registry, loaded(rgb))
    assert m["grid_found"] is False
    assert m["grid_offset_x"] is None and m["grid_strength"] < 0.1


def test_region_keeps_the_whole_image_grid(registry):
    rgb = photo(size=(768, 576))
    region = Box(x0=13, y0=21, x1=613, y1=461)
    png = loaded(decoded(encode(rgb, "JPEG", quality=85))[5:, 2:])
    whole = run(registry, png)[1]
    part = run(registry, png, region)[1]
    assert (part["grid_offset_x"], part["grid_offset_y"]) == (6, 3)
    assert (part["grid_offset_x"], part["grid_offset_y"]) == (
        whole["grid_offset_x"],
        whole["grid_offset_y"],
    )
    double = loaded(decoded(encode(rgb, "JPEG", quality=60)), "JPEG", quality=90)
    part = run(registry, double, region)[1]
    assert part["grid_aligned"] is True and part["shifted_grid"] is False
    assert part["dq_detected"] is True  # the DCT blocks follow the file's grid, not the crop


def test_exif_orientation_moves_the_expected_grid(registry):
    rgb = photo(size=(517, 389))
    for orientation in (3, 6, 8):
        img = Image.fromarray(rgb)
        exif = img.getexif()
        exif[0x0112] = orientation
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=80, exif=exif.tobytes())
        _, m = run(registry, load_image(buf.getvalue()))
        assert m["grid_aligned"] is True, orientation
        assert m["shifted_grid"] is False, orientation
    assert expected_grid(1, (517, 389)) == (0, 0)
    assert expected_grid(3, (517, 389)) == (5, 5)
    assert expected_grid(6, (389, 517)) == (5, 0)
    assert expected_grid(8, (389, 517)) == (0, 5)


# ----------------------------------------------------------------- non-JPEG, plumbing


def test_not_a_jpeg_gives_one_neutral_finding_and_a_grid_check(registry):
    result = registry.run("jpeg", loaded(photo()))
    first, grid = result.findings
    assert first.summary.startswith("Not a JPEG: no quantization tables")
    assert first.direction == "neutral" and first.score is None
    assert first.tool == "jpeg"
    assert "grid_found" in grid.metrics


def test_metrics_are_flat_scalars_and_tiny_regions_do_not_fail(registry):
    image = loaded(photo(), "JPEG", quality=90)
    result = registry.run("jpeg", image, region=Box(x0=3, y0=5, x1=12, y1=14))
    for finding in result.findings:
        for value in finding.metrics.values():
            assert value is None or isinstance(value, int | float | str | bool)
    assert result.findings[1].metrics["dq_score"] is None


def test_block_dct_is_the_orthonormal_dct():
    blocks = np.random.default_rng(1).normal(0, 50, (5, 8, 8))
    expected = fft.dctn(blocks, type=2, norm="ortho", axes=(1, 2))
    assert np.allclose(block_dct(blocks), expected, atol=1e-3)
    assert np.allclose(block_dct(blocks, [(0, 1), (2, 0)]), expected[:, [0, 2], [1, 0]], atol=1e-3)


@pytest.mark.slow
def test_twelve_megapixel_jpeg_is_cheap(registry):
    big = np.asarray(Image.fromarray(photo()).resize((4000, 3000), Image.Resampling.BICUBIC))
    image = loaded(big, "JPEG", quality=90)
    registry.run("jpeg", image)  # warm up
    start = time.process_time()  # CPU time of all threads: the one-core cost
    result = registry.run("jpeg", image)
    assert time.process_time() - start < 1.0
    assert result.findings[1].metrics["dq_subsampled"] is True


# ----------------------------------------------------------------- shared image set


@pytest.mark.data
def test_runs_on_every_shared_jpeg(registry, shared_data, manifest):
    summary = collections.defaultdict(collections.Counter)
    qualities = collections.defaultdict(list)
    rows = [r for r in manifest if r["format"] in {"JPEG", "MPO"}]
    assert rows
    for row in rows:
        image = load_image(shared_data / row["file"])
        result = registry.run("jpeg", image)
        m = metrics(result)
        label = row["label"]
        summary[label]["files"] += 1
        summary[label][f"tables lean {result.findings[0].direction}"] += 1
        summary[label][f"table {m['table_kind']}"] += 1
        summary[label]["double compressed"] += bool(m["dq_detected"])
        summary[label]["shifted grid"] += bool(m["shifted_grid"])
        summary[label]["no grid found"] += not m["grid_found"]
        qualities[label].append(m["quality"])
    print()
    for label, counts in sorted(summary.items()):
        common = collections.Counter(qualities[label]).most_common(6)
        print(f"{label}: {dict(counts)}; most common qualities {common}")
