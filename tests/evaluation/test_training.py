"""The earned fusion's fit: stable features, one-sided size, capped confidence, LOSO."""

import json
import math

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sleuth.agent.features import FEATURE_NAMES  # noqa: E402
from sleuth.agent.fusion import FusionWeights, ProvenanceRules, contributions, fuse  # noqa: E402
from sleuth.agent.verdict import Evidence  # noqa: E402
from sleuth.evaluation import earned  # noqa: E402
from sleuth.evaluation.features import TRACKS, FeatureRow  # noqa: E402
from sleuth.evaluation.training import TrainingData, scores_by_track  # noqa: E402

CANDIDATES = ("colour_saturation", "noise_sigma", "ela_mean", "size_generator_lossless")


def synthetic_rows(seed: int = 0, groups: int = 8) -> list[FeatureRow]:
    """Sources of ten images on three tracks.

    Fakes are more saturated on every track; ``ela_mean`` points to AI natively and the
    other way after re-encoding; ``noise_sigma`` is noise; some native fakes sit in a
    generator frame on a lossless file.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for group in range(groups):
        for i in range(10):
            y = int((group + i) % 2 == 0)
            for track in TRACKS:
                flip = 1.0 if track == "native" else -1.0
                values = {name: math.nan for name in FEATURE_NAMES}
                values.update(
                    colour_saturation=float(rng.normal(0.4 + 0.15 * y, 0.1)),
                    noise_sigma=math.nan if i == 0 else float(rng.normal(2.0, 0.5)),
                    ela_mean=float(rng.normal(1.0 + flip * 0.8 * y, 0.3)),
                    size_generator_lossless=float(track == "native" and y and i < 4),
                    provenance_ai=float(track == "native" and y and i == 4),
                )
                rows.append(
                    FeatureRow(
                        key=f"{group}-{i}", track=track, y=y, group=f"g{group}", values=values
                    )  # fmt: skip
                )
    return rows


def data(seed=0, groups=8):
    return TrainingData.from_rows(synthetic_rows(seed, groups), FEATURE_NAMES)


def test_only_features_that_point_the_same_way_on_every_track_are_kept():
    kept = earned.stable_features(data(), ["colour_saturation", "noise_sigma", "ela_mean"])
    assert kept == ["colour_saturation"]


def test_the_fit_is_deterministic_and_keeps_size_one_sided_and_weak():
    a = earned.fit_pixel_model(data(), candidates=CANDIDATES)
    b = earned.fit_pixel_model(data(), candidates=CANDIDATES)
    assert a.features == b.features and np.array_equal(a.coefficients, b.coefficients)
    assert a.features == ("size_generator_lossless", "colour_saturation")
    size = a.features.index("size_generator_lossless")
    assert a.means[size] == 0.0 and a.coefficients[size] >= 0.0
    lift = a.slope * a.coefficients[size] / a.scales[size]
    assert 0.0 < lift <= earned.ONE_SIDED_MAX + 1e-9
    top = earned.CAP_LEVELS[-1]
    for cap in (a.cap_ai, a.cap_real):
        assert math.log(0.6 / 0.4) - 1e-9 <= cap <= math.log(top / (1 - top)) + 1e-9


def test_a_one_sided_feature_that_points_to_real_is_dropped():
    rows = synthetic_rows()
    flipped = [
        FeatureRow(r.key, r.track, r.y, r.group,
                   {**r.values, "size_generator_lossless": float(r.track == "native" and not r.y)})
        for r in rows
    ]  # fmt: skip
    model = earned.fit_pixel_model(
        TrainingData.from_rows(flipped, FEATURE_NAMES), candidates=CANDIDATES
    )
    assert "size_generator_lossless" not in model.features


def test_each_cap_is_the_confidence_held_out_decisions_support_on_every_track():
    rng = np.random.default_rng(1)
    z = rng.normal(0.0, 3.0, 6000)
    tracks = np.array(["native", "web"] * 3000)
    calibrated = (rng.random(6000) < 1 / (1 + np.exp(-z))).astype(int)
    top, bottom = earned.CAP_LEVELS[-1], earned.CAP_LEVELS[0]
    logit = lambda q: math.log(q / (1 - q))  # noqa: E731
    ai, real = earned.choose_caps(calibrated, z, tracks)
    assert ai == pytest.approx(logit(top)) and real == pytest.approx(logit(top))
    coin = (rng.random(6000) < 0.5).astype(int)
    assert earned.choose_caps(coin, z, tracks) == pytest.approx((logit(bottom), logit(bottom)))
    # right when it says AI, a coin when it says real, on the web track only
    lopsided = np.where((z < 0) & (tracks == "web"), coin, calibrated)
    ai, real = earned.choose_caps(lopsided, z, tracks)
    assert ai == pytest.approx(logit(top)) and real == pytest.approx(logit(bottom))


def test_leave_one_source_out_never_sees_the_held_out_source(monkeypatch):
    seen = []
    original = earned.fit_pixel_model

    def spy(train, **kwargs):
        seen.append(set(train.groups))
        return original(train, **kwargs)

    monkeypatch.setattr(earned, "fit_pixel_model", spy)
    d = data(groups=6)
    p = earned.leave_one_source_out(d, candidates=CANDIDATES, c_grid=(0.1,))
    groups = set(d.groups)
    assert len(seen) == len(groups)
    assert all(len(s) == len(groups) - 1 for s in seen)
    assert {next(iter(groups - s)) for s in seen} == groups
    scores = scores_by_track(d, p)
    assert scores["native"].auroc > 0.75 and scores["web"].auroc > 0.6
    declared = d.x[:, d.features.index("provenance_ai")] == 1
    assert (p[declared] > 0.95).all()


def test_the_coefficients_file_reproduces_the_fitted_probabilities():
    d = data()
    model = earned.fit_pixel_model(d, candidates=CANDIDATES)
    rules = ProvenanceRules()
    doc = earned.earned_document(
        model, version="test-v1", rules=rules, loso={}, n_images=80, n_groups=8,
        candidates=CANDIDATES, c_grid=earned.C_GRID,
    )  # fmt: skip
    weights = FusionWeights.from_dict(json.loads(json.dumps(doc)))
    for saturation, lossless in ((0.2, False), (0.55, True), (0.9, True)):
        evidence = [
            Evidence(id="E1", tool="provenance", summary="-", kind="provenance"),
            Evidence(id="E2", tool="dimensions", summary="-",
                     metrics={"sides_multiple": True, "lossless": lossless}),
            Evidence(id="E3", tool="colour", summary="-",
                     metrics={"saturation_mean": saturation}),
        ]  # fmt: skip
        assert model.features == ("size_generator_lossless", "colour_saturation")
        x = np.array([[float(lossless), saturation]])
        want = 1 / (1 + math.exp(-float(model.decision(x)[0])))
        assert fuse(evidence, weights=weights) == pytest.approx(want, abs=1e-5)  # 6 digits kept
        parts = contributions(evidence, weights)
        total = weights.model.bias + sum(parts.values())
        assert fuse(evidence, weights=weights) == pytest.approx(1 / (1 + math.exp(-total)))


def test_regional_evidence_is_not_a_feature():
    weights = FusionWeights.load()
    whole = Evidence(id="E1", tool="colour", summary="-", metrics={"saturation_mean": 0.9})
    regional = whole.model_copy(update={"id": "E2", "region": {"x0": 0, "y0": 0, "x1": 4, "y1": 4}})
    assert set(contributions([whole, regional], weights)) == {"E1"}
    assert fuse([whole, regional], weights=weights) == fuse([whole], weights=weights)


def test_the_shipped_file_is_an_earned_fusion_over_known_features():
    weights = FusionWeights.load()
    assert weights.model is not None and weights.version == "lr-v6"
    assert weights.provenance is not None
    assert weights.model.cap_ai is not None and weights.model.cap_real is not None
    assert set(weights.model.features) <= set(earned.PIXEL_CANDIDATES) | set(earned.ONE_SIDED)
    assert FusionWeights.load("fusion-hand-v1.json").model is None  # the old file still loads
