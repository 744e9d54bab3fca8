"""Summaries quote boxes as the findings hold them: in original pixels, also on a region."""

import re

import numpy as np
import pytest
from PIL import Image

from sleuth.tools import Box, LoadedImage, ToolRegistry, load_image
from tests.conftest import encode, photo
from tests.tools.test_localisation import PASTED, decoded, paste
from tests.tools.test_texture import with_ramps

REGION = Box(x0=64, y0=40, x1=600, y1=440)
"""A crop whose origin is far from (0, 0), so its own frame and original pixels differ."""
QUOTED = re.compile(r"\((\d+), (\d+), (\d+), (\d+)\)")
REGISTRY = ToolRegistry.discover()


def spliced() -> LoadedImage:
    """An area that missed the JPEG compression the rest went through (ELA sees it)."""
    base = photo(1, (640, 480))
    return load_image(encode(paste(decoded(encode(base, "JPEG", quality=70)), base)))


def upsampled_area() -> LoadedImage:
    """An area pasted from a 2x upsampled copy: less noise (the noise tool sees it)."""
    base = photo(1, (640, 480))
    half = Image.fromarray(base).resize((320, 240), Image.Resampling.BICUBIC)
    return load_image(
        encode(paste(base, np.asarray(half.resize((640, 480), Image.Resampling.BICUBIC))))
    )


def ramps() -> LoadedImage:
    """Strong gradients with no fine residual (texture sees an area too clean)."""
    return load_image(encode(with_ramps(photo(1, (640, 480)))))


PLANTED = {"ela": spliced, "noise": upsampled_area, "texture": ramps}


def quoted_boxes(summary: str) -> list[tuple[int, ...]]:
    return [tuple(int(v) for v in match) for match in QUOTED.findall(summary)]


@pytest.mark.parametrize("tool", sorted(PLANTED))
def test_a_region_summary_quotes_its_boxes_in_original_pixels(registry, tool):
    (finding,) = registry.run(tool, PLANTED[tool](), region=REGION).findings
    assert finding.boxes, finding.summary
    assert finding.boxes[0].iou(PASTED) >= 0.5
    in_original = [box.as_tuple() for box in finding.boxes]
    in_crop = [box.shift(-REGION.x0, -REGION.y0).as_tuple() for box in finding.boxes]
    assert quoted_boxes(finding.summary) == in_original, finding.summary
    assert not any(str(box) in finding.summary for box in in_crop)


@pytest.mark.parametrize("name", REGISTRY.names())
def test_every_tool_quotes_only_boxes_its_result_holds(name):
    spec = REGISTRY.get(name)
    image = PLANTED.get(name, spliced)()
    result = REGISTRY.run(name, image, region=REGION if spec.regional else None)
    held = {box.as_tuple() for f in result.findings for box in f.boxes}
    held |= {a.source.as_tuple() for a in result.artifacts if a.source is not None}
    for finding in result.findings:
        for box in quoted_boxes(finding.summary):
            assert box in held, (box, finding.summary)


def test_the_registry_rejects_a_summary_quoting_a_box_it_does_not_hold():
    from pydantic import BaseModel, ConfigDict

    from sleuth.tools import Finding, ToolResult, forensic_tool

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

    @forensic_tool(
        name="acme_crop_frame",
        params=Params,
        summary="Quotes its box in the crop's frame.",
        caveat="A bug on purpose.",
        score_meaning="No score.",
    )
    def acme_crop_frame(image, params, ctx):
        box = image.to_original(Box(x0=0, y0=0, x1=10, y1=10))
        return ToolResult(findings=[Finding(summary="An area at (0, 0, 10, 10).", boxes=[box])])

    registry = ToolRegistry.discover()
    registry.register(acme_crop_frame)
    with pytest.raises(RuntimeError, match=r"quotes box \(0, 0, 10, 10\)"):
        registry.run("acme_crop_frame", spliced(), region=REGION)
    result = registry.run("acme_crop_frame", spliced())  # on the whole image the frames agree
    assert result.findings[0].boxes[0].as_tuple() == (0, 0, 10, 10)
