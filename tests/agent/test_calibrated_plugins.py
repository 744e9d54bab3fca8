"""Plugins whose score is a calibrated probability count in p_ai, capped; others do not."""

import dataclasses
import json
import math
import re
from importlib import resources

import pytest
from pydantic import BaseModel, ConfigDict

from sleuth.agent.detectors import detector_terms
from sleuth.agent.fusion import DEFAULT_WEIGHTS, FusionWeights, contributions, fuse
from sleuth.agent.session import Session
from sleuth.agent.verdict import Evidence
from sleuth.present.console import evidence_lines
from sleuth.servers.mcp.texts import verdict_brief
from sleuth.tools import Box, Calibration, Finding, ToolRegistry, ToolResult, forensic_tool
from tests.agent.conftest import composite_png


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


def detector(score: float, *, calibrated: Calibration | None, name: str = "acme_detector"):
    """A survey plugin that reads ``score`` on every image and region."""

    @forensic_tool(
        name=name,
        params=NoParams,
        summary="A learned detector's probability that the image is AI-generated.",
        caveat="Only for tests.",
        score_meaning="Probability of AI generation.",
        survey=True,
        calibrated=calibrated,
    )
    def run(image, params, ctx):
        direction = "ai" if score > 0.5 else "real"
        return ToolResult(
            findings=[Finding(summary="A reading.", score=score, direction=direction)]
        )

    return run


ON = "a synthetic test set"


def logit(p):
    return math.log(p / (1 - p))


def analyse(settings, *plugins):
    registry = ToolRegistry.discover()
    for spec in plugins:
        registry.register(spec)
    with Session(settings.session_config(), registry) as session:
        return session.analyze(composite_png())


@pytest.fixture(scope="module")
def module_settings(tmp_path_factory):
    from sleuth.settings import Settings

    root = tmp_path_factory.mktemp("calibrated")
    (root / "none.toml").write_text("")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SLEUTH_CONFIG", str(root / "none.toml"))
        yield Settings.load(data_dir=root / "data")


@pytest.fixture(scope="module")
def plain(module_settings):
    return analyse(module_settings)


def whole_image_item(verdict, tool="acme_detector"):
    (item,) = [e for e in verdict.evidence if e.tool == tool and e.region is None]
    return item


def builtin_contributions(verdict):
    tools = {e.id: e.tool for e in verdict.evidence}
    return {k: v for k, v in verdict.contributions.items() if not tools[k].startswith("acme_")}


def test_a_calibrated_score_moves_p_ai_by_its_log_odds(module_settings, plain):
    verdict = analyse(module_settings, detector(0.6, calibrated=Calibration(on=ON)))
    item = whole_image_item(verdict)
    assert verdict.contributions[item.id] == pytest.approx(logit(0.6))
    assert builtin_contributions(verdict) == plain.contributions  # built-ins unchanged
    moved = logit(verdict.p_signals) - logit(plain.p_signals)
    assert moved == pytest.approx(logit(0.6), abs=2e-3)  # p_signals is rounded to 4 digits
    assert f"[{item.id}]" in verdict.explanation
    assert f"Calibrated detector acme_detector gives p_ai 0.60 [{item.id}]" in verdict.explanation
    assert f"calibrated on: {ON}" in verdict.explanation and "cut to its cap" not in (
        verdict.explanation
    )


def test_an_overconfident_score_counts_only_up_to_the_cap(module_settings, plain):
    verdict = analyse(module_settings, detector(0.9999, calibrated=Calibration(on=ON)))
    item = whole_image_item(verdict)
    assert verdict.contributions[item.id] == 1.0  # logit(0.9999) is 9.2
    assert builtin_contributions(verdict) == plain.contributions
    moved = logit(verdict.p_signals) - logit(plain.p_signals)
    assert moved == pytest.approx(1.0, abs=2e-3)
    assert "+1.00 log-odds, cut to its cap" in verdict.explanation
    towards_ai = re.search(
        r"Moving the probability towards AI generation: (.*)", verdict.explanation
    )
    assert towards_ai and f"acme_detector (strong) [{item.id}]" in towards_ai.group(1)


def test_a_detector_saying_real_is_capped_the_other_way(module_settings, plain):
    verdict = analyse(module_settings, detector(0.0001, calibrated=Calibration(on=ON, cap=0.5)))
    assert verdict.contributions[whole_image_item(verdict).id] == -0.5
    assert logit(verdict.p_signals) - logit(plain.p_signals) == pytest.approx(-0.5, abs=2e-3)


def test_only_the_whole_image_finding_counts(module_settings):
    verdict = analyse(
        module_settings.model_copy(update={"threshold": 1.0}),  # inspect regions too
        detector(0.9, calibrated=Calibration(on=ON)),
    )
    regional = [e for e in verdict.evidence if e.tool == "acme_detector" and e.region]
    assert regional, "the offline analyst did not re-run the plugin on a region"
    assert not any(e.id in verdict.contributions for e in regional)
    assert whole_image_item(verdict).id in verdict.contributions


def test_a_plugin_without_the_declaration_moves_nothing(module_settings, plain):
    verdict = analyse(module_settings, detector(0.9999, calibrated=None))
    item = whole_image_item(verdict)
    assert item.id not in verdict.contributions
    assert (verdict.p_ai, verdict.p_signals, verdict.label) == (
        plain.p_ai,
        plain.p_signals,
        plain.label,
    )
    assert verdict.contributions == plain.contributions
    assert "Calibrated detector" not in verdict.explanation


def test_the_console_and_the_mcp_text_cite_it(module_settings):
    verdict = analyse(module_settings, detector(0.9999, calibrated=Calibration(on=ON)))
    item = whole_image_item(verdict)
    line = next(x for x in evidence_lines(verdict) if x.lstrip().startswith(item.id))
    assert "towards AI (strong)" in line and "log-odds +1.00" in line
    assert f"[{item.id}] acme_detector, towards AI (strong)" in verdict_brief(verdict)


def test_the_stability_check_counts_it_on_each_copy(module_settings):
    verdict = analyse(module_settings, detector(0.9999, calibrated=Calibration(on=ON)))
    plain_copies = analyse(module_settings).stability
    for mine, theirs in zip(verdict.stability.variants, plain_copies.variants, strict=True):
        assert logit(mine.p_ai) - logit(theirs.p_ai) == pytest.approx(1.0, abs=2e-3)


# -- the fusion alone ----------------------------------------------------------------


def items(score, *, region=None):
    return [
        Evidence(id="E1", tool="colour", summary="-", metrics={"saturation_mean": 0.5}),
        Evidence(id="E2", tool="acme_detector", summary="-", score=score, region=region),
    ]


def test_a_fitted_weight_replaces_the_declared_one_and_the_cap_stays():
    declared = {"acme_detector": Calibration(on=ON, weight=1.0, cap=1.0)}
    shipped = FusionWeights.load()
    fitted = dataclasses.replace(shipped, plugins={"acme_detector": 0.5})
    assert contributions(items(0.6), shipped, calibrated=declared)["E2"] == pytest.approx(
        logit(0.6)
    )
    assert contributions(items(0.6), fitted, calibrated=declared)["E2"] == pytest.approx(
        0.5 * logit(0.6)
    )
    assert contributions(items(0.9999), fitted, calibrated=declared)["E2"] == 1.0
    (term,) = detector_terms(items(0.9999), declared, fitted.plugins)
    assert (term.weight, term.cap, term.capped) == (0.5, 1.0, True)


def test_error_findings_and_missing_scores_do_not_count():
    declared = {"acme_detector": Calibration(on=ON)}
    failed = [
        Evidence(id="E1", tool="acme_detector", summary="failed", kind="error"),
        Evidence(id="E2", tool="acme_detector", summary="no score"),
    ]
    assert contributions(failed, FusionWeights.load(), calibrated=declared) == {}
    assert fuse(failed, calibrated=declared) == fuse([])


def test_the_coefficients_file_holds_fitted_weights_under_plugins():
    document = json_document(plugins={"acme_detector": {"weight": 0.75, "cap": 1.0}})
    assert FusionWeights.from_dict(document).plugins == {"acme_detector": 0.75}
    with pytest.raises(ValueError, match="plugins.acme_detector.weight"):
        FusionWeights.from_dict(json_document(plugins={"acme_detector": {"weight": -1}}))


def test_hand_set_weights_count_a_calibrated_tool_by_its_own_rule():
    hand = FusionWeights.load("fusion-hand-v1.json")
    declared = {"acme_detector": Calibration(on=ON)}
    again = items(0.1)[1].model_copy(update={"id": "E3"})  # a second whole-image run
    regional = items(0.1, region=Box(x0=0, y0=0, x1=8, y1=8))[1].model_copy(update={"id": "E4"})
    out = contributions([*items(0.9999), again, regional], hand, calibrated=declared)
    assert out["E2"] == 1.0 and "E3" not in out and "E4" not in out


def json_document(**extra):
    text = resources.files("sleuth.agent").joinpath("weights", DEFAULT_WEIGHTS).read_text()
    return {**json.loads(text), **extra}
