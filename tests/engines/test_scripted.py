"""The scripted trainer: exact greedy reproduction of the script on held-out prompts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sleuth.agent.backends.local import served_messages, served_tools
from tests.engines import synthetic
from tests.engines.scripted import ChatExample


def test_tools_rendered_as_vllm_hands_them_over() -> None:
    tools = [{"function": {"parameters": {"type": "object"}, "name": "f", "strict": True}}]
    assert served_tools(tools) == [
        {
            "type": "function",
            "function": {
                "name": "f",
                "description": None,
                "parameters": {"type": "object"},
                "strict": True,
            },
        }
    ]
    assert served_tools(None) is None and served_tools([]) is None


def test_tool_call_arguments_parsed_like_vllm() -> None:
    messages = synthetic.examples(1)[1].messages
    call = served_messages(messages)[0][2]["tool_calls"][0]["function"]
    assert call["arguments"] == synthetic.ZOOM_ARGS
    assert isinstance(messages[2]["tool_calls"][0]["function"]["arguments"], str)  # untouched


def test_examples_are_frozen() -> None:
    example = ChatExample([], None, "x")
    with pytest.raises(AttributeError):
        example.completion = "y"  # type: ignore[misc]


@pytest.mark.slow
def test_reproduces_script_on_held_out_prompts(synthetic_model: Path) -> None:
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from tests.engines.scripted import generate

    report = json.loads((synthetic_model / "training.json").read_text())
    assert report["min_margin"] >= 4.0 and report["min_held_out_margin"] >= 4.0
    processor = AutoProcessor.from_pretrained(synthetic_model)
    model = AutoModelForImageTextToText.from_pretrained(synthetic_model, dtype=torch.float32)
    model.eval()
    unseen = synthetic.examples(6, seed=2)  # neither trained on nor used to stop training
    got = [generate(model, processor, e.messages, e.tools) for e in unseen]
    assert got == [e.completion for e in unseen]
