"""vLLM (CPU build) serves the scripted tiny VLM: tool calls, verdicts, schemas, logprobs."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from sleuth.training.rendering import encode_prompt
from tests.engines import synthetic

pytestmark = pytest.mark.slow
MODEL = "tiny-vlm"


@pytest.fixture(scope="module")
def client(synthetic_vllm: str):
    from openai import OpenAI

    with OpenAI(base_url=synthetic_vllm, api_key="EMPTY", timeout=120, max_retries=0) as c:
        yield c


@pytest.fixture(scope="module")
def unseen() -> list:
    return synthetic.examples(3, seed=2)  # never trained on


def test_prompt_tokens_match_training_rendering(synthetic_vllm: str, synthetic_model: Path, unseen):
    """vLLM renders and tokenizes a request exactly as the trainer did (images included)."""
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(synthetic_model)
    root = synthetic_vllm.removesuffix("/v1")
    for example in unseen:
        response = httpx.post(
            f"{root}/tokenize",
            json={
                "model": MODEL,
                "messages": example.messages,
                "tools": example.tools,
                "add_generation_prompt": True,
            },
            timeout=60,
        )
        response.raise_for_status()
        ours = encode_prompt(processor, example.messages, example.tools)["input_ids"][0].tolist()
        assert response.json()["tokens"] == ours


def test_first_turn_returns_a_parsed_zoom_call(client, unseen) -> None:
    for example in unseen[0::2]:
        response = client.chat.completions.create(
            model=MODEL,
            messages=example.messages,
            tools=example.tools,
            temperature=0,
            max_tokens=96,
        )
        choice = response.choices[0]
        assert choice.finish_reason == "tool_calls"
        assert not choice.message.content
        (call,) = choice.message.tool_calls
        assert call.function.name == "zoom"
        assert json.loads(call.function.arguments) == synthetic.ZOOM_ARGS


def test_second_turn_returns_the_verdict(client, unseen) -> None:
    for example in unseen[1::2]:
        response = client.chat.completions.create(
            model=MODEL,
            messages=example.messages,
            tools=example.tools,
            temperature=0,
            max_tokens=96,
        )
        choice = response.choices[0]
        assert choice.finish_reason == "stop"
        assert not choice.message.tool_calls
        assert choice.message.content == synthetic.VERDICT_JSON


def test_full_loop_feeding_back_the_servers_own_tool_call(client, unseen) -> None:
    first = synthetic.turn_one(*_rngs(7))
    response = client.chat.completions.create(
        model=MODEL, messages=first, tools=synthetic.TOOLS, temperature=0, max_tokens=96
    )
    message = response.choices[0].message
    call = message.tool_calls[0]
    crop = synthetic.random_image(_rngs(8)[0])
    follow_up = [
        *first,
        message.model_dump(exclude_none=True, include={"role", "content", "tool_calls"}),
        {
            "role": "tool",
            "tool_call_id": call.id,
            "content": [
                {"type": "text", "text": "Crop 1 of the region, ela_max=0.31."},
                {"type": "image_url", "image_url": {"url": crop}},
            ],
        },
    ]
    response = client.chat.completions.create(
        model=MODEL, messages=follow_up, tools=synthetic.TOOLS, temperature=0, max_tokens=96
    )
    assert response.choices[0].message.content == synthetic.VERDICT_JSON


def test_response_format_json_schema(client, unseen) -> None:
    response = client.chat.completions.create(
        model=MODEL,
        messages=unseen[1].messages,
        tools=synthetic.TOOLS,
        temperature=0,
        max_tokens=96,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "verdict", "schema": synthetic.VERDICT_SCHEMA, "strict": True},
        },
    )
    content = response.choices[0].message.content
    verdict = json.loads(content)
    assert set(verdict) == {"verdict", "confidence", "boxes"}
    assert verdict["verdict"] in {"ai", "real", "uncertain"}
    assert content == synthetic.VERDICT_JSON  # the constrained answer is the scripted one


def test_logprobs(client, unseen) -> None:
    response = client.chat.completions.create(
        model=MODEL,
        messages=unseen[1].messages,
        tools=synthetic.TOOLS,
        temperature=0,
        max_tokens=96,
        logprobs=True,
        top_logprobs=2,
    )
    tokens = response.choices[0].logprobs.content
    assert "".join(t.token for t in tokens).startswith(synthetic.VERDICT_JSON)
    for token in tokens:
        assert token.logprob <= 0.0
        assert token.top_logprobs[0].logprob == pytest.approx(token.logprob, abs=1e-4)


def _rngs(seed: int):
    import random

    import numpy as np

    return np.random.default_rng(seed), random.Random(seed)
