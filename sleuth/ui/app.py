"""Build the workbench app and run it (``sleuth ui``)."""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from sleuth.servers.mcp.http import check_binding, is_loopback, read_token, run_http
from sleuth.servers.mcp.inputs import InputPolicy
from sleuth.settings import Settings
from sleuth.tools import ToolRegistry
from sleuth.ui import api, files, pages
from sleuth.ui.guard import BrowserGuard
from sleuth.ui.jobs import Jobs
from sleuth.ui.options import UiOptions
from sleuth.ui.workbench import Workbench, templates


def create_app(
    options: UiOptions | None = None,
    settings: Settings | None = None,
    *,
    token: str | None = None,
    registry: ToolRegistry | None = None,
) -> ASGIApp:
    """Return the workbench as an ASGI app behind its guard.

    Parameters
    ----------
    options : UiOptions, optional
        Binding, allowed folders, upload limit, concurrency.
    settings : Settings, optional
        Case store, backend, limits; defaults to :meth:`Settings.load`.
    token : str, optional
        Required from the browser; mandatory off loopback.
    registry : ToolRegistry, optional
        The forensic tools; defaults to the installed ones the settings allow.

    Raises
    ------
    ServeError
        For a non-loopback host without a token.
    """
    o = options or UiOptions()
    settings = settings or Settings.load()
    check_binding(o.host, token)
    registry = registry or settings.tool_registry()
    jobs = Jobs(settings, registry, running=o.jobs, waiting=o.queue)
    bench = Workbench(
        jobs=jobs,
        policy=InputPolicy(allow_dirs=tuple(o.allow_dir), max_file_bytes=settings.max_image_bytes),
        max_upload_bytes=int(o.max_upload_mb * 1024 * 1024),
        templates=templates(),
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        jobs.close()

    static = StaticFiles(packages=[("sleuth.ui", "static")])
    app = Starlette(
        routes=[
            *pages.routes(bench),
            *files.routes(bench),
            *api.routes(bench),
            Mount("/static", static, name="static"),
        ],
        lifespan=lifespan,
    )
    return BrowserGuard(app, loopback=is_loopback(o.host), token=token, origins=o.allow_origin)


def run_ui(options: UiOptions | None = None, settings: Settings | None = None) -> None:
    """Run the workbench until stopped; print its address (with the token, when set).

    Raises
    ------
    ServeError
        For a public bind without a token, or an unreadable token file.
    """
    o = options or UiOptions()
    logging.basicConfig(
        stream=sys.stderr, level=o.log_level.upper(), format="%(asctime)s %(name)s %(message)s"
    )
    settings = settings or Settings.load()
    token = read_token(o.token_file) if o.token_file else None
    app = create_app(o, settings, token=token)
    shown = f"[{o.host}]" if ":" in o.host else o.host
    address = f"http://{shown}:{o.port}/" + (f"?token={token}" if token else "")
    print(f"sleuth workbench on {address}  (Ctrl-C stops it)", file=sys.stdout, flush=True)
    run_http(app, host=o.host, port=o.port, settings=settings, log_level=o.log_level)
