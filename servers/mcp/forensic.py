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
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any, Literal

import numpy as np
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, ImageContent, TextContent, ToolAnnotations
from PIL import Image
from pydantic import Field, ValidationError

from sleuth import prompts
from sleuth.servers.mcp.inputs import InputPolicy, read_source
from sleuth.servers.mcp.untrusted import NOTE, MarkedToolResult, mark
from sleuth.servers.mcp.views import image_content, jpeg_view
from sleuth.tools import Box, ImageLimits, LoadedImage, ToolRegistry, load_image
from sleuth.tools.base import ToolResult, ToolSpec, png_bytes
from sleuth.tools.box import validation_message

logger = logging.getLogger(__name__)

RESERVED = frozenset({"analyze_image", "ask_followup", "get_case", "run_tool"})
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
            continue  # add_run_tool warned about it
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


RUN_TOOL_IMAGES = 2
"""Most artifacts (heatmaps, crops) ``run_tool`` returns as images."""
RUN_TOOL_IMAGE_BYTES = 150_000
"""Budget of each (JPEG)."""


def add_run_tool(
    server: MCPServer,
    registry: ToolRegistry,
    policy: InputPolicy,
    limits: ImageLimits,
    work: Work,
) -> None:
    """Add ``run_tool``: any registered forensic tool, named by a ``tool`` argument.

    The lean default surface: one entry instead of one per tool, the tools listed in its
    description one line each, and the tool's own parameters as an open ``params`` object
    (they keep their defaults unless given; unknown ones are refused by the tool's model).
    """
    specs = []
    for spec in registry:
        if spec.name in RESERVED:
            logger.warning(
                "skipped tool plugin %r over MCP: the name is one of sleuth's own MCP tools; "
                "rename it, or set tools_blocked=['%s'] to silence this warning",
                spec.name,
                spec.name,
            )
        else:
            specs.append(spec)
    if not specs:
        return
    names = tuple(spec.name for spec in specs)

    async def run_tool(**arguments: Any) -> CallToolResult:
        name = arguments["tool"]

        def run() -> tuple[ToolResult, list[bytes]]:
            image = _image_of(arguments, policy, limits)
            spec = registry.get(name)
            region = _region(arguments.get("box")) if spec.regional else None
            if arguments.get("box") is not None and not spec.regional:
                raise ToolError(f"{name} looks at the whole image; leave out box")
            result = registry.run(name, image, arguments.get("params"), region=region)
            shown = result.artifacts[:RUN_TOOL_IMAGES]
            return result, [jpeg_view(a.pixels(), RUN_TOOL_IMAGE_BYTES) for a in shown]

        result, pictures = await work(run)
        content: list[Any] = [TextContent(type="text", text=_findings_text(result))]
        content += [image_content(data) for data in pictures]
        return CallToolResult(content=content, structured_content=mark(result))

    tool_arg = Annotated[
        Literal[names],  # type: ignore[valid-type]
        Field(description="Which forensic tool to run."),
    ]
    params_arg = Annotated[
        dict[str, Any] | None,
        Field(description="The tool's own parameters by name; leave out for its defaults."),
    ]
    parameters = [
        inspect.Parameter("tool", inspect.Parameter.KEYWORD_ONLY, annotation=tool_arg),
        *(
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=kind)
            for name, kind in SOURCE_PARAMETERS.items()
        ),
        inspect.Parameter("box", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=BoxArg),
        inspect.Parameter(
            "params", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=params_arg
        ),
    ]
    run_tool.__signature__ = inspect.Signature(parameters, return_annotation=CallToolResult)  # type: ignore[attr-defined]
    run_tool.__annotations__ = {p.name: p.annotation for p in parameters} | {
        "return": CallToolResult
    }
    description = prompts.render(
        "mcp_run_tool", tools=[{"name": s.name, "line": _first_sentence(s.summary)} for s in specs]
    )
    server.add_tool(
        run_tool,
        name="run_tool",
        title="Run one forensic tool",
        description=f"{description}\n\n{NOTE}",
        annotations=ToolAnnotations(
            read_only_hint=True, idempotent_hint=True, open_world_hint=policy.allow_urls
        ),
        structured_output=False,
    )


def _first_sentence(text: str) -> str:
    """Return the first sentence of a tool's summary, on one line."""
    flat = " ".join(text.split())
    end = flat.find(". ")
    return flat if end < 0 else flat[: end + 1]


def _findings_text(result: ToolResult) -> str:
    """Return a tool's findings as lines of plain text."""
    lines = [
        f"- {f.summary}"
        + (
            f" (the tool's own score {f.score:.2f}, its own reading: {f.direction})"
            if f.score is not None
            else ""
        )
        for f in result.findings
    ]
    return "\n".join(lines) or "no findings"


def _tool_function(
    spec: ToolSpec, registry: ToolRegistry, policy: InputPolicy, limits: ImageLimits, work: Work
) -> Callable[..., Awaitable[CallToolResult]]:
    async def call(**arguments: Any) -> CallToolResult:
        def run() -> tuple[ToolResult, list[bytes]]:
            image = _image_of(arguments, policy, limits)
            region = _region(arguments.get("box"))
            params = arguments.get("params")
            result = registry.run(spec.name, image, params, region=region)
            shown = result.artifacts[:MAX_ARTIFACT_IMAGES]
            return result, [_artifact_png(a.pixels()) for a in shown]

        result, pictures = await work(run)
        content: list[Any] = [TextContent(type="text", text=_findings_text(result))]
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


def _image_of(
    arguments: Mapping[str, Any], policy: InputPolicy, limits: ImageLimits
) -> LoadedImage:
    """Read and load the image a call gives as ``path``, ``image_base64`` or ``url``."""
    source = {k: arguments.get(k) for k in SOURCE_PARAMETERS}
    return load_image(read_source(policy, **source), limits=limits)


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
