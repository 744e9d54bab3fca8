"""``sleuth serve`` / ``python -m sleuth.servers``: transport and logging are chosen here only.

stdio (the default) is what desktop chat assistants launch; streamable HTTP serves
``http://HOST:PORT/mcp``, bound to loopback unless told otherwise, and then only with a token.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from sleuth.servers.http import check_binding, http_app, read_token, run_http
from sleuth.servers.inputs import InputPolicy
from sleuth.settings import Settings

Transport = Literal["stdio", "http"]


SWITCH_INTERVAL = 0.0005
"""Seconds a thread may hold the GIL while another waits (CPython's default: 0.005)."""


def serve(
    *,
    transport: Transport = "stdio",
    host: str = "127.0.0.1",
    port: int = 8765,
    allow_dirs: Sequence[Path] = (),
    token_file: Path | None = None,
    allow_urls: bool = False,
    allow_origins: Sequence[str] = (),
    max_base64_mb: float = 20.0,
    running: int = 2,
    waiting: int = 32,
    log_level: str = "WARNING",
    settings: Settings | None = None,
) -> None:
    """Run the MCP server until it is stopped.

    Parameters
    ----------
    transport : {'stdio', 'http'}
        stdio for a client that launches the server; http for streamable HTTP at ``/mcp``.
    host, port : str, int
        Where HTTP listens; a host other than loopback needs ``token_file``.
    allow_dirs : sequence of Path
        Folders whose images may be read by path (symlinks resolved, nothing outside).
    token_file : Path, optional
        A file holding the bearer token HTTP clients must send.
    allow_urls : bool
        Fetch http(s) URLs (public addresses only, size and time capped).
    allow_origins : sequence of str
        Browser origins allowed besides loopback pages.
    max_base64_mb : float
        Largest base64 image accepted.
    running, waiting : int
        Analyses at once, and calls that may wait before the server answers "busy".
    log_level : str
        Logging level (logs go to stderr).
    settings : Settings, optional
        Defaults to :meth:`Settings.load`.

    Raises
    ------
    ServeError
        For a public bind without a token, or an unreadable token file.
    """
    from sleuth.servers.mcp import create_server

    logging.basicConfig(
        stream=sys.stderr, level=log_level.upper(), format="%(asctime)s %(name)s %(message)s"
    )
    settings = settings or Settings.load()
    token = read_token(token_file) if token_file else None
    if transport == "http":
        check_binding(host, token)
    max_base64 = int(max_base64_mb * 1024 * 1024)
    policy = InputPolicy(
        allow_dirs=tuple(allow_dirs),
        max_file_bytes=settings.max_image_bytes,
        max_base64_bytes=max_base64,
        allow_urls=allow_urls,
    )
    server = create_server(settings=settings, policy=policy, running=running, waiting=waiting)
    # Analyses run in threads; the event loop answering everyone else needs the GIL for
    # many short steps per request, each of which waited up to the default 5 ms switch
    # interval behind an analysis thread (a cheap call took 4 s beside two analyses).
    sys.setswitchinterval(SWITCH_INTERVAL)
    if transport == "stdio":
        server.run("stdio")
        return
    app = http_app(
        server,
        host=host,
        token=token,
        origins=allow_origins,
        max_body_bytes=max_base64 * 4 // 3 + 1024 * 1024,
    )
    print(f"sleuth MCP server on http://{host}:{port}/mcp", file=sys.stderr, flush=True)
    run_http(app, host=host, port=port, settings=settings, log_level=log_level)


def main() -> None:
    """``python -m sleuth.servers``: the same command as ``sleuth serve``."""
    from sleuth.cli import main as cli_main

    sys.argv = [sys.argv[0], "serve", *sys.argv[1:]]
    cli_main()


if __name__ == "__main__":
    main()
