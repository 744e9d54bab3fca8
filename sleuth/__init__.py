"""sleuth: decide whether an image is AI-generated, and show why.

>>> import sleuth
>>> verdict = sleuth.analyze("photo.jpg")  # doctest: +SKIP
>>> answer = sleuth.ask(verdict.case_id, "what did ELA show in box 1?")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_API = ("analyze", "ask", "open_session", "Session", "AnalysisInterrupted")


def __getattr__(name: str) -> Any:
    # The agent (LangGraph and friends) loads on first use, so `sleuth.tools` stays light.
    if name in _API:
        from sleuth import api

        return getattr(api, name)
    if name == "Settings":
        from sleuth.settings import Settings

        return Settings
    raise AttributeError(f"module 'sleuth' has no attribute {name!r}")


__all__ = ["Settings", "__version__", *_API]
