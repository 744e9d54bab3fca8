"""Rewards for reinforcement learning, each a pure function of one exported trace.

A trace is a record of ``sleuth traces export`` (:mod:`sleuth.evaluation.traces`, either
layout): the conversation with its tool calls and the verdict JSON, the tool schemas, the
ground truth (``label``, ``regions``) and the outcome. A trainer that samples
investigations (GRPO: several per image, advantages from the rewards' spread) writes
each sampled investigation as a record and scores it here. Every function reads only the
record; none runs a tool or a model.

========================  ==========  ================================================
reward                    range       what it measures
========================  ==========  ================================================
:func:`correctness`       -1, 0, 1    the verdict's label against the truth
:func:`calibration`       [-1, 0]     the log score of ``p_ai``
:func:`citations`         [-1, 1]     every ``[En]`` exists and supports the verdict
:func:`localisation`      [0, 1]      the verdict's boxes against the known regions
:func:`tool_calls`        [-1, 0]     tool calls name a tool and fit its schema
:func:`steps`             (-inf, 0]   minus the number of reasoning turns
========================  ==========  ================================================

:func:`total` weighs them (:class:`Weights`); a reward that does not apply (no known
region) adds nothing. Scores are for one case: a case the export split into parts
(``parts > 1``) is scored on its last part, which holds the verdict.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from sleuth.agent.backends.parsing import parse_verdict
from sleuth.agent.weighing import NEGLIGIBLE
from sleuth.tools import Box

Trace = Mapping[str, Any]
"""One exported record (see :mod:`sleuth.evaluation.traces`)."""

TRUTH = {"fake": "ai_generated", "real": "real"}
SIDE = {"ai_generated": "ai", "real": "real"}
"""The way (:func:`towards`) of the evidence that supports each verdict label."""
EPS = 0.01
"""Probabilities are clipped to [EPS, 1 - EPS] in the log score: one confidently wrong case
costs at most ln(1/EPS) = 4.6 nats, the normalising constant."""
CITATION = re.compile(r"\[(E\d+)\]")


def correctness(trace: Trace) -> float:
    """Return 1 when the verdict's label is the truth, 0 for an abstention, -1 when wrong.

    The truth of a ``fake`` image is ``ai_generated`` and of a ``real`` one ``real``; the
    label is the case's final one (``outcome.label``), ``uncertain`` an abstention.
    """
    label = trace["outcome"]["label"]
    if label == "uncertain":
        return 0.0
    return 1.0 if TRUTH[trace["label"]] == label else -1.0


def calibration(trace: Trace) -> float:
    """Return the normalised log score of ``p_ai``: ``ln(p_true) / ln(1 / EPS)``.

    ``p_true`` is the probability the case's final ``p_ai`` gives the true label
    (``p_ai`` for a fake, ``1 - p_ai`` for a real image), clipped to ``[EPS, 1 - EPS]``.
    0 is a confident right answer, about -0.15 a coin toss (p = 0.5), -1 a confident wrong
    one. A proper scoring rule: the expected score is best when ``p_ai`` is the true
    frequency, so it rewards honest probabilities, abstentions included.
    """
    p_ai = float(trace["outcome"]["p_ai"])
    p_true = p_ai if trace["label"] == "fake" else 1.0 - p_ai
    p_true = min(max(p_true, EPS), 1.0 - EPS)
    return math.log(p_true) / math.log(1.0 / EPS)


def written_verdict(trace: Trace) -> dict[str, Any] | None:
    """Return the verdict JSON the last assistant turn wrote, or None (no verdict written).

    A case stopped by the step budget ends on tool calls and has none.
    """
    answers = [m for m in trace["messages"] if m.get("role") == "assistant"]
    if not answers or answers[-1].get("tool_calls"):
        return None
    content = answers[-1].get("content")
    text = content if isinstance(content, str) else ""
    verdict = parse_verdict(text)
    return verdict.model_dump() if verdict is not None else None


def citations(trace: Trace) -> float:
    """Return how well the verdict's citations hold: the mean of one score per citation.

    The citations are every ``[En]`` in the written verdict's explanation and every id in
    its ``cite`` list (each id once). The written label says which way the claim goes,
    ``ai_generated`` towards AI and ``real`` towards a real capture, and an item's way is
    :func:`towards`: what it did to ``p_ai``. Each cited id scores:

    - **-1**: it names no evidence item of the case, or an item of kind ``error`` (a tool
      that failed found nothing): a fabricated citation;
    - **+1**: the item goes the written label's way;
    - **0**: it goes neither way, or the other way (mentioning counter-evidence is honest,
      but it does not support the claim).

    A verdict that cites nothing, and a case with no written verdict, score 0.
    """
    verdict = written_verdict(trace)
    if verdict is None:
        return 0.0
    cited = list(dict.fromkeys([*CITATION.findall(verdict["explanation"]), *verdict["cite"]]))
    if not cited:
        return 0.0
    evidence = {e["id"]: e for e in trace["evidence"] if e.get("kind") != "error"}
    side = SIDE[verdict["label"]]
    score = 0.0
    for item_id in cited:
        item = evidence.get(item_id)
        if item is None:
            score -= 1.0
        elif towards(item) == side:
            score += 1.0
    return score / len(cited)


def towards(item: Mapping[str, Any]) -> str:
    """Return which way an evidence item of a trace goes: ``ai``, ``real`` or ``none``.

    Its effect on ``p_ai`` when it has one: the fusion's log-odds ``contribution`` goes
    towards AI from +0.05, towards a real capture from -0.05, and neither way between
    (:data:`sleuth.agent.weighing.NEGLIGIBLE`, the threshold every surface words effects
    with). An item without a term in ``p_ai`` (a regional re-run, a zoom) goes the way of
    its tool's own reading (``direction``; ``neutral`` is neither way).
    """
    contribution = item.get("contribution")
    if contribution is not None:
        if contribution >= NEGLIGIBLE:
            return "ai"
        return "real" if contribution <= -NEGLIGIBLE else "none"
    direction = item.get("direction")
    return direction if direction in ("ai", "real") else "none"


def localisation(trace: Trace) -> float | None:
    """Return how well the verdict's boxes cover the known regions, or None without any.

    With known regions ``R`` (a composite's pasted box) and the verdict's boxes ``B``
    (``outcome.boxes``, original pixels)::

        0.5 * mean over r in R of max over b in B of IoU(r, b)     (each region found)
      + 0.5 * mean over b in B of max over r in R of IoU(b, r)     (each box on a region)

    so a box on the region scores near 1, a box elsewhere 0, no box 0, and covering the
    image with many boxes does not pay.
    """
    regions = [_box(r) for r in trace.get("regions") or ()]
    if not regions:
        return None
    boxes = [_box(b) for b in trace["outcome"].get("boxes") or ()]
    if not boxes:
        return 0.0
    found = sum(max(r.iou(b) for b in boxes) for r in regions) / len(regions)
    placed = sum(max(b.iou(r) for r in regions) for b in boxes) / len(boxes)
    return 0.5 * found + 0.5 * placed


def _box(coords: Any) -> Box:
    x0, y0, x1, y1 = coords
    return Box(x0=x0, y0=y0, x1=x1, y1=y1)


def call_problems(trace: Trace) -> list[str]:
    """Return what is wrong with each malformed tool call of the trace (one line each).

    A call is well formed when its name is one of the trace's tools and its arguments
    are a JSON object (a string in the ``openai`` layout, an object in ``trl``) that
    validates against that tool's ``parameters`` schema (JSON Schema, as the server is
    sent it: every field required, no others, boxes within the model's frame).
    """
    from jsonschema import Draft202012Validator

    schemas = {t["function"]["name"]: t["function"].get("parameters") for t in trace["tools"]}
    problems = []
    for message in trace["messages"]:
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            name, args = function.get("name"), function.get("arguments")
            if name not in schemas:
                problems.append(f"{name!r} is no tool")
                continue
            if isinstance(args, str):
                try:
                    args = json.loads(args)
                except ValueError as err:
                    problems.append(f"{name}: arguments are not JSON ({err})")
                    continue
            if not isinstance(args, dict):
                problems.append(f"{name}: arguments are not an object")
                continue
            error = next(iter(Draft202012Validator(schemas[name] or {}).iter_errors(args)), None)
            if error is not None:
                problems.append(f"{name}: {error.message}")
    return problems


def tool_calls(trace: Trace) -> float:
    """Return minus the share of malformed calls (:func:`call_problems`); 0 without calls."""
    calls = sum(len(m.get("tool_calls") or ()) for m in trace["messages"])
    return -len(call_problems(trace)) / calls if calls else 0.0


def steps(trace: Trace) -> float:
    """Return minus the number of reasoning turns of the case (``outcome.turns``)."""
    return -float(trace["outcome"]["turns"])


REWARDS: dict[str, Callable[[Trace], float | None]] = {
    "correctness": correctness,
    "calibration": calibration,
    "citations": citations,
    "localisation": localisation,
    "tool_calls": tool_calls,
    "steps": steps,
}
"""Every reward by name."""


@dataclass(frozen=True)
class Weights:
    """The weight of each reward in :func:`total`.

    The defaults put the verdict first (a right label is worth 1, the log score up to 0.5
    more), then what makes it trustworthy (citations, boxes on a known region, calls that
    run), and charge 0.02 per turn: a sixth turn must be worth more than a tenth of the
    log score's range to pay for itself.
    """

    correctness: float = 1.0
    calibration: float = 0.5
    citations: float = 0.25
    localisation: float = 0.5
    tool_calls: float = 0.5
    steps: float = 0.02


def score(trace: Trace) -> dict[str, float | None]:
    """Return every reward of a trace by name (None: does not apply)."""
    return {name: reward(trace) for name, reward in REWARDS.items()}


def total(trace: Trace, weights: Weights | None = None) -> float:
    """Return the weighted sum of the rewards that apply (see :class:`Weights`)."""
    w = asdict(weights or Weights())
    return sum(w[name] * value for name, value in score(trace).items() if value is not None)
