"""The feature vector: metrics read from whole-image evidence, and the gated colour features."""

import math

from sleuth.agent.features import FEATURE_NAMES, GATED_FEATURES, extract_features
from sleuth.agent.fusion import FusionWeights, contributions
from sleuth.agent.verdict import Evidence

COLOUR = {
    "saturation_mean": 0.61,
    "saturation_p95": 0.9,
    "saturated_share": 0.2,
    "clipped_high": 0.01,
    "clipped_low": 0.07,
}


def _evidence(square, multiple):
    dims = {"square": square, "sides_multiple": multiple}
    return [
        Evidence(id="E1", tool="dimensions", summary="-", metrics=dims),
        Evidence(id="E2", tool="colour", summary="-", metrics=COLOUR),
    ]


def test_gated_features_repeat_the_colour_statistics_only_at_generator_sizes():
    inside = extract_features(_evidence(True, True))
    assert inside.values["colour_saturation_at_gen_size"] == 0.61
    assert inside.values["colour_clipped_low_at_gen_size"] == 0.07
    assert inside.sources["colour_saturation_at_gen_size"] == 1  # credited to the colour item
    for square, multiple in ((True, False), (False, True), (False, False)):
        outside = extract_features(_evidence(square, multiple))
        assert {outside.values[f.name] for f in GATED_FEATURES} == {0.0}
        assert outside.values["colour_saturation"] == 0.61


def test_gated_features_are_missing_when_the_size_or_the_statistic_is():
    no_size = extract_features(_evidence(True, True)[1:])
    assert all(math.isnan(no_size.values[f.name]) for f in GATED_FEATURES)
    assert not {f.name for f in GATED_FEATURES} & set(no_size.sources)
    no_colour = extract_features(_evidence(True, True)[:1])
    assert all(math.isnan(no_colour.values[f.name]) for f in GATED_FEATURES)
    assert set(extract_features([]).values) == set(FEATURE_NAMES)


def test_the_shipped_model_moves_a_saturated_generator_size_image_towards_ai():
    weights = FusionWeights.load()
    assert {f.name for f in GATED_FEATURES} <= set(weights.model.features)
    vivid = {**COLOUR, "saturation_mean": 0.8, "saturation_p95": 1.0, "saturated_share": 0.5}
    dull = {**COLOUR, "saturation_mean": 0.2, "saturation_p95": 0.4, "saturated_share": 0.0}

    def colour_term(metrics, square):
        evidence = _evidence(square, square)
        evidence[1] = evidence[1].model_copy(update={"metrics": metrics})
        return contributions(evidence, weights)["E2"]

    gap_inside = colour_term(vivid, True) - colour_term(dull, True)
    gap_outside = colour_term(vivid, False) - colour_term(dull, False)
    assert gap_inside > gap_outside + 0.5
