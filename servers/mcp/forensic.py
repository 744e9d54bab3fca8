"""One MCP tool per registered forensic tool, generated from the registry (plugins included).

Each takes the image (``path``, ``image_base64`` or ``url``), an optional ``box`` in original
pixels (for tools that can look at a region) and the tool's own ``params`` object, whose
schema is the tool's params model. It returns the :class:`~sleuth.tools.ToolResult` as
structured content (string metrics, read from the file, marked ``{"untrusted": ...}``) and
the tool's artifacts (heatmaps, spectra, crops) as PNG images.
"""

from __future__ import annotations

import base64
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import numpy as np
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, ImageContent, TextContent, ToolAnnotations
from PIL import Image
from pydantic import Field, ValidationError

from sleuth.servers.mcp.inputs import InputPolicy, read_source
from sleuth.servers.mcp.untrusted import NOTE, MarkedToolResult, mark
from sleuth.tools import Box, ImageLimits, ToolRegistry, load_image
from sleuth.tools.base import ToolResult, ToolSpec, png_bytes
from sleuth.tools.box import validation_message

logger = logging.getLogger(__name__)

RESERVED = frozenset({"analyze_image", "ask_followup", "get_case"})
ARTIFACT_SIDE = 1024
MAX_ARTIFACT_IMAGES = 6

Work = Callable[..., Awaitable[Any]]

PathArg = Annotated[
    str | None, Field(description="An image file under one of the server's allowed folders.")
]
Base64Arg = Annotated[
    str | None, Field(description="The image bytes in base64 (a data: URL is accepted too).")
]
UrlArg = Annotated[
    str | None,
    Field(description="An http(s) URL of the image (only when the server allows URLs)."),
]
SOURCE_PARAMETERS = {"path": PathArg, "image_base64": Base64Arg, "url": UrlArg}
BoxArg = Annotated[
    list[int] | None,
    Field(
        min_length=4,
        max_length=4,
        description="[x0, y0, x1, y1] in original pixels: run the tool on that region only.",
    ),
]


def add_forensic_tools(
    server: MCPServer,
    registry: ToolRegistry,
    policy: InputPolicy,
    limits: ImageLimits,
    work: Work,
) -> None:
    """Add one MCP tool per registered forensic tool.

    A tool named like one of the agent's own MCP tools is left out with one warning line.
    """
    for spec in registry:
        if spec.name in RESERVED:
            logger.warning(
                "skipped tool plugin %r over MCP: the name is one of sleuth's own MCP tools; "
                "rename it, or set tools_blocked=['%s'] to silence this warning",
                spec.name,
                spec.name,
            )
            continue
        server.add_tool(
            _tool_function(spec, registry, policy, limits, work),
            name=spec.name,
            title=spec.name.replace("_", " ").capitalize(),
            description=f"{spec.description}\n\n{NOTE}",
            annotations=ToolAnnotations(
                read_only_hint=True, idempotent_hint=True, open_world_hint=policy.allow_urls
            ),
            structured_output=True,
        )


def _tool_function(
    spec: ToolSpec, registry: ToolRegistry, policy: InputPolicy, limits: ImageLimits, work: Work
) -> Callable[..., Awaitable[CallToolResult]]:
    async def call(**arguments: Any) -> CallToolResult:
        def run() -> tuple[ToolResult, list[bytes]]:
            source = {k: arguments.get(k) for k in SOURCE_PARAMETERS}
            image = load_image(read_source(policy, **source), limits=limits)
            region = _region(arguments.get("box"))
            params = arguments.get("params")
            result = registry.run(spec.name, image, params, region=region)
            shown = result.artifacts[:MAX_ARTIFACT_IMAGES]
            return result, [_artifact_png(a.pixels()) for a in shown]

        result, pictures = await work(run)
        summary = "\n".join(
            f"- {f.summary}"
            + (
                f" (the tool's own score {f.score:.2f}, its own reading: {f.direction})"
                if f.score is not None
                else ""
            )
            for f in result.findings
        )
        content: list[Any] = [TextContent(type="text", text=summary or "no findings")]
        content += [png_content(data) for data in pictures]
        return CallToolResult(content=content, structured_content=mark(result))

    parameters = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=kind)
        for name, kind in SOURCE_PARAMETERS.items()
    ]
    if spec.regional:
        parameters.append(
            inspect.Parameter(
                "box", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=BoxArg
            )
        )
    params_type = spec.params | None
    parameters.append(
        inspect.Parameter(
            "params", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=params_type
        )
    )
    returns = Annotated[CallToolResult, MarkedToolResult]
    call.__signature__ = inspect.Signature(parameters, return_annotation=returns)  # type: ignore[attr-defined]
    call.__annotations__ = {p.name: p.annotation for p in parameters} | {"return": returns}
    call.__name__ = spec.name
    call.__doc__ = spec.description
    return call


def _region(box: list[int] | None) -> Box | None:
    if box is None:
        return None
    try:
        return Box(x0=box[0], y0=box[1], x1=box[2], y1=box[3])
    except ValidationError as err:
        raise ToolError(f"invalid box {box}: {validation_message(err)}") from None


def _artifact_png(pixels: np.ndarray) -> bytes:
    picture = Image.fromarray(pixels)
    picture.thumbnail((ARTIFACT_SIDE, ARTIFACT_SIDE))
    return png_bytes(picture)


def png_content(data: bytes) -> ImageContent:
    """Return PNG bytes as MCP image content."""
    return ImageContent(
        type="image", data=base64.b64encode(data).decode("ascii"), mime_type="image/png"
    )
