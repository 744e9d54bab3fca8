"""A typed, read-only view of a case's state, for nodes, backends and screening.

Kept apart from :mod:`sleuth.agent.state`, which needs LangGraph and LangChain (about
0.4 s to import): screening an image (``sleuth scan``'s workers) reads a view and never
builds the graph.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from sleuth.agent.verdict import Evidence, Step, Verdict
from sleuth.tools import Box

if TYPE_CHECKING:
    from sleuth.agent.state import CaseState

Mode = Literal["analyze", "followup"]


@dataclass(frozen=True)
class CaseView:
    """A typed, read-only view of a :class:`CaseState`; each part is parsed once per view."""

    state: CaseState

    @functools.cached_property
    def evidence(self) -> list[Evidence]:
        """Evidence so far, in order."""
        return [Evidence.model_validate(e) for e in self.state.get("evidence", [])]

    @functools.cached_property
    def steps(self) -> list[Step]:
        """Steps so far, in order."""
        return [Step.model_validate(s) for s in self.state.get("steps", [])]

    @functools.cached_property
    def candidates(self) -> list[Box]:
        """Candidate regions from the survey, best first (``region 1`` is the first)."""
        return [Box.model_validate(b) for b in self.state.get("candidates", [])]

    @functools.cached_property
    def verdict(self) -> Verdict | None:
        """The verdict, once the case has one."""
        data = self.state.get("verdict")
        return Verdict.model_validate(data) if data else None

    @property
    def mode(self) -> Mode:
        """``analyze`` until the verdict, then ``followup``."""
        return self.state.get("mode", "analyze")

    @property
    def question(self) -> str | None:
        """The current question, if any."""
        return self.state.get("question")

    @property
    def turns(self) -> int:
        """Reasoning turns used on the current question."""
        return self.state.get("turns", 0)

    def next_evidence_id(self, offset: int = 0) -> str:
        """Return the citation key of the next evidence item."""
        return f"E{len(self.state.get('evidence', [])) + offset + 1}"

    def question_start(self) -> int:
        """Index of the first step taken for the current follow-up question."""
        for step in reversed(self.steps):
            if step.kind == "answer":
                return step.index + 1
        verdict = self.verdict
        return len(verdict.steps) if verdict else 0

    def next_step(self, offset: int = 0) -> int:
        """Return the index of the next step."""
        return len(self.state.get("steps", [])) + offset
