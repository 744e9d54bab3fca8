"""Fixtures for the MCP server: an isolated case store, an allowed folder, images as base64."""

from __future__ import annotations

import base64

import pytest

from sleuth.settings import Settings
from tests.agent.conftest import composite_png


@pytest.fixture
def settings(tmp_path, monkeypatch) -> Settings:
    """Settings with the case store in tmp_path and nothing read from the user's files."""
    monkeypatch.setenv("SLEUTH_CONFIG", str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text("")
    return Settings.load(data_dir=tmp_path / "data")


@pytest.fixture
def allowed(tmp_path):
    """A folder the server may read, holding ``composite.png``."""
    folder = tmp_path / "allowed"
    folder.mkdir()
    (folder / "composite.png").write_bytes(composite_png())
    return folder


@pytest.fixture(scope="session")
def image_b64() -> str:
    return base64.b64encode(composite_png()).decode("ascii")
