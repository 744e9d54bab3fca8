"""An MCP server whose errors are one sentence an assistant can act on.

The SDK's argument models ignore unknown fields, so a misspelt ``thresold`` would silently
run with the default; an argument that fails validation comes back as pydantic's
multi-line report; every tool error starts "Error executing tool NAME:"; and a prompt
called without a required argument answers "Internal server error". :class:`StrictServer`
advertises ``additionalProperties: false`` on every tool, refuses unknown arguments by
name, says what a bad argument should be (from its schema's description), drops the
prefix, and answers a bad prompt call with what was wrong.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, CallToolResult, InputRequiredResult
from mcp_types import Tool as MCPTool
from pydantic import ValidationError


class StrictServer(MCPServer):
    """:class:`~mcp.server.mcpserver.MCPServer` with closed argument lists."""

    async def list_tools(self) -> list[MCPTool]:
        """List the tools, each input schema closed to unknown arguments.

        Descriptions come without the indentation of the docstrings they are read from.
        """
        closed = {"additionalProperties": False}
        return [
            tool.model_copy(
                update={
                    "input_schema": {**tool.input_schema, **closed},
                    "description": inspect.cleandoc(tool.description or ""),
                }
            )
            for tool in await super().list_tools()
        ]

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Any = None
    ) -> CallToolResult | InputRequiredResult:
        """Call a tool after refusing unknown arguments; invalid ones are reported in one line.

        Raises
        ------
        ToolError
            For an unknown tool or argument, an invalid argument, or the tool's own error.
        """
        known = {tool.name: tool for tool in await super().list_tools()}
        if name in known:
            allowed = set(known[name].input_schema.get("properties", {}))
            unknown = sorted(set(arguments) - allowed)
            if unknown:
                listed = ", ".join(repr(a[:64]) for a in unknown[:5])
                raise ToolError(
                    f"unknown argument{'s' if len(unknown) > 1 else ''} {listed} for {name}; "
                    f"it takes {', '.join(sorted(allowed)) or 'none'}"
                )
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as err:
            cause = err.__cause__
            if isinstance(err, UnexpectedToolError):
                raise
            if isinstance(cause, ValidationError):
                schema = known[name].input_schema if name in known else {}
                raise ToolError(
                    f"invalid arguments for {name}: {_explain(cause, schema)}"
                ) from cause
            text = str(err).removeprefix(f"Error executing tool {name}: ")
            raise ToolError(text) from cause

    async def get_prompt(
        self, name: str, arguments: dict[str, Any] | None = None, context: Any = None
    ) -> Any:
        """Render a prompt; a missing or unknown argument is an invalid-params error saying so."""
        try:
            return await super().get_prompt(name, arguments, context)
        except MCPError:
            raise
        except ValueError as err:
            raise MCPError(code=INVALID_PARAMS, message=_prompt_problem(name, err)) from None


def _explain(err: ValidationError, schema: dict[str, Any]) -> str:
    """Say per bad argument what is wrong and what it should be (its schema description)."""
    properties = schema.get("properties", {})
    parts = []
    for item in err.errors():
        where = ".".join(str(p) for p in item["loc"])
        field = properties.get(str(item["loc"][0]), {}) if item["loc"] else {}
        wanted = field.get("description")
        if item["type"] == "string_pattern_mismatch":
            problem = "is not in the expected form"
        else:
            problem = item["msg"].removeprefix("Value error, ").lower()
        wanted = wanted and wanted[0].lower() + wanted[1:].rstrip(".")
        parts.append(f"{where} {problem}" + (f" (expected: {wanted})" if wanted else ""))
    return "; ".join(parts)


def _prompt_problem(name: str, err: ValueError) -> str:
    """Return a prompt error as one sentence (the SDK's text names the missing arguments)."""
    text = str(err)
    if text.startswith("Missing required arguments"):
        missing = ", ".join(sorted(re.findall(r"'([^']+)'", text)))
        return f"the prompt {name} needs the argument(s) {missing}"
    if text.startswith("Unknown prompt"):
        return f"there is no prompt {name}; the prompt is investigate_image"
    return f"the prompt {name} could not be rendered: {text}"
