"""What the server agrees to read: allowed roots, capped base64, public http(s) URLs only."""

import base64
import errno
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer
from pathlib import Path

import pytest

from sleuth.servers.mcp import inputs
from sleuth.servers.mcp.inputs import (
    InputPolicy,
    InputRefused,
    check_public_url,
    decode_base64,
    fetch_url,
    read_path,
    read_source,
)


def test_paths_resolve_inside_the_roots_only(tmp_path):
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.png").write_bytes(b"inside")
    (tmp_path / "secret.png").write_bytes(b"outside")
    (root / "link.png").symlink_to(tmp_path / "secret.png")
    policy = InputPolicy(allow_dirs=(root,))
    assert read_path(str(root / "sub" / "a.png"), policy) == b"inside"
    assert read_path("sub/a.png", policy) == b"inside"  # relative to a root
    escapes = ("../secret.png", str(tmp_path / "secret.png"), "link.png", "sub/../../secret.png")
    for escape in escapes:
        with pytest.raises(InputRefused, match="outside the allowed folders"):
            read_path(escape, policy)
    with pytest.raises(InputRefused, match="no file"):
        read_path("sub/missing.png", policy)
    with pytest.raises(InputRefused, match="reads no files"):
        read_path(str(root / "sub" / "a.png"), InputPolicy())


def test_files_over_the_byte_limit_are_refused(tmp_path):
    (tmp_path / "big.png").write_bytes(b"x" * 2048)
    with pytest.raises(InputRefused, match="the limit is 1024"):
        read_path("big.png", InputPolicy(allow_dirs=(tmp_path,), max_file_bytes=1024))


def test_base64_is_capped_and_checked():
    policy = InputPolicy(max_base64_bytes=1000)
    data = bytes(range(256)) * 3
    encoded = base64.b64encode(data).decode()
    assert decode_base64(encoded, policy) == data
    assert decode_base64("data:image/png;base64," + encoded, policy) == data
    with pytest.raises(InputRefused, match="1000-byte limit"):
        decode_base64(base64.b64encode(b"x" * 5000).decode(), policy)
    with pytest.raises(InputRefused, match="not valid base64"):
        decode_base64("not base64 at all!", policy)


@pytest.mark.parametrize(
    "url, reason",
    [
        ("file:///etc/passwd", "only http"),
        ("ftp://example.com/a.png", "only http"),
        ("http://user:secret@example.com/a.png", "credentials"),
        ("http://127.0.0.1:8000/a.png", "non-public"),
        ("http://localhost/a.png", "non-public"),
        ("http://[::1]/a.png", "non-public"),
        ("http://10.1.2.3/a.png", "non-public"),
        ("http://192.168.0.1/a.png", "non-public"),
        ("http://169.254.169.254/latest/meta-data", "non-public"),
        ("http://0.0.0.0/a.png", "non-public"),
    ],
)
def test_urls_to_private_targets_are_refused(url, reason):
    with pytest.raises(InputRefused, match=reason):
        check_public_url(url)


def test_urls_are_refused_unless_enabled_and_loopback_even_then():
    with pytest.raises(InputRefused, match="does not fetch URLs"):
        fetch_url("http://example.com/a.png", InputPolicy())
    with pytest.raises(InputRefused, match="non-public"):
        fetch_url("http://127.0.0.1:9/a.png", InputPolicy(allow_urls=True))


def test_exactly_one_source():
    with pytest.raises(InputRefused, match="exactly one"):
        read_source(InputPolicy())
    with pytest.raises(InputRefused, match=r"exactly one .* \(got path, image_base64\)"):
        read_source(InputPolicy(), path="a.png", image_base64="AAAA")


def test_a_name_that_resolves_again_to_a_private_address_is_refused(monkeypatch):
    """DNS rebinding: public when checked, loopback when the download connects."""
    served = HTTPServer(("127.0.0.1", 0), ImageHandler)
    threading.Thread(target=served.serve_forever, daemon=True).start()
    real = socket.getaddrinfo
    answers = []

    def rebinding(host, port, *args, **kwargs):
        if host != "rebind.example":
            return real(host, port, *args, **kwargs)
        answers.append(host)
        address = "93.184.215.14" if len(answers) == 1 else "127.0.0.1"
        return real(address, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    url = f"http://rebind.example:{served.server_port}/a.png"
    try:
        with pytest.raises(InputRefused, match="connected to 127.0.0.1, a non-public address"):
            fetch_url(url, InputPolicy(allow_urls=True))
    finally:
        served.shutdown()
        served.server_close()
    assert len(answers) == 2 and ImageHandler.served == 1  # checked, then connected


class ImageHandler(BaseHTTPRequestHandler):
    served = 0

    def do_GET(self):  # noqa: N802 (http.server's name)
        type(self).served += 1
        self.send_response(200)
        self.send_header("Content-Length", "4")
        self.end_headers()
        self.wfile.write(b"\x89PNG")

    def log_message(self, *args):
        pass


def test_hostile_paths_are_one_line_refusals(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "loop.png").symlink_to(root / "loop.png")
    (root / "folder").mkdir()
    policy = InputPolicy(allow_dirs=(root,))
    cases = {
        "loop.png": "symbolic link loop",
        "x" * 300 + ".png": "name too long",
        "~no-such-user-here/a.png": "no such user",
        "folder": "not a regular file",
        "a/" * 3000: "longer than 4096 characters",
    }
    for path, expected in cases.items():
        with pytest.raises(InputRefused, match=expected) as caught:
            read_path(path, policy)
        assert "\n" not in str(caught.value)


def test_an_unreadable_file_is_a_one_line_refusal(tmp_path, monkeypatch):
    (tmp_path / "locked.png").write_bytes(b"x")
    policy = InputPolicy(allow_dirs=(tmp_path,))

    def denied(root, parts):  # what os.open says for a chmod 000 file when not root
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(inputs, "open_beneath", denied)
    with pytest.raises(InputRefused, match=r"^cannot read 'locked.png': permission denied$"):
        read_path("locked.png", policy)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a chmod 000 file")
def test_a_chmod_000_file_is_refused(tmp_path):
    (tmp_path / "locked.png").write_bytes(b"x")
    (tmp_path / "locked.png").chmod(0)
    with pytest.raises(InputRefused, match="permission denied"):
        read_path("locked.png", InputPolicy(allow_dirs=(tmp_path,)))


def test_a_fifo_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "pipe.png")
    with pytest.raises(InputRefused, match="not a regular file"):
        read_path("pipe.png", InputPolicy(allow_dirs=(tmp_path,)))


def test_a_file_swapped_for_a_link_never_reads_the_outside(tmp_path):
    """The check-then-read race: the swap lands between resolving and opening."""
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "secret.png").write_bytes(b"outside")
    (root / "a.png").write_bytes(b"inside")
    policy = InputPolicy(allow_dirs=(root,))
    stop = threading.Event()

    def swap():
        while not stop.is_set():
            (root / "new.png").write_bytes(b"inside")
            os.replace(root / "new.png", root / "a.png")
            os.symlink(tmp_path / "secret.png", root / "link.png")
            os.replace(root / "link.png", root / "a.png")

    seen, refused = Counter(), Counter()
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often: the race is met many times
    swapper = threading.Thread(target=swap, daemon=True)
    swapper.start()
    deadline = time.monotonic() + 15
    try:
        for reads in range(1, 20_001):  # bounded; stops once the race was met a few times
            try:
                seen[read_path("a.png", policy)] += 1
            except InputRefused as err:
                refused["link" if "symbolic link" in str(err) else "outside"] += 1
            met = seen[b"inside"] >= 20 and refused["link"] >= 3
            if (reads >= 2000 and met) or time.monotonic() > deadline:
                break
    finally:
        stop.set()
        swapper.join(10)
        sys.setswitchinterval(interval)
    assert b"outside" not in seen, (seen, refused)
    assert seen[b"inside"] and refused["outside"], (seen, refused)  # both states were met
    assert refused["link"], (seen, refused)  # the swap landed between resolving and opening


class Trickle(BaseHTTPRequestHandler):
    """Sends its headers (or, with ``/body``, its body) a byte every 2 s, at most 12 bytes."""

    def do_GET(self):  # noqa: N802 (http.server's name)
        head = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
        if self.path == "/body":
            self.wfile.write(head)
            head = b"\x89PNG" + b"\0" * 996
        try:
            for byte in head[:12]:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(2)
        except OSError:
            pass  # the client gave up

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("part", ["headers", "body"])
def test_a_trickling_server_is_cut_at_the_total_deadline(part, monkeypatch):
    served = ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    threading.Thread(target=served.serve_forever, daemon=True).start()
    monkeypatch.setattr(inputs, "_public", lambda address: True)  # let loopback through
    url = f"http://127.0.0.1:{served.server_port}/{part}"
    start = time.monotonic()
    try:
        with pytest.raises(InputRefused, match="took longer than 3 s"):
            fetch_url(url, InputPolicy(allow_urls=True, url_timeout=3))
        took = time.monotonic() - start
    finally:
        served.shutdown()
        served.server_close()
    assert 2.9 <= took < 4.0, took


@pytest.mark.parametrize(
    "url, reason",
    [
        ("http://example.com:99999/a.png", "not a valid URL: Port out of range"),
        ("http://example.com:port/a.png", "not a valid URL"),
        ("http://[::1/a.png", "not a valid URL"),
    ],
)
def test_malformed_urls_are_one_line_refusals(url, reason):
    with pytest.raises(InputRefused, match=reason) as caught:
        fetch_url(url, InputPolicy(allow_urls=True))
    assert "\n" not in str(caught.value)


def test_the_cli_says_it_reads_files_not_urls():
    result = subprocess.run(
        [Path(sys.executable).with_name("sleuth"), "analyze", "https://example.com/a.jpg"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: the CLI reads image files, not URLs: download https://example.com/a.jpg first "
        "(e.g. curl -o image.jpg URL), or give the URL to `sleuth serve --allow-urls`"
    )
