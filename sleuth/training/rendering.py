"""Render training examples exactly as the serving engine renders the request.

A model answers well only the prompts it was trained on, token for token. The prompt of
an example is rendered by the model's own chat template after the two normalisations
vLLM's OpenAI server applies, with the generation prompt
(:func:`~sleuth.agent.backends.local.render_prompt`, which the ``transformers`` backend
generates from), and its images go through the model's processor.
The target is the answer as the same template writes it after that prompt, up to and
including the end-of-turn token: what the model must generate for the server to stop
there and parse it (tool calls in the template's own format).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sleuth.agent.backends.local import (
    message_images,
    normalised_messages,
    render_prompt,
    served_tools,
)
from sleuth.tools import SleuthError

__all__ = [
    "IGNORE",
    "EncodedExample",
    "answer_text",
    "collate",
    "encode",
    "encode_prompt",
    "render_prompt",
]

IGNORE = -100
"""The label of a token that is not learned (the prompt, padding)."""


def answer_text(
    processor: Any,
    messages: Sequence[dict],
    tools: Sequence[dict] | None,
    answer: dict[str, Any],
) -> str:
    """Return the answer as the chat template writes it after the request's prompt.

    The conversation with the answer appended is rendered without a generation prompt;
    the answer is what follows the request's prompt, cut after the tokenizer's
    end-of-turn token (what follows it is never generated).

    Parameters
    ----------
    processor : transformers.ProcessorMixin
        The model's processor.
    messages : sequence of dict
        The request's OpenAI chat messages.
    tools : sequence of dict or None
        The request's tool schemas.
    answer : dict
        The assistant message that answered.

    Returns
    -------
    str
        The text to learn: for Qwen2.5-VL a tool call block or the verdict JSON,
        followed by ``<|im_end|>``.

    Raises
    ------
    SleuthError
        If the template does not write the conversation as the prompt followed by the
        answer (the model could then not be taught to produce it).
    """
    prompt = render_prompt(processor, messages, tools)
    whole = processor.apply_chat_template(
        normalised_messages([*messages, answer]),
        tools=served_tools(tools),
        add_generation_prompt=False,
        tokenize=False,
    )
    if not whole.startswith(prompt):
        raise SleuthError(
            "the model's chat template does not write an answer after the request's "
            "generation prompt; this model's template cannot be trained on by prefix"
        )
    text = whole[len(prompt) :]
    end = getattr(processor.tokenizer, "eos_token", None)
    if end and end in text:
        text = text[: text.index(end) + len(end)]
    return text


@dataclass
class EncodedExample:
    """Model inputs for one example (batch size 1) and its token counts.

    Attributes
    ----------
    inputs : dict
        ``input_ids``, ``attention_mask``, ``labels`` (:data:`IGNORE` on the prompt) and the
        processor's image tensors (``pixel_values``, ``image_grid_thw``, ...).
    prompt_tokens : int
        Tokens of the prompt, image tokens included.
    target_tokens : int
        Tokens learned.
    """

    inputs: dict[str, Any]
    prompt_tokens: int
    target_tokens: int

    @property
    def tokens(self) -> int:
        """The sequence's length."""
        return self.prompt_tokens + self.target_tokens


def encode_prompt(processor: Any, messages: Sequence[dict], tools: Sequence[dict] | None) -> dict:
    """Return the model inputs of a request (token ids, pixels, grids), batch size 1.

    Parameters
    ----------
    processor : transformers.ProcessorMixin
        The model's processor.
    messages : sequence of dict
        OpenAI chat messages.
    tools : sequence of dict or None
        OpenAI function tools as a client sends them.

    Returns
    -------
    dict
        The processor's output as PyTorch tensors.
    """
    images = message_images(messages)
    return dict(
        processor(
            text=[render_prompt(processor, messages, tools)],
            images=images or None,
            return_tensors="pt",
        )
    )


def encode(
    processor: Any,
    messages: Sequence[dict],
    tools: Sequence[dict] | None,
    target: str,
) -> EncodedExample:
    """Return the inputs of a request followed by ``target``, learning ``target`` only.

    Parameters
    ----------
    processor : transformers.ProcessorMixin
        The model's processor.
    messages : sequence of dict
        The request's OpenAI chat messages.
    tools : sequence of dict or None
        The request's tool schemas.
    target : str
        The text to learn after the prompt (see :func:`answer_text`).

    Returns
    -------
    EncodedExample
    """
    import torch

    inputs = encode_prompt(processor, messages, tools)
    ids = processor.tokenizer(target, add_special_tokens=False, return_tensors="pt")["input_ids"]
    prompt_len = inputs["input_ids"].shape[1]
    for key, value in list(inputs.items()):  # extend every per-token tensor over the target
        if isinstance(value, torch.Tensor) and value.shape[:2] == (1, prompt_len):
            if key == "input_ids":
                fill = ids.to(value.dtype)
            elif key == "attention_mask":
                fill = torch.ones_like(ids, dtype=value.dtype)
            else:
                fill = torch.zeros_like(ids, dtype=value.dtype)
            inputs[key] = torch.cat([value, fill], dim=1)
    labels = torch.full_like(inputs["input_ids"], IGNORE)
    labels[:, prompt_len:] = ids
    inputs["labels"] = labels
    return EncodedExample(inputs, prompt_len, int(ids.shape[1]))


def collate(batch: Sequence[EncodedExample], pad_token_id: int) -> dict[str, Any]:
    """Stack encoded examples into one batch, padding on the right.

    Per-token tensors are padded (``labels`` with :data:`IGNORE`, the attention mask with
    0, ids with ``pad_token_id``); image tensors, which the processor already flattens
    across images, are concatenated.

    Parameters
    ----------
    batch : sequence of EncodedExample
    pad_token_id : int

    Returns
    -------
    dict
        The model's keyword arguments.
    """
    import torch

    if len(batch) == 1:
        return dict(batch[0].inputs)
    longest = max(example.tokens for example in batch)
    out: dict[str, Any] = {}
    for key in batch[0].inputs:
        values = [example.inputs[key] for example in batch]
        if all(
            v.dim() == 2 and v.shape == (1, e.tokens) for v, e in zip(values, batch, strict=True)
        ):
            pad = {"labels": IGNORE, "input_ids": pad_token_id}.get(key, 0)
            out[key] = torch.cat(
                [torch.nn.functional.pad(v, (0, longest - v.shape[1]), value=pad) for v in values]
            )
        else:
            out[key] = torch.cat(values)
    return out
