"""Slow clients cannot lock token holders out of `sleuth serve --transport http`.

The server runs in its own process with 64 open files, as in the report that found 60
half-open connections enough to lock everyone out and 191 MB of log in 35 s.
"""

import socket
import time
from urllib.parse import urlsplit

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.servers.mcp_client import error_text, http_server, run

pytestmark = pytest.mark.slow

TOKEN = "5f0c9a2e7b14d3866a1f0e9c2b7d4a13"
HALF_OPEN = 60
HEADER_TIMEOUT = 3.0
BODY_TIMEOUT = 3.0


def half_open(port: int, head: bytes) -> socket.socket:
    """A connection that sends part of a request and then nothing."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(head)
    return sock


def closed_by_server(sock: socket.socket) -> bool:
    """Whether the server has closed ``sock`` (reading what it sent first, e.g. a 408)."""
    sock.setblocking(False)
    try:
        while sock.recv(4096):
            pass
    except BlockingIOError:
        return False
    except ConnectionResetError:
        pass
    return True


def test_token_holders_are_served_while_sixty_connections_hang(env, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    env = env | {
        "SLEUTH_HTTP_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
        "SLEUTH_HTTP_BODY_TIMEOUT": str(BODY_TIMEOUT),
    }
    log = tmp_path / "serve.log"
    args = ("--token-file", str(token_file), "--log-level", "INFO")
    with http_server(env, tmp_path, *args, open_files=64, log=log) as url:
        port = urlsplit(url).port
        head = f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Slow: ".encode()
        opened = time.monotonic()
        hanging = [half_open(port, head) for _ in range(HALF_OPEN)]
        stalled_body = half_open(
            port,
            f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {TOKEN}\r\n"
            "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{".encode(),
        )

        async def with_token():
            http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"})
            start = time.monotonic()
            async with http, Client(streamable_http_client(url, http_client=http)) as client:
                tools = (await client.list_tools()).tools
                missing = await client.call_tool("get_case", {"case_id": "0" * 16 + "-" + "0" * 8})
            return time.monotonic() - start, tools, missing

        took, tools, missing = run(with_token)
        assert took < 2.0, took
        assert any(t.name == "analyze_image" for t in tools) and "no case" in error_text(missing)

        # every half-open connection is dropped within the header timeout (plus slack)
        while time.monotonic() - opened < HEADER_TIMEOUT + 3:
            if all(closed_by_server(s) for s in [*hanging, stalled_body]):
                break
            time.sleep(0.2)
        dropped_after = time.monotonic() - opened
        still_open = [s for s in hanging if not closed_by_server(s)]
        assert not still_open and closed_by_server(stalled_body), dropped_after
        for sock in [*hanging, stalled_body]:
            sock.close()
        assert run(with_token)[0] < 2.0  # and it still serves
    text = log.read_text()
    assert log.stat().st_size < 1024 * 1024
    assert "at most 20 HTTP connections" in text  # 64 open files: the cap fits them
    assert "cannot accept" not in text  # never short of a descriptor
    assert "replaced at the connection cap" in text and "dropped for slow headers" in text
