"""A real workbench on a free loopback port, served by uvicorn in a thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from sleuth.settings import Settings
from sleuth.ui.app import create_app
from sleuth.ui.options import UiOptions


@dataclass
class Running:
    """A workbench being served: its address and where its cases live."""

    url: str
    data_dir: Path
    allowed: Path

    def wait(self, job: dict, client: httpx.Client, seconds: float = 120) -> dict:
        """Poll a job until it ends; return its last state."""
        deadline = time.monotonic() + seconds
        while job["status"] in ("queued", "running"):
            assert time.monotonic() < deadline, f"job still {job['status']}: {job['steps']}"
            time.sleep(0.2)
            job = client.get(f"{self.url}/api/jobs/{job['id']}").json()
        return job


def free_port() -> int:
    """Return a TCP port free on loopback right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(app, port: int) -> tuple[uvicorn.Server, threading.Thread]:
    """Start ``app`` on ``port`` in a thread; return once it accepts connections."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the workbench did not start"
        time.sleep(0.05)
    return server, thread


@pytest.fixture(scope="module")
def workbench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """A workbench over an empty case store, with one allowed folder."""
    root = tmp_path_factory.mktemp("workbench")
    allowed = root / "allowed"
    allowed.mkdir()
    port = free_port()
    options = UiOptions(port=port, allow_dir=(allowed,), max_upload_mb=2.0)
    server, thread = serve(create_app(options, Settings(data_dir=root / "data")), port)
    yield Running(f"http://127.0.0.1:{port}", root / "data", allowed)
    server.should_exit = True
    thread.join(timeout=10)
