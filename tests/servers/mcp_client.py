"""Helpers for talking to the server through the real mcp Client."""

from __future__ import annotations

import base64
import io
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
