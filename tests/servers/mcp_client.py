"""Helpers for talking to the server through the real mcp Client."""

from __future__ import annotations

import base64
import io
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
from PIL import Image


def run(fn, *args: Any) -> Any:
    """Run an async test body."""
    return anyio.run(fn, *args)


def png_of(content, mime_type="image/png") -> Image.Image:
    """Decode an ImageContent to a PIL image."""
    assert content.type == "image" and content.mime_type == mime_type
    return Image.open(io.BytesIO(base64.b64decode(content.data)))


def error_text(result) -> str:
    """The text of an error result (asserting it is one)."""
    assert result.is_error, f"expected an error, got {result.content}"
    return " ".join(c.text for c in result.content if c.type == "text")


def free_port() -> int:
    """A TCP port nobody listens on (yet)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def http_server(
    env: dict[str, str],
    tmp_path: Path,
    *args: str,
    open_files: int | None = None,
    log: Path | None = None,
) -> Iterator[str]:
    """Run ``sleuth serve --transport http`` in its own process; yield its /mcp URL.

    ``open_files`` sets the process's open-file limit (soft and hard); its stderr goes to
    ``log`` (by default a file in ``tmp_path``).
    """
    port = free_port()
    log = log or tmp_path / f"serve-{port}.log"

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

    with open(log, "wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "sleuth", "serve", "--transport", "http", "--port", str(port)]
            + list(args),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            preexec_fn=limit if open_files else None,
        )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.2)
        assert process.poll() is None, log.read_text()
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(30)
