"""The graph for ``langgraph dev`` / LangGraph Studio (see ``langgraph.json``).

It sits beside the servers: like them it reads the settings (:mod:`sleuth.settings`).

The platform brings its own checkpointer; the backend and the case files come from the
settings (``SLEUTH_*`` variables or the config file), the offline analyst by default.
"""

from __future__ import annotations

from typing import Any

from langgraph.graph.state import CompiledStateGraph


def make_graph(config: Any = None) -> CompiledStateGraph:
    """Build the investigation graph from the settings, without a checkpointer.

    Start a run with ``{"image_id": <sha256>}`` of an image already in the case store
    (``sleuth analyze`` puts it there) and, optionally, a ``question``.
    """
    del config  # nothing per-run: budgets come through the context schema
    from sleuth.agent.backends import make_backend
    from sleuth.agent.cases import CaseFiles
    from sleuth.agent.graph import build_graph
    from sleuth.settings import Settings
    from sleuth.tools import ToolRegistry

    settings = Settings.load()
    return build_graph(
        ToolRegistry.discover(
            enabled=settings.tools_enabled,
            blocked=settings.tools_blocked,
            tool_seconds=settings.tool_seconds,
        ),
        make_backend(settings.backend, settings.backend_options()),
        CaseFiles(settings.data_dir),
        limits=settings.image_limits,
    )
