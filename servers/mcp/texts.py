"""What the MCP tools say first: plain text an assistant can relay, within a size budget.

The structured content keeps everything for programs; these texts carry the label, the
probability, the two or three findings that moved it (each with its id and in the same
words as the console and the report, :mod:`sleuth.agent.weighing`) and what to ask next.
"""

from __future__ import annotations

from sleuth import prompts
from sleuth.agent.cases import CaseSummary
from sleuth.agent.verdict import Case, Verdict
from sleuth.agent.weighing import deciding_provenance, effects, ranked, recorded

MOVED = 3
"""Findings named in a verdict's text."""
SUMMARY_CHARS = 220
"""Longest finding summary quoted in a text."""
ANSWER_CHARS = 500
"""Longest follow-up answer quoted in a case's text."""
ANSWERS_SHOWN = 3
"""Follow-ups quoted in a case's text (the latest)."""


def clip(text: str, limit: int, *, one_line: bool = True) -> str:
    """Return ``text`` cut at ``limit`` characters with an ellipsis (on one line by default)."""
    flat = " ".join(text.split()) if one_line else text.strip()
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def verdict_brief(verdict: Verdict, earlier: list[CaseSummary] | None = None) -> str:
    """Return the verdict in plain words: label, probability, what moved it, what to ask.

    ``earlier``: other cases of the same image, named in a line of their own.
    """
    weights = recorded(verdict)
    order = ranked(verdict.evidence, weights)
    found = effects(order, weights)
    moved = [e for e in order if found[e.id].counts]
    failed = sorted({e.tool for e in verdict.evidence if e.kind == "error"})
    tools = [e.tool for e in order if e.region is not None and e.tool != "zoom"]
    return prompts.render(
        "mcp_verdict",
        label=verdict.label,
        p_ai=verdict.p_ai,
        rests_on_provenance=bool(weights and deciding_provenance(verdict.evidence, weights)),
        moved=[
            {
                "id": e.id,
                "tool": e.tool,
                "words": found[e.id].words,
                "summary": clip(e.summary, SUMMARY_CHARS),
            }
            for e in moved[:MOVED]
        ],
        quiet=len(order) - len(moved[:MOVED]),
        failed=", ".join(failed),
        case_id=verdict.case_id,
        example_tool="ela" if "ela" in tools else (tools[0] if tools else "ela"),
        earlier=[
            {"case_id": c.case_id, "label": c.label or "interrupted", "day": c.updated[:10]}
            for c in (earlier or [])[:3]
        ],
    )


def case_brief(case: Case) -> str:
    """Return a stored case in plain words: the verdict's brief and the latest follow-ups."""
    shown = case.answers[-ANSWERS_SHOWN:]
    return prompts.render(
        "mcp_case",
        brief=verdict_brief(case.verdict) if case.verdict else "",
        case_id=case.case_id,
        file_name=case.name,
        total=len(case.answers),
        answers=[
            {"question": clip(a.question, 200), "answer": clip(a.answer, ANSWER_CHARS)}
            for a in shown
        ],
        more=bool(case.verdict and (case.verdict.steps or case.verdict.evidence)),
    )
