"""The HTTP server's guards that need no server: tokens, quiet logs, the connection cap."""

import asyncio
import io
import logging
import resource
import time

import pytest

from sleuth.servers.mcp.connections import (
    ACCEPT_ERROR,
    FD_RESERVE,
    QuietLogs,
    connection_limits,
    quiet_accept_errors,
)
from sleuth.servers.mcp.http import ServeError, read_token


@pytest.mark.parametrize(
    "token, reason",
    [
        ("a" * 20, "at least 24 characters"),
        ("a" * 40, "too easy to guess .1 distinct characters, about 0 bits"),
        ("ab" * 20, "too easy to guess"),
        ("passwordpasswordpassword", "too easy to guess"),
        ("two words-0123456789abcdef", "one word"),
    ],
)
def test_weak_tokens_are_refused(tmp_path, token, reason):
    path = tmp_path / "token"
    path.write_text(token + "\n")
    path.chmod(0o600)
    with pytest.raises(ServeError, match=reason) as caught:
        read_token(path)
    assert "openssl rand -hex 32" in str(caught.value)


def test_random_tokens_are_accepted(tmp_path):
    path = tmp_path / "token"
    for token in ("5f0c9a2e7b14d3866a1f0e9c2b7d4a13", "s3cret-token-for-tests-0123456789"):
        path.write_text(token + "\n")
        path.chmod(0o600)
        assert read_token(path) == token


def test_a_flood_of_accept_errors_logs_a_few_short_lines(monkeypatch):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("sleuth.servers.mcp.http")
    monkeypatch.setattr(logger, "filters", [QuietLogs(burst=3, interval=10.0)])
    logger.addHandler(handler)
    handle = quiet_accept_errors()
    loop = asyncio.new_event_loop()
    try:
        error = OSError(24, "Too many open files")
        for _ in range(20_000):  # what asyncio reports in a few seconds at the fd limit
            handle(loop, {"message": ACCEPT_ERROR, "exception": error})
    finally:
        loop.close()
        logger.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3 and len(stream.getvalue()) < 1000
    assert lines[0] == (
        "cannot accept HTTP connections: Too many open files; lower http_max_connections "
        "or raise the open-file limit"
    )


def test_held_back_lines_are_counted_in_the_next_one(monkeypatch):
    quiet = QuietLogs(burst=1, interval=0.05)
    records = [logging.LogRecord("x", logging.WARNING, "", 0, "bad %s", ("request",), None)]
    records += [logging.LogRecord("x", logging.WARNING, "", 0, "bad %s", ("x",), None)] * 5
    assert [quiet.filter(r) for r in records] == [True] + [False] * 5
    time.sleep(0.06)
    last = logging.LogRecord("x", logging.WARNING, "", 0, "bad %s", ("request",), None)
    assert quiet.filter(last) and last.getMessage() == "bad request (5 more like it not logged)"


def test_the_connection_cap_and_accept_batch_fit_the_open_file_limit(monkeypatch):
    monkeypatch.setattr(resource, "getrlimit", lambda what: (64, 64))
    cap, batch = connection_limits(100)
    assert (cap, batch) == (20, 5) and cap + 4 * batch + FD_RESERVE <= 64
    monkeypatch.setattr(resource, "getrlimit", lambda what: (1024, 4096))
    assert connection_limits(100) == (100, 125)
