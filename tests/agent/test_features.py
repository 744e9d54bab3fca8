"""The feature vector and the fusion's rules: what size and provenance may do to p_ai."""

import math

import pytest

from sleuth.agent.features import FEATURE_NAMES, extract_features
from sleuth.agent.fusion import FusionWeights, ProvenanceRules, contributions, fuse
from sleuth.agent.verdict import Evidence, label_for

BAND = (0.35, 0.65)
COLOUR = {
    "saturation_mean": 0.61,
    "saturation_p95": 0.9,
    "saturated_share": 0.2,
    "clipped_high": 0.01,
    "clipped_low": 0.07,
    "chroma_detail": -0.4,
}


def dims(width, height, lossless):
    metrics = {
        "square": width == height,
        "sides_multiple": width % 64 == 0 and height % 64 == 0,
        "lossless": lossless,
        "megapixels_log": math.log(width * height / 1e6),
    }
    return Evidence(id="E1", tool="dimensions", summary="-", metrics=metrics)


def colour(**changes):
    return Evidence(id="E2", tool="colour", summary="-", metrics={**COLOUR, **changes})


def provenance(direction="neutral", state=None, ident="E3"):
    metrics = {"c2pa_validation_state": state} if state else {}
    return Evidence(
        id=ident, tool="provenance", summary="-", kind="provenance", direction=direction,
        score=None if direction == "neutral" else 0.3, metrics=metrics,
    )  # fmt: skip


def test_the_generator_frame_counts_only_on_a_losslessly_stored_file():
    assert extract_features([dims(1024, 1024, True)]).values["size_generator_lossless"] == 1.0
    assert extract_features([dims(1024, 1024, False)]).values["size_generator_lossless"] == 0.0
    assert extract_features([dims(1023, 1024, True)]).values["size_generator_lossless"] == 0.0
    assert math.isnan(extract_features([colour()]).values["size_generator_lossless"])
    assert set(extract_features([]).values) == set(FEATURE_NAMES)


@pytest.mark.parametrize(
    "size",
    [(451, 300, True), (4000, 3000, False), (1023, 1023, True), (7, 5, False), (512, 512, False)],
)
@pytest.mark.parametrize("saturation", [0.05, 0.35, 0.8])
def test_size_alone_never_lowers_p_ai(size, saturation):
    weights = FusionWeights.load()
    base = [colour(saturation_mean=saturation), provenance()]
    without = fuse(base, weights=weights)
    with_size = fuse([dims(*size), *base], weights=weights)
    assert with_size >= without - 1e-12
    assert contributions([dims(*size), *base], weights).get("E1", 0.0) >= 0.0


def test_a_generator_frame_on_a_lossless_file_is_weak_evidence_for_ai():
    weights = FusionWeights.load()
    base = [colour(), provenance()]
    lift = contributions([dims(1024, 1024, True), *base], weights)["E1"]
    assert 0.0 < lift <= 1.0 + 1e-9  # at most a likelihood ratio of e
    # so cropping a pixel off can move a verdict into the abstain band, never across it
    for saturation in (0.0, 0.3, 0.6, 0.9):
        z_rest = math.log(1 / fuse([colour(saturation_mean=saturation), provenance()]) - 1)
        before = label_for(1 / (1 + math.exp(z_rest - lift)), BAND)
        after = label_for(1 / (1 + math.exp(z_rest)), BAND)
        assert not (before == "ai_generated" and after == "real")


def test_forged_camera_exif_never_changes_a_label_it_did_not_already_have():
    weights = FusionWeights.load()
    for saturation in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0):
        for frame in (dims(1024, 1024, True), dims(800, 600, False)):
            clean = [frame, colour(saturation_mean=saturation), provenance()]
            forged = [*clean, provenance("real", ident="E4")]
            p_clean, p_forged = fuse(clean, weights=weights), fuse(forged, weights=weights)
            assert p_forged <= p_clean + 1e-12
            if label_for(p_clean, BAND) != "real":
                assert p_forged == pytest.approx(p_clean)
                assert label_for(p_forged, BAND) == label_for(p_clean, BAND)


def test_only_a_validly_signed_capture_manifest_is_strong_evidence_of_a_capture():
    weights = FusionWeights.load()
    rules = weights.provenance
    assert rules is not None and rules.signed_capture <= -2.0 and rules.declared_ai >= 3.0
    assert -0.5 <= rules.unsigned_capture < 0.0
    base = [dims(1024, 1024, True), colour()]
    signed = contributions([*base, provenance("real", "Valid")], weights)["E3"]
    invalid = contributions([*base, provenance("real", "Invalid")], weights).get("E3", 0.0)
    assert signed == pytest.approx(rules.signed_capture)
    assert invalid == 0.0  # unsigned, and the rest of the evidence is not below the band
    features = extract_features([provenance("real", "Invalid")]).values
    assert features["provenance_unsigned_capture"] == 1.0
    assert features["provenance_signed_capture"] == 0.0


def test_a_declared_ai_origin_decides_whatever_the_pixels_say():
    weights = FusionWeights.load()
    for saturation in (0.0, 1.0):
        evidence = [colour(saturation_mean=saturation), provenance("ai")]
        assert label_for(fuse(evidence, weights=weights), BAND) == "ai_generated"
        assert contributions(evidence, weights)["E3"] == pytest.approx(4.0)


def test_without_provenance_p_ai_stays_within_the_supported_cap():
    weights = FusionWeights.load()
    cap_ai, cap_real = weights.model.cap_ai, weights.model.cap_real
    assert cap_ai is not None and cap_real is not None and 0.0 < cap_real <= cap_ai <= 3.0
    extreme = colour(
        saturation_mean=1.0, saturation_p95=1.0, saturated_share=1.0, clipped_low=1.0,
        chroma_detail=5.0,
    )  # fmt: skip
    for evidence in ([dims(1024, 1024, True), extreme], [extreme], [colour(saturation_mean=0.0)]):
        p = fuse([*evidence, provenance()], weights=weights)
        z = math.log(p / (1 - p))
        assert -cap_real - 1e-9 <= z <= cap_ai + 1e-9
        parts = contributions([*evidence, provenance()], weights)
        assert weights.model.bias + sum(parts.values()) == pytest.approx(z)


def test_rules_round_trip_through_a_coefficients_file():
    rules = ProvenanceRules(declared_ai=3.5, signed_capture=-2.5, unsigned_capture=-0.3)
    assert ProvenanceRules.from_dict(rules.as_dict()) == rules
