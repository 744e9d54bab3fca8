"""The offline analyst finds tools named in a question by their declared aliases."""

from types import SimpleNamespace

import pytest
from pydantic import BaseModel, ConfigDict

from sleuth.agent.backends.offline import read_request
from sleuth.api import open_session
from sleuth.tools import Finding, ToolRegistry, ToolResult, forensic_tool
from tests.conftest import encode, loaded, photo


class SharpnessParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


@forensic_tool(
    name="acme_sharpness",
    params=SharpnessParams,
    summary="Reports how sharp the image is.",
    caveat="Says nothing about origin.",
    score_meaning="No score.",
    survey=False,
    aliases=("blur map", "sharpness"),
)
def acme_sharpness(image, params: SharpnessParams, ctx):
    return ToolResult(findings=[Finding(summary=f"Looked at {image.width}x{image.height}.")])


def with_plugin() -> ToolRegistry:
    registry = ToolRegistry.discover()
    registry.register(acme_sharpness)
    return registry


def tools_named(question: str, registry: ToolRegistry) -> tuple[str, ...]:
    image = loaded(photo())
    situation = SimpleNamespace(registry=registry, image=image, view=SimpleNamespace(candidates=[]))
    return read_request(question, situation).tools


@pytest.mark.parametrize(
    ("question", "tools"),
    [
        ("What did the error level analysis show?", ("ela",)),
        ("Any Fourier peaks?", ("spectrum",)),
        ("Is there EXIF?", ("provenance",)),
        ("Give me a close-up", ("zoom",)),
        ("What do the quantisation tables say?", ("jpeg",)),
        ("And the noise?", ("noise",)),
        ("What does the blur map say?", ("acme_sharpness",)),
        ("How does the texture look?", ("texture",)),  # a name without aliases still counts
        ("Can you elaborate on the related regions?", ()),  # "ela" inside other words
        ("Is it sharpnessy?", ()),
    ],
)
def test_names_and_aliases_route_to_their_tools(question, tools):
    assert tools_named(question, with_plugin()) == tools


def test_a_plugin_tool_named_by_its_alias_is_run_on_a_follow_up(settings):
    with open_session(settings, with_plugin()) as session:
        verdict = session.analyze(encode(photo()))
        assert not any(e.tool == "acme_sharpness" for e in verdict.evidence)
        answer = session.ask(verdict.case_id, "What does the blur map say?")
        assert [e.tool for e in answer.evidence] == ["acme_sharpness"]
        assert f"[{answer.evidence[0].id}]" in answer.answer
        ela = session.ask(verdict.case_id, "what did the error level analysis show?")
        assert ela.evidence and all(e.tool == "ela" for e in ela.evidence)
