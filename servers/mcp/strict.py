"""An MCP server that refuses arguments it does not know and explains bad ones in one line.

The SDK's argument models ignore unknown fields, so a misspelt ``thresold`` would silently
run with the default; and an argument that fails validation comes back as pydantic's
multi-line report. :class:`StrictServer` advertises ``additionalProperties: false`` on every
tool, refuses unknown arguments by name, and condenses validation errors to
``field: problem; field: problem``.
"""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp_types import CallToolResult, InputRequiredResult
from mcp_types import Tool as MCPTool
from pydantic import ValidationError

from sleuth.tools.box import validation_message


class StrictServer(MCPServer):
    """:class:`~mcp.server.mcpserver.MCPServer` with closed argument lists."""

    async def list_tools(self) -> list[MCPTool]:
        """List the tools, each input schema closed to unknown arguments."""
        closed = {"additionalProperties": False}
        return [
            tool.model_copy(update={"input_schema": {**tool.input_schema, **closed}})
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
            if isinstance(err, UnexpectedToolError) or not isinstance(cause, ValidationError):
                raise
            raise ToolError(f"invalid arguments for {name}: {validation_message(cause)}") from cause
