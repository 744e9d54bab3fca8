"""propose_boxes: from an anomaly map to in-bounds boxes over what stands out."""

import numpy as np
import pytest

from sleuth.tools import Box, propose_boxes

CELL = 16
PLANTED = Box(x0=20 * CELL, y0=10 * CELL, x1=28 * CELL, y1=16 * CELL)
"""Cells 20-27 across and 10-15 down of a 40x30 map, in the pixels of a 640x480 image."""


def noisy_map(seed: int, shape: tuple[int, int] = (30, 40)) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 1.0, shape)


def planted(seed: int, excess: float = 6.0) -> np.ndarray:
    anomaly = noisy_map(seed)
    anomaly[10:16, 20:28] += excess
    return anomaly


def assert_in_bounds(boxes, width: int, height: int) -> None:
    for scored in boxes:
        box = scored.box
        assert 0 <= box.x0 < box.x1 <= width and 0 <= box.y0 < box.y1 <= height, box
        assert 0.0 <= scored.score < 1.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_planted_anomaly_is_boxed_first_and_every_box_is_in_bounds(seed):
    boxes = propose_boxes(planted(seed), (640, 480), cell=CELL)
    assert boxes
    assert_in_bounds(boxes, 640, 480)
    best = boxes[0]
    assert best.box.iou(PLANTED) >= 0.5
    assert best.score > 0.8
    assert all(other.score < best.score for other in boxes[1:])


def test_boxes_are_clipped_to_an_image_that_is_not_a_multiple_of_the_cell():
    anomaly = noisy_map(2)
    anomaly[24:30, 34:40] += 6.0  # the bottom-right corner, where cells overhang the image
    boxes = propose_boxes(anomaly, (630, 470), cell=CELL)
    assert_in_bounds(boxes, 630, 470)
    assert (boxes[0].box.x1, boxes[0].box.y1) == (630, 470)


def test_a_map_without_cell_size_is_stretched_over_the_image():
    boxes = propose_boxes(planted(2), (300, 200))
    assert_in_bounds(boxes, 300, 200)
    # cells 20-27 of 40 across and 10-15 of 30 down of a 300x200 image
    assert boxes[0].box.iou(Box(x0=150, y0=67, x1=210, y1=107)) >= 0.5


def test_a_low_anomaly_needs_two_sided():
    anomaly = planted(2, excess=-6.0)
    one_sided = propose_boxes(anomaly, (640, 480), cell=CELL)
    assert all(b.box.iou(PLANTED) < 0.1 for b in one_sided)
    (best, *_) = propose_boxes(anomaly, (640, 480), cell=CELL, two_sided=True)
    assert best.box.iou(PLANTED) >= 0.5


def test_top_k_keeps_the_best_boxes_in_order():
    anomaly = noisy_map(2)
    anomaly[2:8, 2:8] += 6.0
    anomaly[20:26, 30:36] += 9.0
    stronger = Box(x0=30 * CELL, y0=20 * CELL, x1=36 * CELL, y1=26 * CELL)
    weaker = Box(x0=2 * CELL, y0=2 * CELL, x1=8 * CELL, y1=8 * CELL)
    boxes = propose_boxes(anomaly, (640, 480), cell=CELL)
    assert [b.score for b in boxes] == sorted((b.score for b in boxes), reverse=True)
    assert boxes[0].box.iou(stronger) >= 0.5
    # parts of the stronger region at other sizes may come next, nothing else before it
    weaker_at = next(i for i, b in enumerate(boxes) if b.box.iou(weaker) >= 0.5)
    assert all(b.box.iou(stronger) > 0 for b in boxes[:weaker_at])
    assert boxes[0].contrast > boxes[weaker_at].contrast
    assert propose_boxes(anomaly, (640, 480), cell=CELL, top_k=1) == boxes[:1]


def test_degenerate_cells_take_no_part_and_are_never_boxed():
    """A black band has the lowest values of the map; only the usable cells count."""
    anomaly = noisy_map(3)
    anomaly[:, :10] = -50.0  # e.g. no noise at all in a black border
    anomaly[12:18, 24:32] -= 6.0  # a region with less noise than the rest
    valid = np.ones_like(anomaly, dtype=bool)
    valid[:, :10] = False
    region = Box(x0=24 * CELL, y0=12 * CELL, x1=32 * CELL, y1=18 * CELL)
    masked = propose_boxes(-anomaly, (640, 480), cell=CELL, valid=valid)
    assert masked[0].box.iou(region) >= 0.5
    assert all(b.box.x0 >= 10 * CELL for b in masked)
    unmasked = propose_boxes(-anomaly, (640, 480), cell=CELL)
    assert unmasked[0].box.x0 < 10 * CELL  # what the mask is for


def test_a_region_that_differs_over_its_whole_extent_beats_a_sharper_speck():
    anomaly = noisy_map(4)
    anomaly[20:22, 5:7] += 12.0  # a tiny, sharp speck
    anomaly[5:13, 20:30] += 3.0  # a larger region, clearly but less sharply different
    region = Box(x0=20 * CELL, y0=5 * CELL, x1=30 * CELL, y1=13 * CELL)
    boxes = propose_boxes(anomaly, (640, 480), cell=CELL)
    assert boxes[0].box.iou(region) >= 0.5


def test_a_flat_map_or_one_flatter_than_min_spread_gives_no_boxes():
    assert propose_boxes(np.full((30, 40), 5.0), (640, 480), cell=CELL) == []
    faint = planted(2) * 0.01  # the same shape, a hundredth of the size
    assert propose_boxes(faint, (640, 480), cell=CELL)
    assert propose_boxes(faint, (640, 480), cell=CELL, min_spread=1.0) == []
