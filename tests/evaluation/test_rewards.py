"""Rewards on hand-made traces: each one moves the way its definition says."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sleuth.agent.frames import BoxFrame
from sleuth.agent.toolschemas import tool_schemas
from sleuth.evaluation import rewards
from sleuth.tools import ToolRegistry

REGION = [100, 100, 200, 200]


@pytest.fixture(scope="module")
def tools() -> list[dict[str, Any]]:
    return tool_schemas(ToolRegistry.discover(), BoxFrame.original(400, 300))


def call(name: str, arguments: str, n: int = 0) -> dict[str, Any]:
    return {
        "id": f"call_{n}",
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }


def ela(**args: Any) -> str:
    """Arguments of an ela call: every field of the strict schema, null for defaults."""
    return json.dumps({"box": REGION, "quality": None, "block": None, "top_k": None} | args)


def trace(
    tools,
    *,
    label: str = "fake",
    verdict: dict[str, Any] | None = None,
    p_ai: float = 0.9,
    final: str = "ai_generated",
    calls: list[dict[str, Any]] | None = None,
    turns: int = 2,
    regions: list[list[int]] | None = None,
    boxes: list[list[int]] | None = None,
) -> dict[str, Any]:
    """A record as the export writes it, small: one round of calls, then the verdict."""
    written = {
        "label": "ai_generated",
        "p_ai": p_ai,
        "explanation": "The generator's settings are in the file [E1]; the noise agrees [E3].",
        "cite": ["E1", "E3"],
        "boxes": [],
    } | (verdict or {})
    calls = calls if calls is not None else [call("ela", ela())]
    return {
        "messages": [
            {"role": "system", "content": "rules"},
            {"role": "user", "content": "the case"},
            {"role": "assistant", "content": None, "tool_calls": calls},
            *({"role": "tool", "tool_call_id": c["id"], "content": "result"} for c in calls),
            {"role": "assistant", "content": json.dumps(written)},
        ],
        "tools": tools,
        "label": label,
        "regions": regions or [],
        "evidence": [
            {
                "id": "E1",
                "tool": "provenance",
                "kind": "provenance",
                "direction": "ai",
                "contribution": 4.0,
            },
            {
                "id": "E2",
                "tool": "colour",
                "kind": "signal",
                "direction": "neutral",
                "contribution": -0.4,
            },
            {
                "id": "E3",
                "tool": "noise",
                "kind": "signal",
                "direction": "ai",
                "contribution": None,
            },
            {
                "id": "E4",
                "tool": "spectrum",
                "kind": "signal",
                "direction": "ai",
                "contribution": 0.01,
            },
            {
                "id": "E5",
                "tool": "texture",
                "kind": "error",
                "direction": "neutral",
                "contribution": None,
            },
            {
                "id": "E6",
                "tool": "ela",
                "kind": "signal",
                "direction": "neutral",
                "contribution": None,
            },
        ],
        "outcome": {"label": final, "p_ai": p_ai, "boxes": boxes or [], "turns": turns},
    }


def test_a_right_grounded_verdict_scores_above_a_wrong_one(tools):
    right = trace(tools)
    wrong = trace(tools, label="real")  # the same verdict on a real image
    assert rewards.correctness(right) == 1.0 and rewards.correctness(wrong) == -1.0
    assert rewards.calibration(right) > rewards.calibration(wrong)
    assert rewards.citations(right) == 1.0
    assert rewards.total(right) > rewards.total(wrong)
    abstained = trace(tools, final="uncertain", p_ai=0.5)
    assert rewards.correctness(abstained) == 0.0
    assert rewards.total(wrong) < rewards.total(abstained) < rewards.total(right)


def test_the_log_score_is_best_for_confident_right_answers(tools):
    scores = [rewards.calibration(trace(tools, p_ai=p)) for p in (0.999, 0.9, 0.6, 0.5, 0.1)]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] == pytest.approx(rewards.calibration(trace(tools, p_ai=0.99)))  # clipped
    assert rewards.calibration(trace(tools, p_ai=0.0)) == pytest.approx(-1.0)
    assert rewards.calibration(trace(tools, label="real", p_ai=0.1)) == pytest.approx(
        rewards.calibration(trace(tools, p_ai=0.9))
    )


def test_citations_must_exist_and_point_the_verdicts_way(tools):
    def cited(*ids: str, label: str = "ai_generated") -> float:
        text = "Because " + " ".join(f"[{i}]" for i in ids) + "."
        return rewards.citations(
            trace(tools, verdict={"label": label, "explanation": text, "cite": []})
        )

    assert cited("E1", "E3") == 1.0  # E3 has no term in p_ai: its tool's reading counts
    assert cited("E1", "E2") == 0.5  # counter-evidence is mentioned, not counted as support
    assert cited("E1", "E4") == 0.5  # the tool reads "ai", but it does not move p_ai
    assert cited("E1", "E6") == 0.5  # neutral
    assert cited("E1", "E9") == 0.0  # E9 does not exist: -1
    assert cited("E5") == -1.0  # a failed tool's item supports nothing
    assert cited("E2", label="real") == 1.0 and cited("E1", label="real") == 0.0
    assert cited() == 0.0
    listed_only = trace(tools, verdict={"explanation": "No citation here.", "cite": ["E8"]})
    assert rewards.citations(listed_only) == -1.0  # the cite list counts too
    budget = trace(tools)
    budget["messages"] = budget["messages"][:-1]  # stopped on tool calls: no verdict written
    assert rewards.written_verdict(budget) is None and rewards.citations(budget) == 0.0


def test_a_box_on_the_region_beats_a_box_elsewhere(tools):
    def located(*boxes: list[int]) -> float | None:
        return rewards.localisation(trace(tools, regions=[REGION], boxes=list(boxes)))

    on = located([105, 95, 200, 210])
    elsewhere = located([250, 200, 350, 290])
    assert on > 0.8 and elsewhere == 0.0 and located() == 0.0
    assert located(REGION) == 1.0
    assert on > located([105, 95, 200, 210], [0, 0, 400, 300], [250, 200, 350, 290]) > elsewhere
    assert rewards.localisation(trace(tools, boxes=[REGION])) is None  # no known region
    assert rewards.total(trace(tools, regions=[REGION], boxes=[REGION])) > rewards.total(
        trace(tools, regions=[REGION], boxes=[[250, 200, 350, 290]])
    )


def test_malformed_tool_calls_are_penalised(tools):
    good = call("ela", ela(quality=90))
    assert rewards.call_problems(trace(tools, calls=[good])) == []
    assert rewards.tool_calls(trace(tools, calls=[good])) == 0.0
    bad = [
        call("magnify", json.dumps({"box": REGION})),  # no such tool
        call("ela", '{"box": [100, 100, 200'),  # not JSON
        call("ela", ela(box=[100, 100, 200])),  # three numbers
        call("ela", ela(box=[0, 0, 500, 300])),  # outside the frame
        call("ela", ela(mode="fast")),  # a field the tool does not have
        call("ela", json.dumps({"box": REGION})),  # strict: every field is required
        call("ela", ela(quality="high")),  # the wrong type
    ]
    for n, malformed in enumerate(bad):
        problems = rewards.call_problems(trace(tools, calls=[good, malformed]))
        assert len(problems) == 1, (n, problems)
        assert rewards.tool_calls(trace(tools, calls=[good, malformed])) == -0.5, n
    assert rewards.total(trace(tools, calls=[good, bad[0]])) < rewards.total(
        trace(tools, calls=[good])
    )
    no_calls = trace(tools, calls=[])
    assert rewards.tool_calls(no_calls) == 0.0


def test_trl_layout_arguments_are_objects(tools):
    record = trace(tools)
    for message in record["messages"]:
        for c in message.get("tool_calls") or ():
            c["function"]["arguments"] = json.loads(c["function"]["arguments"])
    assert rewards.call_problems(record) == []


def test_more_steps_cost_more(tools):
    short, long = trace(tools, turns=2), trace(tools, turns=6)
    assert rewards.steps(short) > rewards.steps(long)
    assert rewards.total(short) > rewards.total(long)
    assert rewards.total(short) - rewards.total(long) == pytest.approx(4 * rewards.Weights().steps)


def test_score_names_every_reward_and_total_weighs_them(tools):
    record = trace(tools, regions=[REGION], boxes=[REGION])
    scores = rewards.score(record)
    assert set(scores) == set(rewards.REWARDS) and all(v is not None for v in scores.values())
    weights = rewards.Weights(
        correctness=1, calibration=0, citations=0, localisation=0, tool_calls=0, steps=0
    )
    assert rewards.total(record, weights) == 1.0
