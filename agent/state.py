"""The graph's state: a narrow input, and the case that grows from it.

State values are JSON-ready (dicts of the pydantic models in :mod:`sleuth.agent.verdict`)
so that any checkpointer stores them without custom serialisation;
:class:`~sleuth.agent.view.CaseView` gives nodes and backends the typed view.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, Literal, NotRequired, Required, TypedDict

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages

from sleuth.agent.view import Mode


class CaseInput(TypedDict, total=False):
    """What starts a run: the image (by sha256, never a path) and an optional question."""

    image_id: Required[str]
    question: NotRequired[str | None]
    name: NotRequired[str | None]


class CaseState(TypedDict, total=False):
    """Everything a case accumulates; reducers append evidence, steps and messages."""

    image_id: str
    question: str | None
    name: str | None
    mode: Mode
    messages: Annotated[list[AnyMessage], add_messages]
    evidence: Annotated[list[dict[str, Any]], operator.add]
    steps: Annotated[list[dict[str, Any]], operator.add]
    candidates: list[dict[str, Any]]
    turns: int
    opinion: dict[str, Any] | None
    verdict: dict[str, Any] | None
    answers: Annotated[list[dict[str, Any]], operator.add]
    stop: Literal["confident", "concluded", "budget"] | None
    nudged: bool
    fallback_from: str | None
    stability: dict[str, Any] | None
