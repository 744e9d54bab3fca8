"""From a tool's findings to the numbered evidence a verdict cites."""

from __future__ import annotations

from collections.abc import Iterable

from sleuth import prompts
from sleuth.agent.verdict import Evidence
from sleuth.agent.view import CaseView
from sleuth.tools import Box
from sleuth.tools.base import ToolResult
from sleuth.tools.isolation import ERROR_METRIC


def to_evidence(
    result: ToolResult, view: CaseView, *, offset: int, region: Box | None, step: int
) -> list[Evidence]:
    """Turn a tool result's findings into numbered evidence items.

    Parameters
    ----------
    result : ToolResult
        One tool call's result.
    view : CaseView
        The case so far; numbering continues after its evidence.
    offset : int
        Items already numbered in this batch (not yet in the state).
    region : Box, optional
        The region the tool analysed (None: the whole image).
    step : int
        Index of the step that produced the result.

    Returns
    -------
    list of Evidence
        One item per finding, ids ``E<n>`` in order.
    """
    files = {a.name: f"{a.name}.png" for a in result.artifacts}
    return [
        Evidence(
            id=view.next_evidence_id(offset + i),
            tool=f.tool,
            region=region,
            summary=f.summary,
            score=f.score,
            direction=f.direction,
            kind=f.kind,
            boxes=f.boxes,
            box_scores=f.box_scores,
            metrics=f.metrics,
            artifacts=[files[a] for a in f.artifacts if a in files],
            caveats=f.caveats,
            step=step,
        )
        for i, f in enumerate(result.findings)
    ]


def failed_tools(evidence: Iterable[Evidence]) -> dict[str, str]:
    """Return the tools whose calls failed (evidence of kind ``error``), each with its cause.

    Each tool appears once, with its first failure, in the order of the evidence.
    """
    out: dict[str, str] = {}
    for item in evidence:
        if item.kind == "error" and item.tool not in out:
            out[item.tool] = str(item.metrics.get(ERROR_METRIC, item.summary))
    return out


def failure_note(failed: dict[str, str]) -> str:
    """Return the explanation's sentence naming the failed tools and why they failed."""
    return prompts.render(
        "failed_tools_note", tools=[{"name": n, "cause": c} for n, c in failed.items()]
    )
