"""The shipped coefficients reproduce their reported grouped-CV figures on the shared set."""

import pytest

pytest.importorskip("sklearn")

from sleuth.agent.fusion import DEFAULT_WEIGHTS, FusionWeights  # noqa: E402
from sleuth.evaluation.features import collect_features  # noqa: E402
from sleuth.evaluation.sources import read_source  # noqa: E402
from sleuth.evaluation.training import (  # noqa: E402
    TrainingData,
    cross_validate,
    fit_fusion,
    repeated_cross_validate,
    scores_by_track,
    spread_by_track,
)
from tests.conftest import REPO  # noqa: E402

pytestmark = pytest.mark.data


@pytest.fixture(scope="session")
def shared_rows(shared_data):
    samples = read_source(shared_data / "manifest.csv")
    return collect_features(samples, jobs=2, cache=REPO / ".cache" / "evaluation" / "features")


def test_shipped_coefficients_reproduce_their_cv_figures(shared_rows):
    shipped = FusionWeights.load()
    doc_cv, doc_spread, training = _document(shipped)
    data = TrainingData.from_rows(shared_rows, shipped.model.features)
    assert len(set(data.groups)) == training["groups"]
    cv = scores_by_track(data, cross_validate(data, c=training["C"], seed=training["seed"]))
    for track in ("native", "laundered"):
        assert cv[track].auroc == pytest.approx(doc_cv[track]["auroc"], abs=0.01), track
        assert cv[track].ece == pytest.approx(doc_cv[track]["ece"], abs=0.01), track
    spread = spread_by_track(
        data, repeated_cross_validate(data, repeats=len(doc_spread["native"]["seeds"]))
    )
    for track in ("native", "laundered"):
        assert spread[track]["seeds"] == doc_spread[track]["seeds"]
        for metric in ("auroc", "ece"):
            got, want = spread[track][metric], doc_spread[track][metric]
            assert got["mean"] == pytest.approx(want["mean"], abs=0.01), (track, metric)
    refit = fit_fusion(data, c=training["C"], seed=training["seed"])
    assert refit.coefficients == pytest.approx(list(shipped.model.coefficients), abs=1e-3)


def test_every_shared_image_gives_a_full_feature_vector(shared_rows):
    assert not [r.key for r in shared_rows if r.error]
    model = FusionWeights.load().model
    for row in shared_rows:
        missing = [f for f in model.features if row.values.get(f) != row.values.get(f)]
        assert not missing, (row.key, row.track, missing)


def _document(weights):
    import json
    from importlib import resources

    text = resources.files("sleuth.agent").joinpath("weights", DEFAULT_WEIGHTS).read_text()
    doc = json.loads(text)
    assert doc["version"] == weights.version
    return doc["cv"], doc["cv_repeated"], doc["training"]
