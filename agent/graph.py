"""The graph factory: survey -> reason <-> act -> decide -> finalize, and follow-ups.

```
START -+-> survey ----> reason <--(tool calls)--> act
       |                  |  (no tool calls)
       |                  +--> decide --> finalize --> END
       |                         +------> reason (not confident: keep looking)
       +-> follow_up --> reason <--> act ... --> answer --> END   (a case with a verdict)
```
"""

from __future__ import annotations

from typing import Any, Literal

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from sleuth.agent.backends.base import Backend
from sleuth.agent.cases import CaseFiles
from sleuth.agent.context import AgentContext
from sleuth.agent.nodes import Investigation
from sleuth.agent.state import CaseInput, CaseState
from sleuth.tools import ToolRegistry
from sleuth.tools.image import ImageLimits


def route_start(state: CaseState) -> Literal["survey", "follow_up"]:
    """Send a case with a verdict to follow-up questions, a new one to the survey."""
    return "follow_up" if state.get("verdict") else "survey"


def build_graph(
    registry: ToolRegistry,
    backend: Backend,
    files: CaseFiles,
    *,
    checkpointer: BaseCheckpointSaver | None = None,
    fallback: Backend | None = None,
    limits: ImageLimits | None = None,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Build the investigation graph.

    Parameters
    ----------
    registry : ToolRegistry
        The forensic tools.
    backend : Backend
        The reasoning engine (see :func:`sleuth.agent.backends.make_backend`).
    files : CaseFiles
        Where case images and artifacts live.
    checkpointer : BaseCheckpointSaver, optional
        Case persistence; the thread id is the case id.
    fallback : Backend, optional
        Used when ``backend`` fails; recorded in the verdict.
    limits : ImageLimits, optional
        Limits for reloading stored images.

    Returns
    -------
    CompiledStateGraph
        Invoke with ``{"image_id": sha256, "question": ...}``, ``context=AgentContext(...)``
        and ``config={"configurable": {"thread_id": case_id}}``.
    """
    nodes = Investigation(registry, backend, files, fallback=fallback, limits=limits)
    builder = StateGraph(CaseState, context_schema=AgentContext, input_schema=CaseInput)
    builder.add_node("survey", nodes.survey)
    builder.add_node("follow_up", nodes.follow_up)
    builder.add_node("reason", nodes.reason, destinations=("act", "decide", "answer"))
    builder.add_node("act", nodes.act)
    builder.add_node("decide", nodes.decide, destinations=("reason", "finalize"))
    builder.add_node("finalize", nodes.finalize)
    builder.add_node("answer", nodes.answer)
    builder.add_conditional_edges(START, route_start, ["survey", "follow_up"])
    builder.add_edge("survey", "reason")
    builder.add_edge("follow_up", "reason")
    builder.add_edge("act", "reason")
    builder.add_edge("finalize", END)
    builder.add_edge("answer", END)
    return builder.compile(checkpointer=checkpointer, name="sleuth")
