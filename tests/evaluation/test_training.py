"""Training is deterministic with a seed; its coefficients file applies without scikit-learn."""

import json
import math

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sleuth.agent.features import FEATURE_NAMES  # noqa: E402
from sleuth.agent.fusion import FusionWeights, contributions, fuse  # noqa: E402
from sleuth.agent.verdict import Evidence  # noqa: E402
from sleuth.evaluation import training  # noqa: E402
from sleuth.evaluation.features import FeatureRow  # noqa: E402
from sleuth.evaluation.training import (  # noqa: E402
    TrainingData,
    choose_calibration,
    coefficients_document,
    cross_validate,
    fit_fusion,
    repeated_cross_validate,
    scores_by_track,
    spread_by_track,
)

FEATURES = ("provenance_ai", "size_square", "colour_saturation", "noise_sigma")


def synthetic_rows(seed: int = 0) -> list[FeatureRow]:
    """Ten sources of eight images each; fakes are more saturated and more often square."""
    rng = np.random.default_rng(seed)
    rows = []
    for group in range(10):
        for i in range(8):
            y = int((group + i) % 2 == 0)
            values = {
                "provenance_ai": float(y and rng.random() < 0.3),
                "size_square": float(rng.random() < (0.7 if y else 0.3)),
                "colour_saturation": float(rng.normal(0.4 + 0.15 * y, 0.1)),
                "noise_sigma": math.nan if i == 0 else float(rng.normal(2.0, 0.5)),
            }
            for track in ("native", "laundered"):
                rows.append(
                    FeatureRow(
                        key=f"{group}-{i}", track=track, y=y, group=f"g{group}", values=values
                    )
                )
    return rows


def test_training_is_deterministic_with_a_seed():
    data = TrainingData.from_rows(synthetic_rows(), FEATURES)
    a, b = fit_fusion(data, seed=3), fit_fusion(data, seed=3)
    assert np.array_equal(a.coefficients, b.coefficients) and a.slope == b.slope
    assert np.array_equal(cross_validate(data, seed=3), cross_validate(data, seed=3))


def test_the_fit_finds_the_informative_features():
    data = TrainingData.from_rows(synthetic_rows(), FEATURES)
    fitted = fit_fusion(data)
    weight = dict(zip(FEATURES, fitted.coefficients, strict=True))
    assert weight["colour_saturation"] > 0 and weight["size_square"] > 0
    assert abs(weight["noise_sigma"]) < weight["colour_saturation"]
    cv = scores_by_track(data, cross_validate(data))
    assert cv["native"].auroc > 0.7


def test_repeated_cv_uses_distinct_fold_assignments_and_reports_their_spread():
    data = TrainingData.from_rows(synthetic_rows(), FEATURES)
    runs = repeated_cross_validate(data, repeats=4, seed=2)
    assert [seed for seed, _ in runs][0] == 2 and len(runs) == 4
    assert np.array_equal(runs[0][1], cross_validate(data, seed=2))
    partitions = set()
    for seed, _ in runs:
        members = {}
        for k, (_, test) in enumerate(training._splits(data.y, data.groups, folds=5, seed=seed)):
            members[k] = frozenset(data.groups[test])
        partitions.add(frozenset(members.values()))
    assert len(partitions) == 4  # no split counted twice
    spread = spread_by_track(data, runs)
    eces = [scores_by_track(data, p)["native"].ece for _, p in runs]
    native = spread["native"]
    assert native["seeds"] == [seed for seed, _ in runs]
    assert native["ece"]["mean"] == pytest.approx(np.mean(eces), abs=1e-4)
    assert native["ece"]["min"] == pytest.approx(min(eces), abs=1e-4)
    assert native["ece"]["max"] == pytest.approx(max(eces), abs=1e-4)
    assert max(eces) > min(eces)  # the splits differ


def test_the_coefficients_file_reproduces_the_fitted_probabilities():
    data = TrainingData.from_rows(synthetic_rows(), FEATURES)
    fitted = fit_fusion(data)
    cv = scores_by_track(data, cross_validate(data))
    doc = coefficients_document(
        fitted, version="test-v1", cv=cv, n_images=80, n_groups=10, c=0.1, seed=0
    )
    weights = FusionWeights.from_dict(json.loads(json.dumps(doc)))
    row = synthetic_rows()[5]
    evidence = [
        Evidence(id="E1", tool="provenance", summary="-", kind="provenance", score=None),
        Evidence(id="E2", tool="dimensions", summary="-", metrics={"square": True}),
        Evidence(
            id="E3",
            tool="colour",
            summary="-",
            metrics={"saturation_mean": row.values["colour_saturation"]},
        ),
        Evidence(
            id="E4", tool="noise", summary="-", metrics={"noise_sigma": row.values["noise_sigma"]}
        ),
    ]
    x = np.array([[0.0, 1.0, row.values["colour_saturation"], row.values["noise_sigma"]]])
    assert fuse(evidence, weights=weights) == pytest.approx(float(fitted.predict(x)[0]))
    parts = contributions(evidence, weights)
    assert set(parts) == {"E1", "E2", "E3", "E4"}
    total = weights.model.bias + sum(parts.values())
    assert fuse(evidence, weights=weights) == pytest.approx(1 / (1 + math.exp(-total)))


def test_regional_evidence_is_not_a_feature():
    weights = FusionWeights.load()
    whole = Evidence(id="E1", tool="colour", summary="-", metrics={"saturation_mean": 0.9})
    regional = whole.model_copy(update={"id": "E2", "region": {"x0": 0, "y0": 0, "x1": 4, "y1": 4}})
    assert set(contributions([whole, regional], weights)) == {"E1"}
    assert fuse([whole, regional], weights=weights) == fuse([whole], weights=weights)


def test_the_shipped_file_is_a_fitted_model_over_known_features():
    weights = FusionWeights.load()
    assert weights.model is not None and weights.version == "lr-v5"
    assert set(weights.model.features) <= set(FEATURE_NAMES)
    assert FusionWeights.load("fusion-hand-v1.json").model is None  # the old file still loads


def test_the_calibration_is_chosen_on_cross_fitted_decisions():
    rng = np.random.default_rng(0)
    decision = rng.normal(0.0, 3.0, 4000)
    fold = np.arange(4000) % 5
    calibrated = (rng.random(4000) < 1 / (1 + np.exp(-decision))).astype(int)
    assert choose_calibration(decision, calibrated, fold) == "identity"
    overconfident = (rng.random(4000) < 1 / (1 + np.exp(-decision / 3))).astype(int)
    assert choose_calibration(decision, overconfident, fold) in {"platt", "platt-slope"}
    data = TrainingData.from_rows(synthetic_rows(), FEATURES)
    fitted = fit_fusion(data, calibration="platt-slope")
    assert fitted.calibration == "platt-slope" and fitted.offset == 0.0 and fitted.slope > 0
    assert fit_fusion(data, calibration="identity").slope == 1.0
    with pytest.raises(ValueError, match="unknown calibration"):
        fit_fusion(data, calibration="isotonic-ish")
