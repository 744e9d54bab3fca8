"""Fixtures for the MCP server: an isolated case store, an allowed folder, images as base64."""

from __future__ import annotations

import base64
import os

import pytest

from tests.agent.conftest import composite_png, settings  # noqa: F401 (a fixture)


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


@pytest.fixture
def env(tmp_path):
    """The environment for a ``sleuth serve`` process: its own data folder, no config file."""
    (tmp_path / "none.toml").write_text("")
    data, config = str(tmp_path / "data"), str(tmp_path / "none.toml")
    return dict(os.environ, SLEUTH_DATA_DIR=data, SLEUTH_CONFIG=config)
