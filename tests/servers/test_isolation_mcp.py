"""The MCP server with a broken plugin installed: it starts, lists its tools and analyses.

The plugins of :mod:`tests.tools.failing_plugins` are installed as a distribution with
entry points and found by the server's own discovery; the server runs in-process behind
the real mcp ``Client``.
"""

import logging
import sys

import pytest
from mcp import Client

from sleuth.servers.mcp.server import create_server
from sleuth.servers.mcp.untrusted import MarkedVerdict
from sleuth.settings import Settings
from sleuth.tools import ToolRegistry
from tests.servers.mcp_client import run
from tests.tools import failing_plugins as plugins
from tests.tools.test_isolation import BUDGET, warnings_about

BUILTINS = ToolRegistry.discover().names()


def analyze(settings: Settings, image_b64: str) -> tuple[set[str], MarkedVerdict]:
    """Return the forensic tools run_tool offers, and the verdict of analyze_image."""

    async def body():
        async with Client(create_server(settings=settings)) as client:
            listed = {t.name: t for t in (await client.list_tools()).tools}
            tools = set(listed["run_tool"].input_schema["properties"]["tool"]["enum"])
            result = await client.call_tool("analyze_image", {"image_base64": image_b64})
            assert not result.is_error, result.content
            return tools, MarkedVerdict.model_validate(result.structured_content)

    return run(body)


@pytest.fixture(scope="module")
def plain(tmp_path_factory, image_b64) -> MarkedVerdict:
    """The verdict without any plugin installed."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("plain"), tool_seconds=BUDGET)
    return analyze(settings, image_b64)[1]


@pytest.fixture
def install(tmp_path, monkeypatch):
    def put(scenario: str) -> str:
        monkeypatch.syspath_prepend(str(plugins.install(tmp_path / "site", scenario)))
        return plugins.PLUGIN_OF[scenario]

    plugins.RELEASE.clear()
    yield put
    plugins.RELEASE.set()
    sys.modules.pop(plugins.MODULE, None)


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["raise", "dict", "slow", "invalid", "missing"])
def test_analyze_image_works_with_a_broken_plugin(
    install, scenario, tmp_path, image_b64, plain, caplog
):
    caplog.set_level(logging.WARNING)
    name = install(scenario)
    settings = Settings(data_dir=tmp_path / "data", tool_seconds=BUDGET)
    tools, verdict = analyze(settings, image_b64)
    assert set(BUILTINS) <= tools
    assert len(warnings_about(caplog, name)) == 1  # named once, at discovery or in the survey
    errors = [e for e in verdict.evidence if e.kind == "error"]
    if scenario in ("invalid", "missing"):  # skipped at discovery: never run
        assert name not in tools and not errors and not verdict.failed_tools
        assert verdict.evidence == plain.evidence
    else:
        assert name in tools
        assert [e.tool for e in errors] == [name] and verdict.failed_tools == [name]
        assert f"1 tool(s) failed: {name} (" in verdict.explanation
        assert errors[0].score is None and errors[0].direction == "neutral"
    survey = [e for e in plain.evidence if e.region is None]
    assert verdict.evidence[: len(survey)] == survey  # the built-ins' ids do not move
    assert (verdict.label, verdict.p_ai) == (plain.label, plain.p_ai)
    assert verdict.contributions == plain.contributions


def test_a_plugin_named_like_a_sleuth_mcp_tool_is_left_out(tmp_path, caplog):
    spec = plugins.declare("get_case")(plugins.acme_quiet.run)
    registry = ToolRegistry.discover()
    registry.register(spec)

    async def body():
        async with Client(create_server(registry, Settings(data_dir=tmp_path))) as client:
            return (await client.list_tools()).tools

    tools = run(body)
    assert [t.name for t in tools].count("get_case") == 1
    assert len(warnings_about(caplog, "get_case")) == 1
