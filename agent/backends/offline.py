"""The offline analyst: a deterministic policy over the tools, no model weights.

It runs the same graph as a vision-language model. Each turn it either concludes (the
fused evidence is confident, or nothing is left to examine) or inspects the next
candidate region: a zoom plus every regional survey tool on that box (but a tool that
failed on the whole image). Follow-up
questions are read for a tool name and a region ("what did ELA show in box 2?", "zoom
on the left half") and answered from the evidence. Its explanations are composed only
from findings and say that they are signal-only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from langchain_core.messages import AIMessage
from PIL import Image

from sleuth import prompts
from sleuth.agent.backends.base import Opinion, Situation
from sleuth.agent.detectors import DetectorTerm, detector_terms
from sleuth.agent.frames import BoxFrame
from sleuth.agent.fusion import FusionWeights, contributions
from sleuth.agent.verdict import BackendIdentity, Evidence
from sleuth.agent.weighing import deciding_provenance, effects, ranked, recorded
from sleuth.tools import Box, LoadedImage

POLICY_VERSION = "offline-v1"
LISTED = 4
"""Findings named per side in an explanation; the rest are counted."""

_REGION_NUMBER = re.compile(r"\b(?:box|region|candidate)\s*#?\s*(\d{1,2})\b", re.IGNORECASE)


@dataclass(frozen=True)
class Request:
    """What a follow-up question asks for."""

    tools: tuple[str, ...]
    region: Box | None
    region_error: str | None = None


class OfflineBackend:
    """The weights-free analyst (see the module docstring)."""

    accepts_nudges = False

    def __init__(self, model: str = "", options: object | None = None) -> None:
        del options  # nothing to configure
        self.identity = BackendIdentity(provider="offline", model=model or POLICY_VERSION)

    def frame(self, image: LoadedImage) -> BoxFrame:
        """Boxes in original pixels."""
        return BoxFrame.original(*image.size)

    def picture(self, picture: Image.Image) -> Image.Image:
        """No model looks at pictures here."""
        return picture

    def reason(self, situation: Situation) -> AIMessage:
        """Inspect the next candidate region, or conclude; in a follow-up, answer."""
        if situation.view.mode == "followup":
            return self._follow_up(situation)
        p = situation.p_signals
        if max(p, 1.0 - p) >= situation.context.threshold:
            return AIMessage(content="The evidence is conclusive enough.")
        region = self._next_region(situation)
        if region is None:
            return AIMessage(content="Nothing more to examine.")
        return AIMessage(content="", tool_calls=_inspect_calls(situation, region))

    def conclude(self, situation: Situation, message: AIMessage) -> Opinion:
        """Compose the explanation from the findings and what each contributed to p_ai."""
        evidence = situation.view.evidence
        fusion = FusionWeights.load()
        calibrated = situation.registry.calibrations()
        weight = contributions(evidence, fusion, band=situation.context.band, calibrated=calibrated)
        order = ranked(evidence, weight)
        effect_of = effects(order, weight)
        deciding = deciding_provenance(order, weight)

        def row(item: Evidence) -> dict[str, object]:
            where = f" on {list(item.region.as_tuple())}" if item.region else ""
            return {
                "id": item.id,
                "tool": item.tool + where,
                "strength": effect_of[item.id].strength,
                "undeclared": item.kind == "provenance" and item.direction == "neutral",
            }

        def towards(side: str) -> dict[str, object]:
            rows = [row(e) for e in order if effect_of[e.id].towards == side]
            return {"items": rows[:LISTED], "more": len(rows[LISTED:])}

        examined = dict.fromkeys(e.region for e in evidence if e.region is not None)
        text = prompts.render(
            "offline_explanation",
            p_ai=situation.p_signals,
            stopped="budget" if situation.remaining <= 0 else "concluded",
            provenance=[{"id": e.id, "summary": e.summary} for e in deciding[:3]],
            towards_ai=towards("ai"),
            towards_real=towards("real"),
            regions=[str(list(box.as_tuple())) for box in examined],
            others=sum(not effect_of[e.id].counts for e in evidence if e.kind != "error"),
            detectors=[
                _detector_row(t) for t in detector_terms(evidence, calibrated, fusion.plugins)
            ],
        )
        boxes = [b for e in order if effect_of[e.id].towards == "ai" for b in e.boxes][:4]
        return Opinion(p_model=None, explanation=text, boxes=boxes)

    def _next_region(self, situation: Situation) -> Box | None:
        seen = {e.region for e in situation.view.evidence if e.region is not None}
        for box in situation.view.candidates[: situation.context.candidates]:
            if box not in seen:
                return box
        return None

    def _follow_up(self, situation: Situation) -> AIMessage:
        request = read_request(situation.view.question or "", situation)
        if situation.view.turns == 0 and request.region_error is None:
            calls = _follow_up_calls(situation, request)
            if calls:
                return AIMessage(content="", tool_calls=calls)
        return AIMessage(content=self._answer(situation, request))

    def _answer(self, situation: Situation, request: Request) -> str:
        evidence = situation.view.evidence
        fresh = [e for e in evidence if e.step >= situation.view.question_start()]
        if request.region_error:
            items = []
        elif fresh:
            items = fresh
        else:
            items = [
                e
                for e in evidence
                if (not request.tools or e.tool in request.tools)
                and (request.region is None or e.region == request.region)
            ]
            if not items and not request.tools and request.region is None:
                weight = contributions(
                    evidence,
                    FusionWeights.load(),
                    band=situation.context.band,
                    calibrated=situation.registry.calibrations(),
                )
                items = [e for e in evidence if e.id in weight]
        verdict = situation.view.verdict
        found = effects(items, recorded(verdict) if verdict else None)
        answer = prompts.render(
            "offline_answer",
            items=[_answer_row(e, found[e.id].words) for e in items[:8]],
            label=verdict.label if verdict else "none yet",
            p_ai=verdict.p_ai if verdict else situation.p_signals,
        )
        prefix = f"{request.region_error}\n" if request.region_error else ""
        return prefix + answer


def _detector_row(term: DetectorTerm) -> dict[str, object]:
    return {
        "id": term.id,
        "tool": term.tool,
        "score": term.score,
        "on": term.on,
        "term": term.term,
        "capped": term.capped,
    }


def _answer_row(item: Evidence, effect: str) -> dict[str, object]:
    return {
        "id": item.id,
        "tool": item.tool,
        "region": list(item.region.as_tuple()) if item.region else None,
        "summary": item.summary,
        "score": item.score,
        "effect": effect,
    }


def _inspect_calls(situation: Situation, region: Box) -> list[dict[str, object]]:
    box = list(region.as_tuple())
    broken = {e.tool for e in situation.view.evidence if e.kind == "error"}
    names = ["zoom"] if "zoom" in situation.registry else []
    names += [
        s.name
        for s in situation.registry
        if s.survey
        and s.regional
        and s.cost != "expensive"
        and s.name != "zoom"
        and s.name not in broken
    ]
    index = situation.view.next_step()
    return [
        {"name": name, "args": {"box": box}, "id": f"call_{index}_{i}", "type": "tool_call"}
        for i, name in enumerate(names)
    ]


def _follow_up_calls(situation: Situation, request: Request) -> list[dict[str, object]]:
    registry = situation.registry
    evidence = situation.view.evidence
    calls: list[dict[str, object]] = []
    index = situation.view.next_step()
    tools = request.tools or (("zoom",) if request.region is not None else ())
    for i, name in enumerate(tools):
        if name not in registry:
            continue
        spec = registry.get(name)
        region = request.region if spec.regional else None
        done = any(e.tool == name and e.region == region for e in evidence)
        if done and name != "zoom":
            continue
        args: dict[str, object] = {"box": list(region.as_tuple())} if region else {}
        calls.append({"name": name, "args": args, "id": f"call_{index}_{i}", "type": "tool_call"})
    return calls


def read_request(question: str, situation: Situation) -> Request:
    """Read which tools and which region a follow-up question is about.

    Tools: a tool's name or any of its declared ``aliases`` ("error level" names ``ela``),
    each as whole words ("related" does not name ``ela``), so a plugin tool can be named
    in a question too.

    Regions: ``box N`` / ``region N`` (the case's candidate regions, 1-based), or the
    words left, right, top, bottom, centre (halves and the middle quarter).
    """
    text = question.lower()
    tools = situation.registry.named_in(text)
    width, height = situation.image.size
    if match := _REGION_NUMBER.search(text):
        number = int(match.group(1))
        candidates = situation.view.candidates
        if 1 <= number <= len(candidates):
            return Request(tools, candidates[number - 1])
        return Request(
            tools,
            None,
            f"There is no box {number}: this case has {len(candidates)} numbered region(s).",
        )
    return Request(tools, _named_region(text, width, height))


def _named_region(text: str, width: int, height: int) -> Box | None:
    x0, y0, x1, y1 = 0, 0, width, height
    if re.search(r"\b(centre|center|middle)\b", text):
        return Box(x0=width // 4, y0=height // 4, x1=width - width // 4, y1=height - height // 4)
    if re.search(r"\bleft\b", text):
        x1 = max(1, width // 2)
    elif re.search(r"\bright\b", text):
        x0 = width // 2
    if re.search(r"\b(top|upper)\b", text):
        y1 = max(1, height // 2)
    elif re.search(r"\b(bottom|lower)\b", text):
        y0 = height // 2
    if (x0, y0, x1, y1) == (0, 0, width, height):
        return None
    return Box(x0=x0, y0=y0, x1=x1, y1=y1)
