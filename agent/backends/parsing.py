"""Reading what a model wrote: tool calls, the verdict JSON, the label's probability.

Shared by the model backends, so that a server without tool parsing or structured output
(or the in-process transformers path) reads the same way as vLLM.
"""

from __future__ import annotations

import json
import math
import re
import secrets
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from sleuth.agent.backends.base import ModelVerdict, Opinion
from sleuth.agent.frames import BoxFrame
from sleuth.tools import Box, ToolInputError

TOOL_CALL = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)
LABELS = ("ai_generated", "real")
LABEL_KEY = re.compile(r'"label"\s*:\s*"')


def parse_tool_calls(text: str) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]]:
    """Split hermes-format output into text, tool calls and unreadable tool calls.

    Parameters
    ----------
    text : str
        Model output that may hold ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``
        blocks (Qwen's and NousResearch's format).

    Returns
    -------
    content : str
        The text outside the blocks.
    calls : list of dict
        LangChain tool calls (``name``, ``args``, ``id``, ``type``).
    invalid : list of dict
        LangChain invalid tool calls, with the reason in ``error``.
    """
    calls: list[dict[str, Any]] = []
    invalid: list[dict[str, Any]] = []
    for raw in TOOL_CALL.findall(text):
        call_id = f"call_{secrets.token_hex(6)}"
        try:
            data = json.loads(raw)
            name, args = data["name"], data.get("arguments", {})
            if isinstance(args, str):
                args = json.loads(args)
            if not isinstance(name, str) or not isinstance(args, dict):
                raise TypeError("name must be a string and arguments an object")
        except (ValueError, KeyError, TypeError) as err:
            invalid.append(
                {
                    "name": None,
                    "args": raw[:500],
                    "id": call_id,
                    "error": f"{type(err).__name__}: {err}",
                    "type": "invalid_tool_call",
                }
            )
            continue
        calls.append({"name": name, "args": args, "id": call_id, "type": "tool_call"})
    content = TOOL_CALL.sub("", text).strip()
    return content, calls, invalid


def parse_verdict(text: str) -> ModelVerdict | None:
    """Find the verdict JSON in ``text`` (bare, fenced, or among other words), or None."""
    decoder = json.JSONDecoder()
    for start in [m.start() for m in re.finditer(r"\{", text)]:
        try:
            data, _ = decoder.raw_decode(text, start)
        except ValueError:
            continue
        if isinstance(data, dict) and "label" in data:
            try:
                return ModelVerdict.model_validate(data)
            except ValidationError:
                continue
    return None


def label_probability(
    tokens: Sequence[str], alternatives: Sequence[dict[str, float]]
) -> float | None:
    """Return P(ai_generated) from the logprobs of the label's first token.

    Parameters
    ----------
    tokens : sequence of str
        The generated tokens, in order.
    alternatives : sequence of dict
        Per generated token, the top alternatives as ``{token: logprob}``.

    Returns
    -------
    float or None
        ``P(ai) / (P(ai) + P(real))`` over the alternatives at the position where the
        label's value starts; None when the label or its alternatives are not found.
    """
    text = ""
    for index, token in enumerate(tokens):
        before = text
        text += token
        match = LABEL_KEY.search(text)
        if match is None:
            continue
        offset = match.end() - len(before)
        if offset < 0:
            return None
        position = index
        if offset >= len(token):  # the value starts with the next token
            if index + 1 >= len(tokens):
                return None
            position, offset = index + 1, 0
        masses = dict.fromkeys(LABELS, 0.0)
        for alt, logprob in alternatives[position].items():
            piece = alt[offset:].strip()
            for label in LABELS:
                if piece and label.startswith(piece):
                    masses[label] += math.exp(logprob)
                    break
        total = sum(masses.values())
        return masses["ai_generated"] / total if total > 0 else None
    return None


def opinion_from(verdict: ModelVerdict, frame: BoxFrame, p_label: float | None) -> Opinion:
    """Turn a model's verdict into an :class:`Opinion`, boxes in original pixels.

    Boxes the model wrote outside its frame are dropped (the explanation keeps its
    words); the probability is the label token's when served, else the model's ``p_ai``.
    """
    boxes: list[Box] = []
    for coords in verdict.boxes:
        try:
            boxes.append(frame.to_original(coords))
        except ToolInputError:
            continue
    p_model = p_label if p_label is not None else verdict.p_ai
    return Opinion(p_model=p_model, explanation=verdict.explanation, boxes=boxes)
