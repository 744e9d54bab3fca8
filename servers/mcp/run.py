"""Run the MCP server (``sleuth serve``): transport and logging are chosen here only.

stdio (the default) is what desktop chat assistants launch; streamable HTTP serves
``http://HOST:PORT/mcp``, bound to loopback unless told otherwise, and then only with a token.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from sleuth.servers.mcp.http import check_binding, http_app, read_token, run_http
from sleuth.servers.mcp.inputs import InputPolicy
from sleuth.settings import Settings
from sleuth.tools import SleuthError

Transport = Literal["stdio", "http"]


SWITCH_INTERVAL = 0.0005
"""Seconds a thread may hold the GIL while another waits (CPython's default: 0.005)."""


@dataclass(frozen=True, kw_only=True)
class ServeOptions:
    """How ``sleuth serve`` runs: each field is also its command-line option.

    A field's metadata holds the option's help text (``help``) and bounds (``min``,
    ``max``); the command line is generated from this class, so a new option is added here
    only.
    """

    transport: Transport = field(
        default="stdio", metadata={"help": "stdio (launched by a client) or http."}
    )
    host: str = field(default="127.0.0.1", metadata={"help": "HTTP bind address."})
    port: int = field(default=8765, metadata={"help": "HTTP port.", "min": 1, "max": 65535})
    allow_dir: tuple[Path, ...] = field(
        default=(),
        metadata={"help": "A folder whose images may be read by path (repeat).", "metavar": "DIR"},
    )
    token_file: Path | None = field(
        default=None,
        metadata={
            "help": "Bearer token HTTP clients must send (required off loopback).",
            "metavar": "FILE",
        },
    )
    allow_urls: bool = field(
        default=False, metadata={"help": "Fetch http(s) image URLs (public hosts only)."}
    )
    allow_origin: tuple[str, ...] = field(
        default=(),
        metadata={
            "help": "A browser origin allowed besides loopback (repeat).",
            "metavar": "ORIGIN",
        },
    )
    max_base64_mb: float = field(
        default=20.0, metadata={"help": "Largest base64 image.", "min": 0.01}
    )
    jobs: int = field(default=2, metadata={"help": "Analyses at once.", "min": 1})
    queue: int = field(
        default=32, metadata={"help": "Calls that may wait before 'busy'.", "min": 0}
    )
    log_level: str = field(default="WARNING", metadata={"help": "Logging level."})

    def __post_init__(self) -> None:
        if self.transport not in ("stdio", "http"):
            raise SleuthError(f"--transport must be stdio or http, not {self.transport!r}")


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
    server = create_server(settings=settings, policy=policy, running=o.jobs, waiting=o.queue)
    # Analyses run in threads; the event loop answering everyone else needs the GIL for
    # many short steps per request, each of which waited up to the default 5 ms switch
    # interval behind an analysis thread (a cheap call took 4 s beside two analyses).
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
