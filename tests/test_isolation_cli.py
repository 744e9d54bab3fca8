"""The command line with a broken plugin installed (entry points on PYTHONPATH, a subprocess).

A plugin that fails at discovery is skipped with one warning line; one that fails when it
runs gives one error finding and one warning line; everything else keeps working.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.agent.conftest import composite_png
from tests.tools import failing_plugins as plugins
from tests.tools.test_isolation import BUDGET

SLEUTH = Path(sys.executable).with_name("sleuth")


def sleuth(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([SLEUTH, *args], capture_output=True, text=True, env=env, timeout=180)


def environment(tmp: Path, site: Path | None = None) -> dict[str, str]:
    (tmp / "none.toml").write_text("")
    env = dict(
        os.environ,
        SLEUTH_DATA_DIR=str(tmp / "data"),
        SLEUTH_CONFIG=str(tmp / "none.toml"),
        SLEUTH_TOOL_SECONDS=str(BUDGET),
    )
    if site is not None:
        env["PYTHONPATH"] = str(site)
    return env


def lines_naming(text: str, name: str) -> list[str]:
    return [line for line in text.splitlines() if repr(name) in line]


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("img") / "composite.png"
    path.write_bytes(composite_png())
    return path


@pytest.fixture(scope="module")
def plain(tmp_path_factory, image) -> dict:
    """The verdict without any plugin installed."""
    done = sleuth(environment(tmp_path_factory.mktemp("plain")), "analyze", str(image), "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def env_with(tmp_path):
    def make(scenario: str) -> tuple[str, dict[str, str]]:
        site = plugins.install(tmp_path / "site", scenario)
        return plugins.PLUGIN_OF[scenario], environment(tmp_path, site)

    return make


@pytest.mark.parametrize("scenario", ["invalid", "missing", "clash"])
def test_tools_list_shows_a_skipped_plugin_and_why(env_with, scenario):
    name, env = env_with(scenario)
    listed = sleuth(env, "tools", "list")
    assert listed.returncode == 0, listed.stderr
    assert "provenance" in listed.stdout
    (warning,) = lines_naming(listed.stderr, name)
    assert warning.startswith(f"skipped tool plugin {name!r}") and "to silence" in warning
    (shown,) = lines_naming(listed.stdout, name)
    assert shown.startswith(f"skipped tool plugin {name!r}")


@pytest.mark.parametrize("scenario", ["raise", "dict", "slow"])
def test_tools_list_shows_a_plugin_that_fails_only_when_run(env_with, scenario):
    name, env = env_with(scenario)
    listed = sleuth(env, "tools", "list", "--json")
    assert listed.returncode == 0 and not listed.stderr, listed.stderr
    assert name in {row["name"] for row in json.loads(listed.stdout)}


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["raise", "dict", "slow", "invalid"])
def test_analyze_works_with_a_broken_plugin(env_with, scenario, image, plain):
    name, env = env_with(scenario)
    done = sleuth(env, "analyze", str(image), "--json")
    assert done.returncode == 0, done.stderr
    assert len(lines_naming(done.stderr, name)) == 1, done.stderr  # one warning line
    verdict = json.loads(done.stdout)
    errors = [e for e in verdict["evidence"] if e["kind"] == "error"]
    if scenario == "invalid":
        assert not errors and verdict["evidence"] == plain["evidence"]
    else:
        assert [e["tool"] for e in errors] == [name] and verdict["failed_tools"] == [name]
        assert f"1 tool(s) failed: {name} (" in verdict["explanation"]
    survey = [e for e in plain["evidence"] if e["region"] is None]
    assert verdict["evidence"][: len(survey)] == survey  # the built-ins' ids do not move
    assert (verdict["label"], verdict["p_ai"]) == (plain["label"], plain["p_ai"])


def test_tools_survey_and_run_report_a_failed_tool(env_with, image):
    name, env = env_with("raise")
    survey = sleuth(env, "tools", "survey", str(image), "--json")
    assert survey.returncode == 0, survey.stderr
    results = json.loads(survey.stdout)["results"]
    (finding,) = results[name]["findings"]
    assert finding["kind"] == "error" and "RuntimeError: boom" in finding["summary"]
    assert {"ela", "noise", "provenance"} <= set(results)
    assert len(lines_naming(survey.stderr, name)) == 1
    ran = sleuth(env, "tools", "run", name, str(image), "--json")
    assert ran.returncode == 1  # the finding is printed; the exit code says the tool failed
    (finding,) = json.loads(ran.stdout)["findings"]
    assert finding["kind"] == "error" and "RuntimeError: boom" in finding["summary"]
    assert "Traceback" not in ran.stdout + ran.stderr
    assert len(lines_naming(ran.stderr, name)) == 1
    table = sleuth(env, "tools", "run", name, str(image))
    assert table.returncode == 1 and "RuntimeError" in table.stdout
