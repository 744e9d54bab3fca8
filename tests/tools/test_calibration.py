"""A calibrated score is declared in the SDK and checked when the tool registers."""

import json
import math

import pytest
from typer.testing import CliRunner

from sleuth.tools import (
    Calibration,
    Finding,
    PluginValidationError,
    ToolRegistry,
    ToolResult,
    forensic_tool,
)
from sleuth.tools.base import CALIBRATED_CAP, CALIBRATED_WEIGHT, MAX_CALIBRATED_CAP
from sleuth.tools.testing import ToolContract
from tests.tools.test_registry import Params, make

ON = "the held-out split of a synthetic set"


def test_the_defaults_are_a_weight_of_one_and_a_cap_of_one_log_odds():
    declared = Calibration(on=ON)
    assert (declared.weight, declared.cap) == (CALIBRATED_WEIGHT, CALIBRATED_CAP) == (1.0, 1.0)
    assert MAX_CALIBRATED_CAP == 2.0


def test_a_calibrated_tool_registers_and_is_listed_as_such():
    registry = ToolRegistry([make(calibrated=Calibration(on=ON, weight=0.5, cap=2.0))])
    assert registry.calibrations() == {"demo_tool": Calibration(on=ON, weight=0.5, cap=2.0)}
    assert ToolRegistry([make()]).calibrations() == {}


def test_no_builtin_declares_a_calibrated_score():
    assert ToolRegistry.discover().calibrations() == {}


@pytest.mark.parametrize(
    ("calibrated", "hint"),
    [
        ({"on": ON}, "must be a sleuth.tools.Calibration"),
        (Calibration(on=" "), "on must say what the score was calibrated on"),
        (Calibration(on="x" * 301), "keep it under 300"),
        (Calibration(on=ON, weight=-0.1), "weight must be a number >= 0"),
        (Calibration(on=ON, weight=math.nan), "weight must be a number >= 0"),
        (Calibration(on=ON, weight=True), "weight must be a number >= 0"),
        (Calibration(on=ON, cap=0.0), r"cap must be a number in \(0, 2.0\]"),
        (Calibration(on=ON, cap=3.0), r"cap must be a number in \(0, 2.0\]"),
        (Calibration(on=ON, cap=math.inf), "cap must be"),
    ],
)
def test_an_invalid_declaration_is_refused_with_a_fix(calibrated, hint):
    with pytest.raises(PluginValidationError, match=hint) as caught:
        ToolRegistry([make(calibrated=calibrated)])
    assert "calibrated=Calibration(on=" in str(caught.value)


@forensic_tool(
    name="demo_detector",
    params=Params,
    summary="S.",
    caveat="C.",
    score_meaning="Probability of AI generation.",
    calibrated=Calibration(on=ON),
)
def demo_detector(image, params: Params, ctx):
    return ToolResult(findings=[Finding(summary="A reading.", score=0.7)])


class TestACalibratedToolPassesTheContract(ToolContract):
    tool = demo_detector


def test_the_contract_asks_a_calibrated_tool_for_a_score(contract_images):
    silent = make(calibrated=Calibration(on=ON))  # returns no finding at all
    contract = ToolContract()
    with pytest.raises(AssertionError, match="declares a calibrated score but gave none"):
        contract.test_a_calibrated_score_is_given_on_the_whole_image(
            ToolRegistry([silent]), silent, contract_images
        )


def test_tools_list_says_whose_score_counts(monkeypatch, tmp_path):
    from sleuth.cli import app
    from sleuth.cli import tools as tools_cli

    calibrated = make(calibrated=Calibration(on=ON, cap=0.5))
    monkeypatch.setattr(tools_cli, "registry_for", lambda settings: ToolRegistry([calibrated]))
    monkeypatch.setenv("SLEUTH_CONFIG", str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text("")
    listed = CliRunner().invoke(app, ["tools", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    (row,) = json.loads(listed.output)
    assert row["calibrated"] == {"on": ON, "weight": 1.0, "cap": 0.5}
    table = CliRunner().invoke(app, ["tools", "list"], env={"COLUMNS": "240"})
    assert "at most ±0.5 log-odds" in table.output
