"""Every feature of the fusion's vector is produced by the tool and metric it names.

The fusion reads its features from the survey's findings by tool and metric name
(:data:`sleuth.agent.features.METRIC_FEATURES`). A tool that renames or drops a metric
would leave the feature NaN in every vector without any error; these tests run the
survey on a real photo and fail instead.
"""

import math

import pytest
from skimage import data

from sleuth.agent.features import (
    DERIVED_FEATURES,
    FEATURE_NAMES,
    METRIC_FEATURES,
    PROVENANCE_FEATURES,
    extract_features,
)
from sleuth.tools import ToolRegistry
from sleuth.tools.survey import run_survey, survey_tools
from tests.conftest import loaded

JPEG_ONLY = {"jpeg_dq_score"}
"""Features only a JPEG file has (the double-quantization test needs its tables)."""
REGISTRY = ToolRegistry.discover()
IMAGES = {
    "photo-jpeg": lambda: loaded(data.astronaut(), "JPEG", quality=90),
    "photo-png": lambda: loaded(data.coffee(), "PNG"),
}


@pytest.fixture(scope="module", params=sorted(IMAGES))
def surveyed(request):
    image = IMAGES[request.param]()
    survey = run_survey(REGISTRY, image)
    findings = [f for result in survey.results.values() for f in result.findings]
    return image, findings, extract_features(findings)


def test_the_vector_is_metric_provenance_and_derived_features():
    named = {f.name for f in METRIC_FEATURES} | set(PROVENANCE_FEATURES) | set(DERIVED_FEATURES)
    assert set(FEATURE_NAMES) == named
    assert len(FEATURE_NAMES) == len(named)


def test_every_tool_a_feature_reads_runs_in_the_survey():
    assert {f.tool for f in METRIC_FEATURES} | {"provenance"} <= set(survey_tools(REGISTRY))


@pytest.mark.parametrize("feature", METRIC_FEATURES, ids=lambda f: f.name)
def test_each_pixel_and_size_feature_is_its_tools_metric(surveyed, feature):
    image, findings, vector = surveyed
    value = vector.values[feature.name]
    if feature.name in JPEG_ONLY and not image.is_jpeg:
        assert math.isnan(value)
        return
    assert math.isfinite(value), feature
    source = findings[vector.sources[feature.name]]
    assert source.tool == feature.tool
    assert feature.metric in source.metrics, sorted(source.metrics)
    assert float(source.metrics[feature.metric]) == value


def test_provenance_flags_come_from_the_provenance_tool(surveyed):
    _, findings, vector = surveyed
    for flag in PROVENANCE_FEATURES:
        assert vector.values[flag] in (0.0, 1.0), flag
        assert findings[vector.sources[flag]].tool == "provenance"


def test_the_derived_generator_frame_feature_is_computed(surveyed):
    _, _, vector = surveyed
    values = vector.values
    assert values["size_generator_lossless"] == values["size_multiple_64"] * values["size_lossless"]
    assert math.isfinite(values["size_generator_lossless"])
