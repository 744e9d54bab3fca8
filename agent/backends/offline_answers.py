"""The offline analyst's answers to follow-up questions: one composer per kind of intent.

Every answer is composed from the case (its verdict, evidence and recorded contributions)
and the registry's own descriptions, through the ``offline_*`` templates in
:mod:`sleuth.prompts`; no free text from the image file is read beyond the tools'
summaries. What each item did to ``p_ai`` is said in :mod:`sleuth.agent.weighing`'s words.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from sleuth import prompts
from sleuth.agent.backends.base import Situation
from sleuth.agent.backends.intents import PROVENANCE, ZOOM, Intent, RegionProblem
from sleuth.agent.features import METRIC_FEATURES, extract_features
from sleuth.agent.fusion import FusionWeights, contributions, logit, sigmoid
from sleuth.agent.verdict import Evidence, label_for
from sleuth.agent.weighing import deciding_provenance, effects, ranked, recorded

LISTED = 4
"""Items named in a "why" answer; the rest that count are counted."""
METRICS_SHOWN = 4
"""Metrics shown per item when asked about it: the fusion's first, then the others."""
ROWS = 8
"""Evidence items listed for a tool question."""


def compose(situation: Situation, intent: Intent) -> str:
    """Return the answer to the current question, read as ``intent``."""
    text = COMPOSERS[intent.kind](situation, intent)
    if intent.vision and intent.kind != "vision":
        text += "\n\n" + _vision_text(situation, intent, partial=True)
    return text


def _weights(situation: Situation) -> dict[str, float] | None:
    """Return the contributions the verdict was written with (computed now before one)."""
    verdict = situation.view.verdict
    if verdict is not None:
        return recorded(verdict)
    evidence = situation.view.evidence
    return contributions(
        evidence,
        FusionWeights.load(),
        band=situation.context.band,
        calibrated=situation.registry.calibrations(),
    )


def _verdict_values(situation: Situation) -> dict[str, Any]:
    verdict = situation.view.verdict
    return {
        "label": verdict.label if verdict else "none yet",
        "p_ai": verdict.p_ai if verdict else situation.p_signals,
    }


def _row(item: Evidence, effect: str) -> dict[str, Any]:
    return {
        "id": item.id,
        "tool": item.tool,
        "region": list(item.region.as_tuple()) if item.region else None,
        "summary": item.summary,
        "score": item.score,
        "effect": effect,
    }


def _why(situation: Situation, intent: Intent) -> str:
    verdict = situation.view.verdict
    evidence = verdict.evidence if verdict else situation.view.evidence
    weights = _weights(situation)
    order = ranked(evidence, weights)
    found = effects(order, weights)
    counted = [e for e in order if found[e.id].counts]
    deciding = deciding_provenance(order, weights) if weights is not None else []
    unstable = bool(verdict and verdict.stability and not verdict.stability.stable)
    return prompts.render(
        "offline_why",
        recorded=weights is not None,
        items=[_row(e, found[e.id].words) for e in counted[:LISTED]],
        more=len(counted[LISTED:]),
        others=sum(1 for e in evidence if e.kind != "error") - len(counted),
        provenance=[e.id for e in deciding],
        p_model=verdict.p_model if verdict else None,
        unstable=unstable,
        **_verdict_values(situation),
    )


def _evidence(situation: Situation, intent: Intent) -> str:
    by_id = {e.id: e for e in situation.view.evidence}
    asked = [by_id[i] for i in intent.evidence_ids if i in by_id]
    found = effects(asked, _weights(situation))
    registry = situation.registry
    items = [
        _row(e, found[e.id].words)
        | {
            "caveats": e.caveats[:3],
            "metrics": _metrics(e),
            "score_meaning": registry.get(e.tool).score_meaning if e.tool in registry else None,
        }
        for e in asked
    ]
    ids = list(by_id)
    return prompts.render(
        "offline_evidence",
        items=items,
        unknown=[i for i in intent.evidence_ids if i not in by_id],
        count=len(ids),
        first=ids[0] if ids else None,
        last=ids[-1] if ids else None,
    )


def _metrics(item: Evidence) -> list[dict[str, object]]:
    """Return a few numeric metrics of an item: those the fusion reads first."""
    used = [f.metric for f in METRIC_FEATURES if f.tool == item.tool]
    out: list[dict[str, object]] = []
    for name in dict.fromkeys([*(m for m in used if m in item.metrics), *item.metrics]):
        value = item.metrics[name]
        if isinstance(value, bool) or (isinstance(value, int | float) and math.isfinite(value)):
            out.append({"name": name, "value": value})
    return out[:METRICS_SHOWN]


def _provenance(situation: Situation, intent: Intent) -> str:
    evidence = situation.view.evidence
    items = [e for e in evidence if e.kind == "provenance" or e.tool == PROVENANCE]
    found = effects(items, _weights(situation))
    return prompts.render(
        "offline_provenance",
        items=[_row(e, found[e.id].words) for e in items],
        available=PROVENANCE in situation.registry,
        **_verdict_values(situation),
    )


def _change(situation: Situation, intent: Intent) -> str:
    verdict = situation.view.verdict
    low, high = verdict.abstain_band if verdict else situation.context.band
    values = _verdict_values(situation)
    z = logit(values["p_ai"])
    fusion = FusionWeights.load()
    evidence = verdict.evidence if verdict else situation.view.evidence
    flags = extract_features(evidence).values
    rules = None
    if fusion.provenance is not None:
        band = (low, high)
        signed, claimed = fusion.provenance.signed_capture, fusion.provenance.declared_ai
        rules = {
            "signed_capture": signed,
            "declared_ai": claimed,
            "unsigned_capture": fusion.provenance.unsigned_capture,
            "signed": _after(z + signed, band, flags.get("provenance_signed_capture") == 1.0),
            "declared": _after(z + claimed, band, flags.get("provenance_ai") == 1.0),
        }
    pixels = None
    model = fusion.model
    if model is not None and model.cap_ai is not None and model.cap_real is not None:
        p_low, p_high = sigmoid(-model.cap_real), sigmoid(model.cap_ai)
        pixels = {"low": p_low, "high": p_high, "reach_ai": p_high > high}
        pixels["reach_real"] = p_low < low
    weights = _weights(situation)
    declared = deciding_provenance(evidence, weights) if weights is not None else []
    return prompts.render(
        "offline_change",
        low=low,
        high=high,
        to_ai=logit(high) - z,
        to_real=z - logit(low),
        rules=rules,
        pixels=pixels,
        declared=[e.id for e in declared],
        unstable=bool(verdict and verdict.stability and not verdict.stability.stable),
        **values,
    )


def _after(z: float, band: tuple[float, float], present: bool) -> dict[str, object] | None:
    """Return p_ai and its label at log-odds ``z``; None when the file already has it."""
    if present:
        return None
    return {"p_ai": sigmoid(z), "label": label_for(sigmoid(z), band)}


def _tools(situation: Situation, intent: Intent) -> str:
    view = situation.view
    evidence = view.evidence
    fresh = [e for e in evidence if e.step >= view.question_start()]
    if intent.problem is not None:
        items: list[Evidence] = []
    elif fresh:
        items = fresh
    else:
        items = [
            e
            for e in evidence
            if (not intent.tools or e.tool in intent.tools)
            and (intent.region is None or e.region == intent.region)
        ]
    found = effects(items, _weights(situation))
    shown = items[:ROWS]
    shrunk = any(e.tool == ZOOM and _below_one(e.metrics.get("scale")) for e in shown)
    defaulted = list(intent.region.as_tuple()) if intent.defaulted and intent.region else None
    return prompts.render(
        "offline_answer",
        problem=_problem_text(intent.problem) if intent.problem else None,
        defaulted=defaulted,
        items=[_row(e, found[e.id].words) for e in shown],
        shrunk=shrunk,
        **_verdict_values(situation),
    )


def _below_one(value: object) -> bool:
    return isinstance(value, int | float) and value < 1.0


def _problem_text(problem: RegionProblem) -> str:
    width, height = problem.size
    return prompts.render(
        "offline_region_problem",
        kind=problem.kind,
        number=problem.number,
        count=problem.count,
        box=list(problem.box) if problem.box else None,
        width=width,
        height=height,
    )


def _vision_text(situation: Situation, intent: Intent, *, partial: bool) -> str:
    verdict = situation.view.verdict
    return prompts.render(
        "offline_vision",
        topics=list(intent.vision),
        partial=partial,
        case_id=verdict.case_id if verdict else "CASE_ID",
    )


def _vision(situation: Situation, intent: Intent) -> str:
    return _vision_text(situation, intent, partial=False)


def _unknown(situation: Situation, intent: Intent) -> str:
    evidence = situation.view.evidence
    width, height = situation.image.size
    return prompts.render(
        "offline_unknown",
        example=evidence[0].id if evidence else "E1",
        tools=[spec.name for spec in situation.registry],
        boxes=len(situation.view.candidates),
        width=width,
        height=height,
    )


COMPOSERS: dict[str, Callable[[Situation, Intent], str]] = {
    "why": _why,
    "evidence": _evidence,
    "tools": _tools,
    "zoom": _tools,
    "provenance": _provenance,
    "change": _change,
    "vision": _vision,
    "unknown": _unknown,
}
"""The composer of each kind of intent."""
