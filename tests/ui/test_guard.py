"""The workbench keeps to its user: Host, Origin and token checks."""

from __future__ import annotations

import httpx
import pytest

from sleuth.servers.mcp.http import ServeError
from sleuth.settings import Settings
from sleuth.ui.app import create_app
from sleuth.ui.options import UiOptions
from tests.ui.conftest import free_port, serve

TOKEN = "4f9c2e71b0d84a6e9c3f5a1d7e2b8c60"


def test_a_public_bind_needs_a_token(tmp_path):
    with pytest.raises(ServeError, match="token"):
        create_app(UiOptions(host="0.0.0.0"), Settings(data_dir=tmp_path))


def test_foreign_hosts_and_origins_are_refused(workbench):
    with httpx.Client() as client:
        assert client.get(workbench.url + "/").status_code == 200
        rebound = client.get(workbench.url + "/", headers={"host": "evil.example:8766"})
        assert rebound.status_code == 403
        post = client.post(
            workbench.url + "/api/analyses",
            headers={"origin": "https://evil.example"},
            files={"image": ("a.jpg", b"x", "image/jpeg")},
        )
        assert post.status_code == 403 and "other sites" in post.text
        same = client.post(
            workbench.url + "/api/analyses",
            headers={"origin": workbench.url},
            files={"other": ("a.txt", b"x", "text/plain")},
        )
        assert same.status_code == 400  # past the guard: the form itself is wrong


def test_a_token_is_taken_once_from_the_url_then_from_a_cookie(tmp_path):
    port = free_port()
    app = create_app(UiOptions(port=port), Settings(data_dir=tmp_path), token=TOKEN)
    server, thread = serve(app, port)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client() as client:
            assert client.get(url + "/").status_code == 401
            assert client.get(url + "/?token=" + "x" * 32).status_code == 401
            entered = client.get(url + "/?token=" + TOKEN)
            assert entered.status_code == 303 and entered.headers["location"] == "/"
            cookie = entered.headers["set-cookie"]
            assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
            assert client.get(url + "/").status_code == 200  # the cookie now
        with httpx.Client(headers={"authorization": f"Bearer {TOKEN}"}) as client:
            assert client.get(url + "/").status_code == 200
    finally:
        server.should_exit = True
        thread.join(timeout=10)
