"""A tool that fails becomes one error finding and the analysis goes on; broken plugins are skipped.

Real registry, real built-ins; the failing plugins of :mod:`tests.tools.failing_plugins` are
registered in-process, or installed as a distribution with entry points and discovered.
"""

import dataclasses
import logging
import sys
import threading

import pytest

from sleuth.agent.fusion import FusionWeights, contributions, fuse
from sleuth.agent.session import Session
from sleuth.agent.verdict import Evidence
from sleuth.tools import (
    PluginValidationError,
    ToolInputError,
    ToolRegistry,
    ToolTimeoutError,
    UnknownToolError,
    forensic_tool,
)
from sleuth.tools.isolation import MAX_CAUSE, failure, run_isolated
from sleuth.tools.survey import run_survey, survey_tools
from tests.agent.conftest import composite_png
from tests.conftest import loaded, photo
from tests.tools import failing_plugins as plugins
from tests.tools.test_registry import Params

BUDGET = 1.5
"""Seconds per tool call in these tests: ten times the slowest built-in on their images."""


@pytest.fixture(autouse=True)
def release_slow_tools():
    plugins.RELEASE.clear()
    yield
    plugins.RELEASE.set()  # lets a timed-out acme_slow thread return


@pytest.fixture(scope="module")
def image():
    return loaded(photo(0, (320, 240)))


def with_plugin(spec=None, *, seconds: float = BUDGET) -> ToolRegistry:
    registry = ToolRegistry.discover(tool_seconds=seconds)
    if spec is not None:
        registry.register(spec)
    return registry


def warnings_about(caplog, name: str) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records if r.levelno == logging.WARNING and repr(name) in r.getMessage()
    ]


FAILING = [
    (plugins.acme_raise, "RuntimeError: boom on two lines x"),
    (plugins.acme_dict, "TypeError: tool 'acme_dict' returned dict, not ToolResult"),
    (plugins.acme_slow, f"ToolTimeoutError: timed out after {BUDGET:g} s (setting tool_seconds)"),
]


@pytest.mark.parametrize(("spec", "cause"), FAILING, ids=lambda v: getattr(v, "name", ""))
def test_a_failing_call_is_one_error_finding_and_one_warning(spec, cause, image, caplog):
    caplog.set_level(logging.DEBUG, logger="sleuth.tools.isolation")
    result = run_isolated(with_plugin(spec), spec.name, image)
    (finding,) = result.findings
    assert (finding.kind, finding.tool, finding.direction) == ("error", spec.name, "neutral")
    assert finding.score is None and not finding.boxes and not result.artifacts
    assert cause in finding.summary and "\n" not in finding.summary
    assert "Traceback" not in finding.model_dump_json()
    assert failure(result) is not None and len(failure(result)) <= MAX_CAUSE
    (warning,) = warnings_about(caplog, spec.name)
    assert "tools_blocked=['" + spec.name + "']" in warning.getMessage()
    tracebacks = [r for r in caplog.records if r.levelno == logging.DEBUG and r.exc_info]
    assert len(tracebacks) == (0 if spec is plugins.acme_slow else 1)


def test_the_library_call_still_raises(image):
    registry = with_plugin(plugins.acme_raise, seconds=0)
    with pytest.raises(RuntimeError, match="boom"):
        registry.run("acme_raise", image)
    slow = with_plugin(plugins.acme_slow, seconds=0.2)
    with pytest.raises(ToolTimeoutError, match="tool_seconds"):
        slow.run("acme_slow", image)


def test_input_errors_and_unknown_tools_still_go_back_to_the_caller(image):
    registry = with_plugin()
    with pytest.raises(ToolInputError, match="quality"):
        run_isolated(registry, "ela", image, {"quality": 7})
    with pytest.raises(UnknownToolError):
        run_isolated(registry, "nope", image)


def test_without_a_budget_a_tool_runs_in_the_calling_thread(image):
    seen = []

    @forensic_tool(name="acme_where", params=Params, summary="S.", caveat="C.", score_meaning="M.")
    def where(image, params: Params, ctx):
        seen.append(threading.current_thread())
        from sleuth.tools import ToolResult

        return ToolResult()

    with_plugin(where, seconds=0).run("acme_where", image)
    with_plugin(where, seconds=5).run("acme_where", image)
    assert seen[0] is threading.current_thread() and seen[1] is not threading.current_thread()
    with pytest.raises(ValueError, match="tool_seconds"):
        ToolRegistry(tool_seconds=-1)


def test_plugins_join_the_survey_only_when_they_ask_and_after_the_builtins():
    assert plugins.acme_quiet.survey is False  # the default for a third-party tool
    builtin = ToolRegistry.discover()
    assert all(spec.survey for spec in builtin if spec.name != "zoom")
    assert all(builtin.is_builtin(spec.name) for spec in builtin)
    names = survey_tools(builtin)
    registry = with_plugin(plugins.acme_quiet)
    registry.register(plugins.acme_extra)
    assert survey_tools(registry) == [*names, "acme_extra"]
    assert [s.name for s in registry][-2:] == ["acme_extra", "acme_quiet"]  # built-ins first


@pytest.mark.parametrize("spec", [s for s, _ in FAILING], ids=lambda s: s.name)
def test_the_survey_goes_on_without_a_failed_tool(spec, image, caplog):
    plain = run_survey(with_plugin(), image)
    survey = run_survey(with_plugin(spec), image)
    assert list(survey.results) == [*plain.results, spec.name]
    assert list(survey.failed) == [spec.name]
    for name, result in plain.results.items():
        assert survey.results[name].model_dump_json() == result.model_dump_json(), name
    assert len(warnings_about(caplog, spec.name)) == 1


def evidence_of(survey) -> list[Evidence]:
    return [
        Evidence(id=f"E{i}", **f.model_dump(exclude={"artifacts"}))
        for i, f in enumerate((f for r in survey.results.values() for f in r.findings), 1)
    ]


def test_the_fusion_ignores_error_findings(image):
    plain = evidence_of(run_survey(with_plugin(), image))
    failed = evidence_of(run_survey(with_plugin(plugins.acme_raise), image))
    assert failed[-1].kind == "error" and failed[:-1] == plain
    weights = FusionWeights.load()
    assert fuse(failed) == fuse(plain)
    assert contributions(failed, weights) == contributions(plain, weights)
    # a built-in that fails is not read as "nothing declared" (or any other value)
    broken = [e for e in plain if e.tool != "provenance"]
    as_error = [*broken, failed[-1].model_copy(update={"tool": "provenance", "id": "E99"})]
    assert fuse(as_error) == fuse(broken)


@pytest.fixture
def settings(tmp_path, monkeypatch):
    from sleuth.settings import Settings

    monkeypatch.setenv("SLEUTH_CONFIG", str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text("")
    return Settings.load(data_dir=tmp_path / "data")


def analyse(settings, registry):
    with Session(settings.session_config(), registry) as session:
        return session.analyze(composite_png())


@pytest.fixture
def plain_verdict(settings):
    return analyse(settings, with_plugin())


@pytest.mark.parametrize("spec", [s for s, _ in FAILING], ids=lambda s: s.name)
def test_an_analysis_goes_on_without_a_failed_tool(spec, settings, plain_verdict, caplog):
    verdict = analyse(settings, with_plugin(spec))
    errors = [e for e in verdict.evidence if e.kind == "error"]
    assert [(e.tool, e.region) for e in errors] == [(spec.name, None)]  # once, in the survey
    assert verdict.failed_tools == [spec.name]
    assert len(warnings_about(caplog, spec.name)) == 1  # not re-run on copies or regions
    cause = errors[0].metrics["error"]
    assert f"1 tool(s) failed: {spec.name} ({cause})" in verdict.explanation
    assert (verdict.label, verdict.p_ai, verdict.p_signals) == (
        plain_verdict.label,
        plain_verdict.p_ai,
        plain_verdict.p_signals,
    )
    assert verdict.stability == plain_verdict.stability.model_copy(
        update={"seconds": verdict.stability.seconds}
    )
    assert verdict.contributions == plain_verdict.contributions
    survey = [e for e in plain_verdict.evidence if e.region is None]
    assert verdict.evidence[: len(survey)] == survey  # the built-ins' ids do not move
    assert any(e.region for e in verdict.evidence)  # regions were inspected, without it
    steps = [s for s in verdict.steps if s.error]
    assert [(s.kind, s.tool) for s in steps] == [("survey", spec.name)]
    assert spec.name not in {s.tool for s in verdict.steps if s.kind == "tool"}


def test_a_plugin_outside_the_survey_changes_no_evidence_id(settings, plain_verdict):
    verdict = analyse(settings, with_plugin(plugins.acme_quiet))
    assert verdict.evidence == plain_verdict.evidence and not verdict.failed_tools
    assert "failed" not in verdict.explanation


def test_a_plugin_in_the_survey_comes_after_the_builtins(settings, plain_verdict):
    verdict = analyse(settings, with_plugin(plugins.acme_extra))
    survey = [e for e in plain_verdict.evidence if e.region is None]
    assert verdict.evidence[: len(survey)] == survey
    assert verdict.evidence[len(survey)].tool == "acme_extra"
    assert verdict.p_ai == plain_verdict.p_ai  # the fusion reads only the features it knows


def test_a_tool_failing_on_a_call_of_the_agent_is_an_error_item(settings, caplog):
    outside = dataclasses.replace(plugins.acme_raise, survey=False)
    with Session(settings.session_config(), with_plugin(outside)) as session:
        verdict = session.analyze(composite_png())
        answer = session.ask(verdict.case_id, "what does acme_raise show in box 1?")
    assert not verdict.failed_tools  # it was not called before the question
    (item,) = answer.evidence  # the offline analyst called it on the box the question names
    assert (item.kind, item.tool, item.region) == ("error", "acme_raise", verdict.regions[0])
    assert f"[{item.id}]" in answer.answer
    assert len(warnings_about(caplog, "acme_raise")) == 1


# -- discovery -------------------------------------------------------------------------


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """Install a scenario's distribution on sys.path; discovery then finds it."""

    def put(scenario: str) -> str:
        monkeypatch.syspath_prepend(str(plugins.install(tmp_path / scenario, scenario)))
        return plugins.PLUGIN_OF[scenario]

    yield put
    sys.modules.pop(plugins.MODULE, None)


@pytest.mark.parametrize(
    ("scenario", "cause"),
    [
        ("invalid", "must reject unknown fields"),
        ("missing", "failed to import: ModuleNotFoundError"),
        ("clash", "the name 'ela' is taken"),
    ],
)
def test_a_broken_plugin_is_skipped_with_one_warning(installed, scenario, cause, caplog):
    name = installed(scenario)
    registry = ToolRegistry.discover()
    (warning,) = warnings_about(caplog, name)
    message = warning.getMessage()
    assert message.startswith(f"skipped tool plugin {name!r} from acme-failing-{scenario}")
    assert cause in message and "to silence this warning" in message and "\n" not in message
    assert set(registry.skipped) == {name} and cause in registry.skipped[name]
    assert all(registry.is_builtin(n) for n in registry.names()) and "ela" in registry
    if scenario == "clash":  # blocking the name would block the built-in too
        assert "uninstall acme-failing-clash" in message
        assert ToolRegistry.discover(enabled=["ela"]).is_builtin("ela")
    else:
        assert f"tools_blocked=['{name}'] to silence" in message
        assert name not in registry
        with pytest.raises(PluginValidationError, match=cause):  # asked for by name: fatal
            ToolRegistry.discover(enabled=["ela", name])
        assert not ToolRegistry.discover(blocked=[name]).skipped


def test_an_installed_failing_plugin_is_found_and_isolated(installed, image):
    name = installed("raise")
    registry = ToolRegistry.discover()
    assert name in registry and not registry.is_builtin(name) and not registry.skipped
    assert failure(run_isolated(registry, name, image)).startswith("RuntimeError: boom")
