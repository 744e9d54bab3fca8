"""The training rendering: prompts as vLLM renders them, answers as the template writes them."""

from __future__ import annotations

import json

import pytest

from sleuth.tools import SleuthError
from tests.agent.scripted_chats import hermes
from tests.engines.fixtures import require_transformers
from tests.engines.tiny_vlm import EOS_TOKEN, tiny_vlm_dir


@pytest.fixture(scope="module")
def processor():
    require_transformers()
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(tiny_vlm_dir())


@pytest.fixture(scope="module")
def examples(traces):
    from sleuth.training.examples import read_examples

    return read_examples(traces)


def test_a_tool_call_is_learned_as_the_parser_reads_it(processor, examples):
    from sleuth.training.rendering import answer_text

    example = next(e for e in examples if e.answer.get("tool_calls"))
    calls = [
        hermes(c["function"]["name"], json.loads(c["function"]["arguments"]))
        for c in example.answer["tool_calls"]
    ]
    text = answer_text(processor, example.messages, example.tools, example.answer)
    assert text == "\n".join(calls) + EOS_TOKEN


def test_a_verdict_is_learned_as_its_json(processor, examples):
    from sleuth.agent.backends.parsing import parse_verdict
    from sleuth.training.rendering import answer_text

    example = next(e for e in examples if not e.answer.get("tool_calls"))
    text = answer_text(processor, example.messages, example.tools, example.answer)
    assert text == example.answer["content"] + EOS_TOKEN
    assert parse_verdict(text.removesuffix(EOS_TOKEN)) is not None


def test_only_the_answer_is_learned(processor, examples):
    from sleuth.training.rendering import IGNORE, answer_text, encode, encode_prompt

    example = examples[0]
    target = answer_text(processor, example.messages, example.tools, example.answer)
    prompt = encode_prompt(processor, example.messages, example.tools)
    encoded = encode(processor, example.messages, example.tools, target)
    ids, labels = encoded.inputs["input_ids"][0], encoded.inputs["labels"][0]
    n = prompt["input_ids"].shape[1]
    assert encoded.prompt_tokens == n and encoded.tokens == ids.shape[0]
    assert ids[:n].tolist() == prompt["input_ids"][0].tolist()  # the served prompt, unchanged
    assert (labels[:n] == IGNORE).all() and labels[n:].tolist() == ids[n:].tolist()
    learned = processor.tokenizer.decode(ids[n:], skip_special_tokens=False)
    assert learned == target
    assert encoded.inputs["pixel_values"].shape == prompt["pixel_values"].shape


def test_a_batch_is_padded_on_the_right(processor, examples):
    import torch

    from sleuth.training.rendering import IGNORE, answer_text, collate, encode

    encoded = [
        encode(
            processor, e.messages, e.tools, answer_text(processor, e.messages, e.tools, e.answer)
        )
        for e in examples[:2]
    ]
    assert encoded[0].tokens != encoded[1].tokens
    batch = collate(encoded, pad_token_id=0)
    longest = max(e.tokens for e in encoded)
    assert batch["input_ids"].shape == (2, longest)
    for row, item in enumerate(encoded):
        pad = slice(item.tokens, None)
        assert (batch["labels"][row, pad] == IGNORE).all()
        assert (batch["attention_mask"][row, pad] == 0).all()
        assert batch["attention_mask"][row, : item.tokens].all()
    pixels = [e.inputs["pixel_values"] for e in encoded]
    assert torch.equal(batch["pixel_values"], torch.cat(pixels))
    assert batch["image_grid_thw"].shape[0] == sum(
        e.inputs["image_grid_thw"].shape[0] for e in encoded
    )


def test_a_template_that_rewrites_the_past_is_refused(examples):
    require_transformers()
    from transformers import AutoProcessor

    from sleuth.training.rendering import answer_text

    processor = AutoProcessor.from_pretrained(tiny_vlm_dir())
    processor.chat_template = (
        "{% for m in messages %}{% if loop.last and not add_generation_prompt %}[final] "
        "{% endif %}{{ m.role }}: {{ m.content }}\n{% endfor %}"
        "{% if add_generation_prompt %}assistant: {% endif %}"
    )
    example = examples[0]
    with pytest.raises(SleuthError, match="cannot be trained on by prefix"):
        answer_text(processor, example.messages, example.tools, example.answer)
