"""A scripted OpenAI-compatible HTTP server for fault tests (slow, malformed, broken replies).

It speaks the real protocol over a real socket, so the openai client, its timeouts and
retries run exactly as against vLLM; only the replies are scripted.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = Callable[[dict[str, Any]], dict[str, Any] | None]
"""Given the request body, return a chat.completion message dict (None: HTTP 500)."""


def completion(message: dict[str, Any], finish: str = "stop") -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": "scripted",
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def tool_call(name: str, arguments: str, call_id: str = "call_1") -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
        ],
    }


def text(content: str) -> dict[str, Any]:
    return {"role": "assistant", "content": content}


class Connections:
    """How many client connections the server holds open right now."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.open = 0

    def change(self, by: int) -> None:
        with self._lock:
            self.open += by

    def wait_until_closed(self, timeout: float = 5.0) -> int:
        """Wait for every connection to close; return how many are still open."""
        deadline = time.monotonic() + timeout
        while self.open and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.open


@contextmanager
def serve(
    replies: list[Reply], *, delay: float = 0.0, connections: Connections | None = None
) -> Iterator[tuple[str, list[dict]]]:
    """Serve ``replies`` in order (the last one repeats); yield (base_url, requests seen).

    With ``connections``, the server speaks HTTP/1.1 with keep-alive (as vLLM does), so a
    connection stays open until the client closes it, and ``connections.open`` counts them.
    """
    seen: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        if connections is not None:
            protocol_version = "HTTP/1.1"

        def handle(self) -> None:
            if connections is None:
                return super().handle()
            connections.change(+1)
            try:
                super().handle()
            finally:
                connections.change(-1)

        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append(body)
            time.sleep(delay)
            reply = replies[min(len(seen) - 1, len(replies) - 1)](body)
            payload = json.dumps(completion(reply) if reply else {"error": "boom"}).encode()
            self.send_response(200 if reply else 500)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            try:
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", seen
    finally:
        server.shutdown()
        server.server_close()
