"""The offline analyst: a deterministic policy over the tools, no model weights.

It runs the same graph as a vision-language model. Each turn it either concludes (the
fused evidence is confident, or nothing is left to examine) or inspects the next
candidate region: a zoom plus every regional survey tool on that box (but a tool that
failed on the whole image). Follow-up questions are read into an intent
(:mod:`sleuth.agent.backends.intents`: why, a tool on a region, evidence ids, provenance,
what would change the verdict, a zoom, something only a vision model can judge) and
answered from the case (:mod:`sleuth.agent.backends.offline_answers`); a question it
cannot answer says so, and its message carries ``understood = False``. Its explanations
are composed only from findings and say that they are signal-only.
"""

from __future__ import annotations

from langchain_core.messages import AIMessage
from PIL import Image

from sleuth import prompts
from sleuth.agent.backends.base import Opinion, Situation
from sleuth.agent.backends.intents import PROVENANCE, ZOOM, Intent, read_intent
from sleuth.agent.backends.offline_answers import compose
from sleuth.agent.detectors import DetectorTerm, detector_terms
from sleuth.agent.frames import BoxFrame
from sleuth.agent.fusion import FusionWeights, contributions
from sleuth.agent.verdict import BackendIdentity, Evidence
from sleuth.agent.weighing import deciding_provenance, effects, ranked
from sleuth.tools import Box, LoadedImage, ToolSpec

POLICY_VERSION = "offline-v1"
LISTED = 4
"""Findings named per side in an explanation; the rest are counted."""


class OfflineBackend:
    """The weights-free analyst (see the module docstring).

    Parameters
    ----------
    model : str
        The policy's name in verdicts (default :data:`POLICY_VERSION`).
    options : object, optional
        Ignored: nothing to configure.
    teaching : bool
        Explanations for a model to learn (the teacher's): they do not say that no
        vision-language model looked at the image.
    """

    accepts_nudges = False

    def __init__(
        self, model: str = "", options: object | None = None, *, teaching: bool = False
    ) -> None:
        del options  # nothing to configure
        self.teaching = teaching
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
            teaching=self.teaching,
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
        intent = read_request(situation.view.question or "", situation)
        if situation.view.turns == 0:
            calls = _follow_up_calls(situation, intent)
            if calls:
                return AIMessage(content="", tool_calls=calls)
        return AIMessage(
            content=compose(situation, intent),
            additional_kwargs={"understood": intent.understood},
        )


def _detector_row(term: DetectorTerm) -> dict[str, object]:
    return {
        "id": term.id,
        "tool": term.tool,
        "score": term.score,
        "on": term.on,
        "term": term.term,
        "capped": term.capped,
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


def _follow_up_calls(situation: Situation, intent: Intent) -> list[dict[str, object]]:
    """Tools to run before answering: the ones asked for, on the region asked for."""
    registry = situation.registry
    evidence = situation.view.evidence
    if intent.kind == "provenance":
        have = any(e.tool == PROVENANCE for e in evidence)
        tools: tuple[str, ...] = () if have else (PROVENANCE,)
    elif intent.kind in ("tools", "zoom") and intent.problem is None:
        tools = intent.tools or ((ZOOM,) if intent.region is not None else ())
    else:
        tools = ()
    calls: list[dict[str, object]] = []
    index = situation.view.next_step()
    for i, name in enumerate(tools):
        if name not in registry:
            continue
        spec = registry.get(name)
        region = intent.region if spec.regional else None
        done = any(e.tool == name and e.region == region for e in evidence)
        if done and name != ZOOM:
            continue
        args: dict[str, object] = {"box": list(region.as_tuple())} if region else {}
        if name == ZOOM and region is not None:
            args |= _enlarging(spec, region)
        calls.append({"name": name, "args": args, "id": f"call_{index}_{i}", "type": "tool_call"})
    return calls


def _enlarging(spec: ToolSpec, region: Box) -> dict[str, object]:
    """Return a zoom ``target`` that enlarges ``region`` (twice its long side, within bounds).

    The zoom's default output size would shrink a region larger than it.
    """
    field = spec.params.model_json_schema().get("properties", {}).get("target")
    if not isinstance(field, dict) or not isinstance(field.get("default"), int):
        return {}
    want = max(field["default"], 2 * max(region.width, region.height))
    top = field.get("maximum")
    return {"target": min(want, int(top)) if isinstance(top, int | float) else want}


def read_request(question: str, situation: Situation) -> Intent:
    """Read what a follow-up question asks for (see :func:`.intents.read_intent`).

    Tools are named by name or by any declared ``aliases`` ("error level" names ``ela``),
    each as whole words, so a plugin tool can be named in a question too; regions are
    numbered candidates ("box 2"), halves, quadrants, the centre or pixel boxes.
    """
    return read_intent(
        question,
        tools=situation.registry.named_in(question),
        candidates=situation.view.candidates,
        size=situation.image.size,
    )
