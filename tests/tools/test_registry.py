"""Registration refuses invalid tools with messages that say how to fix them."""

import dataclasses

import pytest
from pydantic import BaseModel, ConfigDict, Field

from sleuth.tools import (
    PluginValidationError,
    ToolInputError,
    ToolRegistry,
    ToolResult,
    UnknownToolError,
    forensic_tool,
)
from sleuth.tools.base import ToolSpec
from tests.conftest import loaded, photo


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    level: int = Field(3, ge=1, le=9)


def make(**changes) -> ToolSpec:
    @forensic_tool(name="demo_tool", params=Params, summary="S.", caveat="C.", score_meaning="M.")
    def demo_tool(image, params: Params, ctx):
        return ToolResult()

    return dataclasses.replace(demo_tool, **changes)


def test_a_valid_tool_registers_and_runs():
    registry = ToolRegistry([make()])
    assert registry.names() == ["demo_tool"]
    assert registry.run("demo_tool", loaded(photo())).findings == []


@pytest.mark.parametrize(
    ("changes", "hint"),
    [
        ({"name": "Demo-Tool"}, "pattern"),
        ({"name": "x" * 65}, "1-64 characters"),
        ({"name": "9lives"}, "starting with a letter"),
        ({"summary": "  "}, "summary must be a non-empty sentence"),
        ({"summary": "x" * 1100}, "keep it under 1024"),
        ({"cost": "free"}, "cost must be"),
        ({"aliases": ("Blur",)}, "aliases must be a tuple of non-empty lower-case"),
        ({"aliases": (" ",)}, "aliases must be"),
        ({"aliases": "blur"}, "aliases must be"),
        ({"params": dict}, "pydantic BaseModel subclass"),
        ({"run": lambda image, params: ToolResult()}, "takes 2 positional arguments"),
        ({"run": "not callable"}, "run is not callable"),
    ],
)
def test_invalid_specs_are_refused_with_a_fix(changes, hint):
    with pytest.raises(PluginValidationError, match=hint):
        ToolRegistry([make(**changes)])


def test_params_must_forbid_extra_fields_and_have_defaults():
    class Loose(BaseModel):
        level: int = 3

    class Required(BaseModel):
        model_config = ConfigDict(extra="forbid")
        level: int

    with pytest.raises(PluginValidationError, match="extra='forbid'"):
        ToolRegistry([make(params=Loose)])
    with pytest.raises(PluginValidationError, match="needs a default"):
        ToolRegistry([make(params=Required)])


def test_run_annotation_must_match_the_declared_params():
    class Other(BaseModel):
        model_config = ConfigDict(extra="forbid")

    def run(image, params: Other, ctx):
        return ToolResult()

    with pytest.raises(PluginValidationError, match="annotates its params as"):
        ToolRegistry([make(run=run)])


def test_names_are_unique():
    with pytest.raises(PluginValidationError, match="already registered"):
        ToolRegistry([make(), make()])


def test_unknown_tool_lists_the_available_ones():
    registry = ToolRegistry([make()])
    with pytest.raises(UnknownToolError, match="available: demo_tool"):
        registry.get("nope")


def test_parameter_errors_name_the_field_and_the_bound():
    registry = ToolRegistry([make()])
    with pytest.raises(ToolInputError, match="level: Input should be less than or equal to 9"):
        registry.run("demo_tool", loaded(photo()), {"level": 42})
    with pytest.raises(ToolInputError, match="must be an object"):
        registry.run("demo_tool", loaded(photo()), [1, 2])  # type: ignore[arg-type]


def test_a_tool_returning_boxes_in_the_wrong_frame_is_caught():
    from sleuth.tools import Box, Finding

    def run(image, params: Params, ctx):  # forgets image.to_original
        return ToolResult(findings=[Finding(summary="x", boxes=[Box(x0=0, y0=0, x1=5, y1=5)])])

    registry = ToolRegistry([make(run=run)])
    with pytest.raises(RuntimeError, match="outside the analysed region"):
        registry.run("demo_tool", loaded(photo()), region=Box(x0=100, y0=100, x1=200, y1=200))


def test_enabled_and_blocked_filter_discovery():
    assert ToolRegistry.discover(enabled=["ela", "zoom"]).names() == ["ela", "zoom"]
    assert "ela" not in ToolRegistry.discover(blocked=["ela"]).names()
    with pytest.raises(UnknownToolError, match="not installed: nope"):
        ToolRegistry.discover(enabled=["nope"])
