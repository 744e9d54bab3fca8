"""What every route needs: the jobs, the inputs allowed, the templates, and error handling."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio.to_thread
import jinja2
from starlette.responses import JSONResponse, Response

from sleuth.agent.cases import UnknownCaseError
from sleuth.agent.session import Session
from sleuth.servers.mcp.gate import Busy
from sleuth.servers.mcp.inputs import InputPolicy, InputRefused
from sleuth.tools import ImageLoadError, SleuthError
from sleuth.ui.jobs import Jobs

T = TypeVar("T")


@dataclass(frozen=True)
class Workbench:
    """The app's shared state.

    Attributes
    ----------
    jobs : Jobs
        Background analyses and questions; also opens sessions for reads.
    policy : InputPolicy
        Folders whose images may be analysed by path (``--allow-dir``).
    max_upload_bytes : int
        Largest upload.
    templates : jinja2.Environment
        The page templates, autoescaping.
    """

    jobs: Jobs
    policy: InputPolicy
    max_upload_bytes: int
    templates: jinja2.Environment

    def page(self, template: str, status: int = 200, **values: Any) -> Response:
        """Render a page template."""
        body = self.templates.get_template(template).render(**values)
        return Response(body, status_code=status, media_type="text/html; charset=utf-8")

    async def read(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn`` with a session over the case store, in a worker thread."""

        def work() -> T:
            with self.jobs.session() as session:
                return fn(session)

        return await anyio.to_thread.run_sync(work)


def templates() -> jinja2.Environment:
    """Return the page templates' environment (autoescaping every ``.html`` template)."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("sleuth.ui", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def status_of(err: SleuthError) -> int:
    """Return the HTTP status for a sleuth error."""
    if isinstance(err, UnknownCaseError):
        return 404
    if isinstance(err, Busy):
        return 503
    if isinstance(err, ImageLoadError) and err.reason == "too_large":
        return 413
    if isinstance(err, ImageLoadError | InputRefused):
        return 400
    return 400 if isinstance(err, ValueError) else 500


def error(err: SleuthError | str, status: int | None = None) -> JSONResponse:
    """Return ``{"error": "..."}`` with a fitting status."""
    if isinstance(err, str):
        return JSONResponse({"error": err}, status_code=status or 400)
    return JSONResponse({"error": str(err)}, status_code=status or status_of(err))
