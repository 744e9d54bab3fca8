"""The registry's tools as strict function schemas for a model, boxes in its frame."""

from __future__ import annotations

import copy
from typing import Any

from sleuth.agent.frames import BoxFrame
from sleuth.tools import ToolRegistry

DROPPED = ("title", "default", "examples")


def box_schema(frame: BoxFrame) -> dict[str, Any]:
    """Return the schema of a box argument in ``frame`` (nullable: null = whole image)."""
    return {
        "anyOf": [
            {
                "type": "array",
                "items": {"type": "integer", "minimum": 0, "maximum": max(frame.extent)},
                "minItems": 4,
                "maxItems": 4,
            },
            {"type": "null"},
        ],
        "description": f"Region [x0, y0, x1, y1] in {frame.describe()}; null for the whole image.",
    }


def strict_parameters(schema: dict[str, Any]) -> dict[str, Any]:
    """Make a pydantic parameter schema strict: every field required, defaults nullable.

    OpenAI-style strict schemas require every property and forbid extra ones; a
    parameter with a default becomes ``anyOf: [type, null]``, null meaning "default".
    ``$ref``s to ``$defs`` are inlined.
    """
    defs = schema.get("$defs", {})

    def clean(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return clean(copy.deepcopy(defs[node["$ref"].rsplit("/", 1)[-1]]))
            return {k: clean(v) for k, v in node.items() if k not in DROPPED and k != "$defs"}
        if isinstance(node, list):
            return [clean(v) for v in node]
        return node

    properties = {}
    required = set(schema.get("required", []))
    for name, prop in schema.get("properties", {}).items():
        cleaned = clean(prop)
        if name not in required:
            description = cleaned.pop("description", None)
            cleaned = {"anyOf": [cleaned, {"type": "null"}]}
            if description:
                cleaned["description"] = description
        properties[name] = cleaned
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def tool_schemas(registry: ToolRegistry, frame: BoxFrame) -> list[dict[str, Any]]:
    """Return every registered tool as an OpenAI function tool (strict mode).

    Regional tools take a ``box`` argument in the model's frame; the agent converts it
    to original pixels (:meth:`BoxFrame.to_original`) before the tool runs.
    """
    tools = []
    for spec in registry:
        parameters = strict_parameters(spec.params.model_json_schema())
        if spec.regional:
            parameters["properties"] = {"box": box_schema(frame), **parameters["properties"]}
            parameters["required"] = ["box", *parameters["required"]]
        tools.append(
            {
                "type": "function",
                "function": {
                    "name": spec.name,
                    "description": spec.description,
                    "parameters": parameters,
                    "strict": True,
                },
            }
        )
    return tools
