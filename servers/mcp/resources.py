"""The case resources: ``case://{case_id}`` (JSON), its HTML report and its artifacts (PNG).

The HTML report is drawn by the front door's presentation package
(:mod:`sleuth.present.report`): the one documented place where the servers import from
above them, because serving the report is the server's job and drawing it is not.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError

from sleuth.agent.session import Session
from sleuth.servers.mcp.untrusted import mark
from sleuth.tools import SleuthError

if TYPE_CHECKING:
    from sleuth.servers.mcp.server import Surface

T = TypeVar("T")

CASE_ID = re.compile(r"[0-9a-f]{16}-[0-9a-f]{8}")
"""A case id (matched whole, with ``fullmatch``)."""
ARTIFACT_FILE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,127}\.png")
"""An artifact file name (matched whole, with ``fullmatch``)."""
REPORT_PHOTO_SIDE = 768
"""Longest side of the photo in the report resource."""
REPORT_KB = 400
"""What the report resource stays under, as its description states (a test holds it)."""


def add_case_resources(server: MCPServer, surface: Surface) -> None:
    """Register the three case resources."""

    @server.resource(
        "case://{case_id}", name="case", mime_type="application/json", title="A stored case"
    )
    async def case_resource(case_id: str) -> str:
        _check_case_id(case_id)
        case = await _read(surface, lambda s: s.case(case_id))
        return json.dumps(mark(case), indent=1)

    @server.resource(
        "case://{case_id}/report",
        name="report",
        mime_type="text/html",
        title="HTML report",
        description=f"The case as one HTML page, at most about {REPORT_KB} KB: the photo with "
        "its regions, every finding and answer; heatmaps and crops are linked as "
        "case://{case_id}/artifacts/{name}, not embedded.",
    )
    async def report_resource(case_id: str) -> str:
        from sleuth.present.report import render_report

        _check_case_id(case_id)

        def build(session: Session) -> str:
            return render_report(
                session.case(case_id),
                session.image(case_id),
                lambda name: session.files.artifact_path(case_id, name),
                link=lambda name: f"case://{case_id}/artifacts/{name}",
                photo_max_side=REPORT_PHOTO_SIDE,
            )

        return await _read(surface, build)

    @server.resource(
        "case://{case_id}/artifacts/{name}",
        name="artifact",
        mime_type="image/png",
        title="A heatmap, spectrum or crop of a case",
        description="PNG, at most 1024 pixels a side (larger artifacts are shrunk).",
    )
    async def artifact_resource(case_id: str, name: str) -> bytes:
        _check_case_id(case_id)
        if not ARTIFACT_FILE.fullmatch(name):
            raise ResourceError(f"{name[:80]!r} is not an artifact name (e.g. ela-0.png)")

        def artifact(session: Session) -> bytes:
            session.case(case_id)  # an unknown case is an error, not an empty folder
            path = session.files.artifact_path(case_id, name)
            if not path.is_file():
                raise SleuthError(f"case {case_id} has no artifact {name!r}")
            from sleuth.present.report import small_png

            return small_png(path)

        return await _read(surface, artifact)


def _check_case_id(case_id: str) -> None:
    if not CASE_ID.fullmatch(case_id):
        raise ResourceError(f"{case_id[:80]!r} is not a case id (16 hex digits, '-', 8 more)")


async def _read(surface: Surface, fn: Callable[[Session], T]) -> T:
    def run() -> T:
        with surface.session() as session:
            return fn(session)

    try:
        return await surface.read(run)
    except ToolError as err:
        raise ResourceError(str(err)) from None
