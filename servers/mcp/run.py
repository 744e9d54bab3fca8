"""Run the MCP server (``sleuth serve``): transport and logging are chosen here only.

stdio (the default) is what desktop chat assistants launch; streamable HTTP serves
``http://HOST:PORT/mcp``, bound to loopback unless told otherwise, and then only with a token.
"""

from __future__ import annotations

import logging
import sys

from sleuth.servers.mcp.http import check_binding, http_app, read_token, run_http
from sleuth.servers.mcp.inputs import InputPolicy
from sleuth.servers.mcp.options import ServeOptions
from sleuth.settings import Settings

SWITCH_INTERVAL = 0.0005
"""Seconds a thread may hold the GIL while another waits (CPython's default: 0.005)."""


def serve(options: ServeOptions | None = None, settings: Settings | None = None) -> None:
    """Run the MCP server until it is stopped.

    Parameters
    ----------
    options : ServeOptions, optional
        Transport, binding, inputs, concurrency, logging; the defaults serve stdio.
    settings : Settings, optional
        Defaults to :meth:`Settings.load`.

    Raises
    ------
    ServeError
        For a public bind without a token, or an unreadable token file.
    """
    from sleuth.servers.mcp.server import create_server

    o = options or ServeOptions()
    logging.basicConfig(
        stream=sys.stderr, level=o.log_level.upper(), format="%(asctime)s %(name)s %(message)s"
    )
    settings = settings or Settings.load()
    token = read_token(o.token_file) if o.token_file else None
    if o.transport == "http":
        check_binding(o.host, token)
    max_base64 = int(o.max_base64_mb * 1024 * 1024)
    policy = InputPolicy(
        allow_dirs=tuple(o.allow_dir),
        max_file_bytes=settings.max_image_bytes,
        max_base64_bytes=max_base64,
        allow_urls=o.allow_urls,
    )
    server = create_server(
        settings=settings,
        policy=policy,
        running=o.jobs,
        waiting=o.queue,
        expose_tools=o.expose_tools,
        processes=o.workers == "processes",
    )
    # Forensic tool runs (and, with --workers threads, analyses) run in threads; the event
    # loop answering everyone else needs the GIL for many short steps per request, each of
    # which waited up to the default 5 ms switch interval behind an analysis thread (a
    # cheap call took 4 s beside two analyses).
    sys.setswitchinterval(SWITCH_INTERVAL)
    if o.transport == "stdio":
        server.run("stdio")
        return
    app = http_app(
        server,
        host=o.host,
        token=token,
        origins=o.allow_origin,
        max_body_bytes=max_base64 * 4 // 3 + 1024 * 1024,
    )
    print(f"sleuth MCP server on http://{o.host}:{o.port}/mcp", file=sys.stderr, flush=True)
    run_http(app, host=o.host, port=o.port, settings=settings, log_level=o.log_level)
