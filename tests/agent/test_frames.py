"""Box frames: every model convention converts to original pixels and back."""

import dataclasses

import pytest

from sleuth.agent.frames import FAMILIES, BoxFrame, family_for, input_size
from sleuth.tools import Box, ToolInputError

SIZES = [(640, 480), (1000, 700), (37, 1201), (4032, 3024)]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_round_trip_covers_the_box_within_one_frame_unit(size, family):
    frame = BoxFrame.for_model(*size, family)
    width, height = size
    box = Box(x0=width // 5, y0=height // 7, x1=width // 2 + 1, y1=height - height // 9)
    back = frame.to_original(frame.from_original(box))
    ux, uy = width / frame.extent[0], height / frame.extent[1]
    assert back.x0 <= box.x0 and back.y0 <= box.y0 and back.x1 >= box.x1 and back.y1 >= box.y1
    assert box.x0 - back.x0 <= ux + 1 and back.x1 - box.x1 <= ux + 1
    assert box.y0 - back.y0 <= uy + 1 and back.y1 - box.y1 <= uy + 1


def test_qwen25_boxes_are_pixels_of_the_resized_input():
    family = family_for("Qwen/Qwen2.5-VL-7B-Instruct")
    assert family.name == "qwen2.5-vl"
    frame = BoxFrame.for_model(1000, 500, family)
    w, h = frame.extent
    assert (w % 28, h % 28) == (0, 0) and abs(w / h - 2.0) < 0.1
    assert frame.to_original([0, 0, w, h]) == Box(x0=0, y0=0, x1=1000, y1=500)
    assert frame.to_original([w / 2, 0, w, h / 2]) == Box(x0=500, y0=0, x1=1000, y1=250)


@pytest.mark.parametrize(
    "name", ["Qwen/Qwen2-VL-7B-Instruct", "Qwen/Qwen3-VL-8B", "OpenGVLab/InternVL3-8B"]
)
def test_other_families_use_a_0_to_1000_grid(name):
    frame = BoxFrame.for_model(2000, 1000, family_for(name))
    assert frame.extent == (1000, 1000)
    assert frame.to_original([500, 500, 1000, 1000]) == Box(x0=1000, y0=500, x1=2000, y1=1000)


def test_input_size_respects_the_pixel_budget():
    family = family_for("qwen2.5-vl")
    w, h = input_size(8000, 6000, family)
    assert w * h <= family.max_pixels and w % 28 == 0 and h % 28 == 0


@pytest.mark.parametrize(
    "coords",
    [
        [0, 0, 2000, 10],
        [10, 10, 5, 20],
        [1, 2, 3],
        "0,0,1,1",
        [0, 0, float("nan"), 1],
        [True, 0, 1, 1],
    ],
)
def test_bad_boxes_are_input_errors_that_state_the_frame(coords):
    frame = BoxFrame.for_model(640, 480, family_for("qwen2.5-vl"))
    with pytest.raises(ToolInputError, match=r"0 <= x0 < x1 <= \d+"):
        frame.to_original(coords)


def test_unknown_family_override_is_refused():
    with pytest.raises(ToolInputError, match="known: qwen2.5-vl"):
        family_for("x", "llava")


def test_boxes_quoted_in_tool_text_are_shown_in_the_model_frame():
    from sleuth.agent.messages import reframe

    small = dataclasses.replace(family_for("qwen2.5-vl"), max_pixels=224 * 224)
    frame = BoxFrame.for_model(448, 336, small)  # seen at 252x168
    text = "1 area with less noise: (384, 288, 448, 320); peak x4.0 (not a box)."
    assert (
        reframe(text, frame)
        == "1 area with less noise: [216, 144, 252, 160]; peak x4.0 (not a box)."
    )
    assert reframe(text, BoxFrame.original(448, 336)) == text
