"""``sleuth train-fusion`` fits a weight for each calibrated plugin on top of the rest."""

import json
import math

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("sklearn")

from typer.testing import CliRunner  # noqa: E402

from sleuth.agent.features import FEATURE_NAMES  # noqa: E402
from sleuth.agent.fusion import FusionWeights  # noqa: E402
from sleuth.cli import app  # noqa: E402
from sleuth.evaluation import plugins  # noqa: E402
from sleuth.evaluation.features import FeatureRow, plugin_column  # noqa: E402
from sleuth.evaluation.training import TrainingData  # noqa: E402
from sleuth.tools import Calibration  # noqa: E402
from tests.evaluation import upright_plugin  # noqa: E402
from tests.evaluation.test_training import synthetic_rows  # noqa: E402

COLUMN = plugin_column("acme_detector")
DECLARED = {"acme_detector": Calibration(on="a synthetic set")}


def data_with_scores(make_score, seed=0) -> TrainingData:
    rng = np.random.default_rng(seed)
    rows = [
        FeatureRow(r.key, r.track, r.y, r.group, {**r.values, COLUMN: make_score(r.y, rng)})
        for r in synthetic_rows(seed)
    ]
    return TrainingData.from_rows(rows, (*FEATURE_NAMES, COLUMN))


def informative(y, rng):
    return 1 / (1 + math.exp(-(2.0 * (2 * y - 1) + rng.normal(0, 1.5))))


def offset_of(data):
    return np.zeros(len(data.y))  # the rest of the fusion at even odds


def test_an_informative_score_gets_a_positive_weight():
    data = data_with_scores(informative)
    weights = plugins.fit_weights(data, offset_of(data), DECLARED)
    assert weights["acme_detector"] > 0.3
    p = plugins.leave_one_source_out(data, offset_of(data), DECLARED)
    assert ((p > 0.5) == data.y.astype(bool)).mean() > 0.75


def test_a_score_that_says_nothing_gets_next_to_no_weight():
    data = data_with_scores(lambda y, rng: float(rng.uniform(0.05, 0.95)))
    assert plugins.fit_weights(data, offset_of(data), DECLARED)["acme_detector"] < 0.15


def test_a_score_that_points_the_wrong_way_gets_no_weight():
    data = data_with_scores(lambda y, rng: informative(1 - y, rng))
    assert plugins.fit_weights(data, offset_of(data), DECLARED)["acme_detector"] == 0.0


def test_the_fit_applies_the_cap_as_the_fusion_does():
    scores = np.array([0.9999, 0.0001, np.nan, 0.6])
    terms = plugins.plugin_terms(scores, weight=2.0, cap=1.0)
    assert terms.tolist() == pytest.approx([1.0, -1.0, 0.0, min(2 * math.log(1.5), 1.0)])


def test_a_plugin_with_too_few_scores_is_left_to_its_declared_weight():
    data = data_with_scores(lambda y, rng: math.nan)
    assert plugins.fit_weights(data, offset_of(data), DECLARED) == {}


# -- end to end: images, an installed plugin, the command --------------------------------


def labelled_set(root):
    """Four sources of lit-from-above photos; the "AI" ones are turned upside down."""
    from skimage import data

    bases = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    ramp = np.linspace(40.0, -40.0, 150)[:, None, None]  # brighter at the top
    for s, base in enumerate(bases):
        rng = np.random.default_rng(s)
        for i in range(6):
            y0, x0 = rng.integers(0, base.shape[0] - 150), rng.integers(0, base.shape[1] - 200)
            crop = base[y0 : y0 + 150, x0 : x0 + 200].astype(float) + ramp
            crop += rng.normal(0, 3, crop.shape)
            label = "fake" if i % 2 else "real"
            pixels = crop[::-1] if label == "fake" else crop
            folder = root / label / f"source{s}"
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(folder / f"{i}.png")
    return root


@pytest.fixture
def installed_plugin(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(upright_plugin.install(tmp_path / "site")))
    monkeypatch.setenv("SLEUTH_CONFIG", str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text("")
    yield
    import sys

    sys.modules.pop(upright_plugin.MODULE, None)


@pytest.mark.slow
def test_train_fusion_fits_a_positive_weight_for_an_informative_plugin(tmp_path, installed_plugin):
    images = labelled_set(tmp_path / "set")
    out, cache = tmp_path / "fusion.json", tmp_path / "cache"
    args = ["train-fusion", str(images), "--out", str(out), "--cache", str(cache)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text())
    entry = document["plugins"]["acme_upright"]
    assert entry["weight"] > 0.5 and entry["cap"] == 1.0 and entry["rows_scored"] == 72
    assert FusionWeights.from_dict(document).plugins == {"acme_upright": entry["weight"]}
    assert document["loso"]["all"]["auroc"] > document["loso_without_plugins"]["all"]["auroc"]
    assert "plugin acme_upright: weight" in result.output

    again = CliRunner().invoke(app, [*args, "--no-plugins"])  # features from the cache
    assert again.exit_code == 0, again.output
    document = json.loads(out.read_text())
    assert "plugins" not in document and "loso_without_plugins" not in document
