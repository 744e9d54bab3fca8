"""What the server agrees to read: allowed roots, capped base64, public http(s) URLs only."""

import base64
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from sleuth.servers.inputs import (
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
