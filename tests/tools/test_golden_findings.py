"""The survey's findings stay what they were: every survey tool's output, held in a golden file.

Every survey tool runs on a fixed subset of the shared image set (24 images spread over
sources, labels and formats) and on a few images built here (so the test also runs without
the shared set), on the whole image and on one off-grid region. Each finding (summary,
score, direction, kind, boxes and their scores, metrics, caveats, artifact names), each
artifact's size and mean level and the survey's candidate regions are compared with
``golden/survey_findings.json``. Floats are kept to 6 significant digits, artifact means to
4: a speed-up that only rounds floats differently passes, any other change fails.

The file was made on x86-64 with numpy's OpenBLAS. The JPEG tool thresholds DCT
coefficients computed in float64 (the grid vote with a margin below 0.5), so its counts
should not depend on the BLAS kernel; if a few ``grid_votes`` move on another machine all
the same, regenerate the file there and check with ``git diff`` that nothing else moved.

When a change of findings is intended, regenerate the file from the checkout's code and
commit it with the change that explains it::

    python -m tests.tools.test_golden_findings            # writes golden/survey_findings.json

(with ``SLEUTH_SHARED_DATA`` pointing at the shared set, or the shared set beside the
checkout; without it the shared images' entries are kept as they are).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from sleuth.tools import Box, LoadedImage, ToolRegistry, load_image
from sleuth.tools.base import ToolResult
from sleuth.tools.survey import run_survey, survey_tools
from tests.conftest import encode, photo, shared_data_dir

GOLDEN = Path(__file__).with_name("golden") / "survey_findings.json"

SHARED_IMAGES = (
    "real/imagenet/n02051845_pelican.JPEG",
    "real/exif-samples/jpg__gps__DSCN0042.jpg",
    "real/mllm-defake/decider__images__real__3950607000124.jpg",
    "real/pypi-scikit_learn/china.jpg",
    "real/imagenet/n04243546_slot.JPEG",
    "fake/stable-diffusion-beta-2022/imagen/girl-putting-make-up-mirror-4928040__stab-1.png",
    "fake/sdxl/ComfyUI_examples/sdxl_simple_example.png",
    "fake/sd1.x/ComfyUI_examples/hypernetwork_example_output.png",
    "fake/midjourney-v3/imagen/aerial-criminals-lair-deep-mountains-68125277__midj-1.png",
    "fake/flux.1-dev/ComfyUI_examples/flux_dev_checkpoint_example.png",
    "fake/unknown-mllm-defake-sample/mllm-defake/demo__fake__img007937.jpg",
    "fake/dalle2/imagen/girl-met-scary-looking-ogre-9967181__dal2-1.jpg",
    "fake/adobe-firefly-genfill-composite/c2pa-fixtures/sdk__tests__fixtures__ocsp.jpg",
    "real/compvis-inpainting-inputs/overture-creations-5sI6fQgYIuo.png",
    "real/ganimagedetection/real_progan.png",
    "real/exif-samples/heic__samplefilehub.heif",
    "fake/novelai-diffusion/sd-metadata/novelai-curated.webp",
    "real/c2pa-fixtures/microsoft__cards.jpg",
    "extra/real/photo-people/Laboratoriet__public__images__people__real__64.jpg",
    "extra/real/photo-nature/Laboratoriet__public__images__nature__real__60.jpg",
    "extra/fake/ai-unspecified/Laboratoriet__public__images__nature__ai__3.jpg",
    "extra/fake/kolors-ipadapter/Kwai-Kolors__ipadapter__asset__1_kolors_ip_result.jpg",
    "extra/fake/gpt-4o-image/jamez-bondos__cases__83__case.png",
    "extra/real/photo-portrait/Algorithm-bot__ai-vs-real-face-detector__data__real__1.webp",
)
"""Files of the shared set (paths under it), chosen by label, format and source."""

UNORDERED_METRICS = frozenset({"c2pa_actions"})
"""Comma-separated metrics whose order varies from run to run (the C2PA library returns a
file's manifests in no fixed order): compared as sorted lists."""


def _double_compressed() -> bytes:
    """A q60 JPEG, decoded, cropped by (5, 3) pixels and saved again at q90."""
    first = np.asarray(Image.open(io.BytesIO(encode(photo(2, (600, 450)), "JPEG", quality=60))))
    return encode(np.ascontiguousarray(first[3:, 5:]), "JPEG", quality=90)


def _rotated() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(photo(3, (500, 340)), "JPEG", quality=85, exif=exif.tobytes())


def _grey() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(photo(4, (480, 360))).convert("L").save(buf, "JPEG", quality=80)
    return buf.getvalue()


def synthetic_images() -> dict[str, bytes]:
    """Images built at test time: the same bytes wherever the test runs."""
    return {
        "png": encode(photo(0, (512, 384)), "PNG"),
        "jpeg-q90": encode(photo(1, (640, 480)), "JPEG", quality=90),
        "jpeg-1mp-q92": encode(photo(5, (1152, 864), noise=2.5), "JPEG", quality=92),
        "jpeg-double-cropped": _double_compressed(),
        "jpeg-rotated": _rotated(),
        "jpeg-grey": _grey(),
        "png-tiny": encode(photo(6, (24, 20)), "PNG"),
    }


def _round(value: Any, digits: int = 6) -> Any:
    if isinstance(value, float) and math.isfinite(value) and value != 0.0:
        return float(f"{value:.{digits}g}")
    return value


def _metric(name: str, value: Any) -> Any:
    if name in UNORDERED_METRICS and isinstance(value, str):
        return ",".join(sorted(value.split(",")))
    return _round(value)


def _box(box: Box) -> list[int]:
    return list(box.as_tuple())


def _result(result: ToolResult) -> dict[str, Any]:
    findings = [
        {
            "tool": f.tool,
            "kind": f.kind,
            "summary": f.summary,
            "score": _round(f.score),
            "direction": f.direction,
            "boxes": [_box(b) for b in f.boxes],
            "box_scores": [_round(s) for s in f.box_scores],
            "metrics": {k: _metric(k, v) for k, v in f.metrics.items()},
            "caveats": list(f.caveats),
            "artifacts": list(f.artifacts),
        }
        for f in result.findings
    ]
    artifacts = [
        {
            "name": a.name,
            "kind": a.kind,
            "size": [a.width, a.height],
            "source": None if a.source is None else _box(a.source),
            "mean": _round(float(a.pixels().mean(dtype=np.float64)), 4),
        }
        for a in result.artifacts
    ]
    return {"findings": findings, "artifacts": artifacts}


def _region(image: LoadedImage) -> Box | None:
    """An off-grid box inside the image (its origin is not a multiple of 8)."""
    width, height = image.size
    x0, y0 = width // 5 + 3, height // 4 + 5
    x1, y1 = min(width, x0 + 320), min(height, y0 + 256)
    return Box(x0=x0, y0=y0, x1=x1, y1=y1) if x1 - x0 >= 32 and y1 - y0 >= 32 else None


def findings_of(registry: ToolRegistry, raw: bytes) -> dict[str, Any]:
    """Run the survey on the whole image and every regional survey tool on one region."""
    image = load_image(raw)
    survey = run_survey(registry, image)
    out: dict[str, Any] = {
        "size": list(image.size),
        "survey": {name: _result(result) for name, result in survey.results.items()},
        "candidates": [{"box": _box(c.box), "score": _round(c.score)} for c in survey.candidates],
    }
    region = _region(image)
    if region is not None:
        out["region"] = _box(region)
        out["regional"] = {
            name: _result(registry.run(name, image, region=region))
            for name in survey_tools(registry)
            if registry.get(name).regional
        }
    return out


def _same(expected: Any, actual: Any, where: str, diffs: list[str]) -> None:
    """Collect the differences between two canonical forms (floats to 6 digits)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        if list(expected) != list(actual):
            diffs.append(f"{where}: keys {list(expected)} != {list(actual)}")
            return
        for key in expected:
            _same(expected[key], actual[key], f"{where}.{key}", diffs)
    elif isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            diffs.append(f"{where}: {len(expected)} items != {len(actual)}")
            return
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            _same(e, a, f"{where}[{i}]", diffs)
    elif isinstance(expected, float) and isinstance(actual, float | int):
        # one unit in the 6th digit: a value on a rounding boundary may land either side
        if not math.isclose(expected, actual, rel_tol=2e-6, abs_tol=1e-12):
            diffs.append(f"{where}: {expected!r} != {actual!r}")
    elif expected != actual or type(expected) is not type(actual):
        diffs.append(f"{where}: {expected!r} != {actual!r}")


@pytest.fixture(scope="module")
def golden() -> dict[str, Any]:
    with open(GOLDEN) as fh:
        return json.load(fh)


def _check(golden_entry: dict[str, Any], actual: dict[str, Any], name: str) -> None:
    diffs: list[str] = []
    _same(golden_entry, actual, name, diffs)
    assert not diffs, "findings changed:\n" + "\n".join(diffs[:40])


@pytest.mark.parametrize("name", sorted(synthetic_images()))
def test_synthetic_image_findings_are_unchanged(name, golden, registry):
    raw = synthetic_images()[name]
    _check(golden["synthetic"][name], findings_of(registry, raw), name)


@pytest.mark.data
@pytest.mark.parametrize("file", SHARED_IMAGES)
def test_shared_image_findings_are_unchanged(file, golden, registry, shared_data):
    pytest.importorskip("pillow_heif", reason="HEIF photos in the set need pillow-heif")
    entry = golden["shared"][file]
    raw = (shared_data / file).read_bytes()
    assert hashlib.sha256(raw).hexdigest() == entry["sha256"], f"{file} is not the same file"
    _check(entry["findings"], findings_of(registry, raw), file)


def regenerate() -> None:
    """Write the golden file from the current code."""
    registry = ToolRegistry.discover()
    old = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {"shared": {}}
    out: dict[str, Any] = {
        "synthetic": {name: findings_of(registry, raw) for name, raw in synthetic_images().items()},
        "shared": {},
    }
    root = shared_data_dir()
    for file in SHARED_IMAGES:
        path = root / file
        if not path.is_file():
            print(f"not found, kept as it was: {file}", file=sys.stderr)
            if file in old["shared"]:
                out["shared"][file] = old["shared"][file]
            continue
        raw = path.read_bytes()
        out["shared"][file] = {
            "sha256": hashlib.sha256(raw).hexdigest(),
            "findings": findings_of(registry, raw),
        }
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps(out, indent=1, sort_keys=False) + "\n")
    print(f"wrote {GOLDEN.name}: {len(out['synthetic'])} synthetic, {len(out['shared'])} shared")


if __name__ == "__main__":
    regenerate()
