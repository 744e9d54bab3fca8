"""The MCP server in-process, through the real mcp Client: schemas, verdicts, follow-ups, errors."""

import base64
import json
import re
import threading

import jsonschema
import pytest
from mcp import Client
from pydantic import BaseModel, ConfigDict

from sleuth.agent.verdict import Answer, Case, Verdict
from sleuth.agent.weighing import NOT_COUNTED, effects
from sleuth.servers.inputs import InputPolicy
from sleuth.servers.mcp import _verdict_text, create_server
from sleuth.tools import ToolRegistry, ToolResult, forensic_tool
from tests.agent.test_weighing import mixed_verdict
from tests.servers.mcp_client import error_text, png_of, run

CASE_ID = re.compile(r"^[0-9a-f]{16}-[0-9a-f]{8}$")


@pytest.fixture
def server_for(settings, allowed):
    def make(**options):
        options.setdefault("policy", InputPolicy(allow_dirs=(allowed,)))
        return create_server(settings=settings, **options)

    return make


def test_every_tool_is_listed_with_its_schemas(server_for):
    async def body():
        async with Client(server_for()) as client:
            return (await client.list_tools()).tools

    tools = {t.name: t for t in run(body)}
    forensic = ToolRegistry.discover().names()
    assert set(tools) == {"analyze_image", "ask_followup", "get_case", *forensic}
    for tool in tools.values():
        assert tool.input_schema["type"] == "object" and tool.output_schema, tool.name
        assert tool.description
    for name in [*forensic, "get_case"]:
        assert tools[name].annotations.read_only_hint is True
    assert tools["analyze_image"].annotations.read_only_hint is False
    # a forensic tool's own params model is its `params` argument
    assert "box" in tools["ela"].input_schema["properties"]
    schema = tools["ela"].input_schema
    ref = schema["properties"]["params"]["anyOf"][0]["$ref"].rsplit("/", 1)[-1]
    ela_params = ToolRegistry.discover().get("ela").params.model_json_schema()
    assert schema["$defs"][ref]["properties"] == ela_params["properties"]


@pytest.mark.slow
def test_analyze_image_gives_a_verdict_an_annotated_image_and_progress(server_for, allowed):
    progress = []

    async def on_progress(done, total, message):
        progress.append((done, message))

    async def body():
        async with Client(server_for()) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            result = await client.call_tool(
                "analyze_image", {"path": "composite.png"}, progress_callback=on_progress
            )
            return tools["analyze_image"].output_schema, result

    schema, result = run(body)
    assert not result.is_error, result.content
    jsonschema.validate(result.structured_content, schema)
    verdict = Verdict.model_validate(result.structured_content)
    assert CASE_ID.match(verdict.case_id) and verdict.label in ("ai_generated", "real", "uncertain")
    [text, image] = result.content
    assert verdict.case_id in text.text
    assert png_of(image, "image/jpeg").size == (640, 480)  # the composite, annotated at full size
    shown = json.loads(text.text)["evidence"]  # largest effect first, in the cards' words
    assert sorted(e["id"] for e in shown) == sorted(e.id for e in verdict.evidence)
    sizes = [abs(verdict.contributions.get(e["id"], 0.0)) for e in shown]
    assert sizes == sorted(sizes, reverse=True)
    assert len(progress) == len(verdict.steps)  # one notification per step, in order
    assert [d for d, _ in progress] == list(range(1, len(progress) + 1))
    assert any("survey" in m for _, m in progress)


def test_the_verdict_text_gives_each_effect_on_p_ai_largest_first():
    verdict = mixed_verdict()
    shown = json.loads(_verdict_text(verdict))["evidence"]
    assert [e["id"] for e in shown] == ["E2", "E4", "E5", "E3", "E1"]
    found = effects(verdict.evidence, verdict.contributions)
    assert [e["effect_on_p_ai"] for e in shown] == [found[e["id"]].words for e in shown]
    spectrum = shown[-1]  # its own reading is "ai, score 1.0"; the fusion gives it no term
    assert spectrum["effect_on_p_ai"] == NOT_COUNTED and spectrum["log_odds"] is None
    assert [e["log_odds"] for e in shown[:4]] == [verdict.contributions[e["id"]] for e in shown[:4]]


@pytest.mark.slow
def test_a_follow_up_from_a_new_client_finds_the_case(server_for, image_b64):
    async def first():
        async with Client(server_for()) as client:
            return await client.call_tool("analyze_image", {"image_base64": image_b64})

    verdict = Verdict.model_validate(run(first).structured_content)

    async def second():  # a new server object and a new client: only the case store is shared
        async with Client(server_for()) as client:
            answer = await client.call_tool(
                "ask_followup",
                {"case_id": verdict.case_id, "question": "what did the noise tool show in box 1?"},
            )
            case = await client.call_tool("get_case", {"case_id": verdict.case_id})
            resource = await client.read_resource(f"case://{verdict.case_id}")
            report = await client.read_resource(f"case://{verdict.case_id}/report")
            return answer, case, resource, report

    answer, case, resource, report = run(second)
    assert not answer.is_error, answer.content
    parsed = Answer.model_validate(answer.structured_content)
    assert parsed.evidence and {e.tool for e in parsed.evidence} == {"noise"}
    assert answer.content[0].text == parsed.answer
    stored = Case.model_validate(case.structured_content)
    assert stored.verdict == verdict and stored.answers == [parsed]
    assert Case.model_validate_json(resource.contents[0].text) == stored
    assert report.contents[0].text.lstrip().lower().startswith("<!doctype html")
    artifact = next(name for e in verdict.evidence for name in e.artifacts)

    async def third():
        async with Client(server_for()) as client:
            return await client.read_resource(f"case://{verdict.case_id}/artifacts/{artifact}")

    blob = run(third).contents[0]
    assert blob.mime_type == "image/png" and base64.b64decode(blob.blob)[:4] == b"\x89PNG"


def test_bad_requests_are_errors_and_the_server_goes_on(server_for, allowed, tmp_path, image_b64):
    (tmp_path / "secret.png").write_bytes(b"not for you")
    (allowed / "escape.png").symlink_to(tmp_path / "secret.png")
    small = server_for(policy=InputPolicy(allow_dirs=(allowed,), max_base64_bytes=1000))
    calls = [
        ("analyze_image", {"path": "../secret.png"}, "outside the allowed folders"),
        ("analyze_image", {"path": str(tmp_path / "secret.png")}, "outside the allowed folders"),
        ("analyze_image", {"path": "escape.png"}, "outside the allowed folders"),
        ("analyze_image", {"image_base64": image_b64}, "1000-byte limit"),
        ("analyze_image", {}, "exactly one of path, image_base64 or url"),
        ("analyze_image", {"url": "http://example.com/a.png"}, "does not fetch URLs"),
        ("analyze_image", {"image_base64": "aGVsbG8="}, "cannot identify|not an image|unsupported"),
        ("analyze_image", {"path": "composite.png", "max_steps": "many"}, "max_steps"),
        ("ask_followup", {"case_id": "0123456789abcdef-01234567", "question": "hi"}, "no case"),
        ("get_case", {"case_id": "../../etc"}, "case_id"),
        ("ela", {"path": "composite.png", "box": [0, 0, 99999, 5]}, "outside the 640x480 image"),
        ("ela", {"path": "composite.png", "box": [5, 5, 1, 1]}, "empty"),
        ("ela", {"path": "composite.png", "params": {"no_such": 1}}, "no_such"),
        ("no_such_tool", {}, "no_such_tool"),
    ]

    async def body():
        errors = []
        async with Client(small) as client:
            for name, arguments, _ in calls:
                errors.append(await client.call_tool(name, arguments))
            alive = await client.call_tool("ela", {"path": "composite.png"})
        return errors, alive

    errors, alive = run(body)
    for (name, arguments, expected), result in zip(calls, errors, strict=True):
        assert re.search(expected, error_text(result), re.IGNORECASE), (name, arguments)
    assert not alive.is_error
    assert "not for you" not in str(errors)


def test_a_forensic_tool_returns_its_result_and_artifacts(server_for):
    async def body():
        async with Client(server_for()) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            result = await client.call_tool(
                "ela", {"path": "composite.png", "box": [0, 0, 320, 240]}
            )
            return tools["ela"].output_schema, result

    schema, result = run(body)
    assert not result.is_error, result.content
    jsonschema.validate(result.structured_content, schema)
    parsed = ToolResult.model_validate(result.structured_content)
    images = [c for c in result.content if c.type == "image"]
    assert len(images) == len(parsed.artifacts) > 0
    assert png_of(images[0]).size == (parsed.artifacts[0].width, parsed.artifacts[0].height)


@pytest.mark.slow
class HoldParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


def holding_tool(started, release):
    """A forensic tool that keeps its worker until ``release`` is set."""

    @forensic_tool(
        name="hold",
        params=HoldParams,
        summary="Waits.",
        caveat="None.",
        score_meaning="None.",
        survey=False,
    )
    def hold(image, params, ctx) -> ToolResult:
        started.set()
        release.wait(30)
        return ToolResult()

    return hold


def test_calls_beyond_the_queue_are_told_the_server_is_busy(server_for, image_b64):
    import anyio

    started, release = threading.Event(), threading.Event()
    registry = ToolRegistry.discover()
    registry.register(holding_tool(started, release))
    results = {}

    async def body():
        async with Client(server_for(registry=registry, running=1, waiting=0)) as client:

            async def hold():
                results["hold"] = await client.call_tool("hold", {"image_base64": image_b64})

            async with anyio.create_task_group() as group:
                group.start_soon(hold)
                assert await anyio.to_thread.run_sync(started.wait, 30)
                try:  # the one worker is held: no room to run or wait
                    results["analysis"] = await client.call_tool(
                        "analyze_image", {"image_base64": image_b64}
                    )
                finally:
                    release.set()
            # once free, the server takes work again
            results["after"] = await client.call_tool("analyze_image", {"image_base64": image_b64})

    run(body)
    assert results["analysis"].is_error and "busy" in error_text(results["analysis"])
    assert not results["hold"].is_error and not results["after"].is_error
