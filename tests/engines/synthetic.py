"""A synthetic two-turn script of the agent's shape, for the engines' own tests.

Turn 1: system + user [image, question] + tools -> a ``zoom`` tool call with a fixed box.
Turn 2: the same + that tool call + a tool message [text, crop image] -> a fixed JSON verdict.

Every example gets a fresh random image, question and tool result, so the trained model keys
on the prompt's structure only; held-out prompts come from another seed.
"""

from __future__ import annotations

import base64
import io
import json
import random

import numpy as np
from PIL import Image

from tests.engines.scripted import ChatExample

SYSTEM = "You are a forensic analyst. Use the tools, then answer with a JSON verdict."
ZOOM_ARGS = {"x0": 60, "y0": 40, "x1": 200, "y1": 120}
VERDICT = {"verdict": "ai", "confidence": 0.9, "boxes": [[60, 40, 200, 120]]}
TOOL_CALL = (
    "<tool_call>\n" + json.dumps({"name": "zoom", "arguments": ZOOM_ARGS}) + "\n</tool_call>"
)
# Compact, as vLLM's structured outputs write it (xgrammar without free whitespace), so the
# answer is the same with and without a response_format.
VERDICT_JSON = json.dumps(VERDICT, separators=(",", ":"))
VERDICT_SCHEMA = {
    "type": "object",
    "properties": {
        "verdict": {"type": "string", "enum": ["ai", "real", "uncertain"]},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "boxes": {
            "type": "array",
            "maxItems": 4,
            "items": {
                "type": "array",
                "minItems": 4,
                "maxItems": 4,
                "items": {"type": "integer", "minimum": 0, "maximum": 4096},
            },
        },
    },
    "required": ["verdict", "confidence", "boxes"],
    "additionalProperties": False,
}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "zoom",
            "description": "Crop a region of the image (original pixels) and enlarge it.",
            "parameters": {
                "type": "object",
                "properties": {
                    k: {"type": "integer", "minimum": 0, "maximum": 4096}
                    for k in ("x0", "y0", "x1", "y1")
                },
                "required": ["x0", "y0", "x1", "y1"],
                "additionalProperties": False,
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "ela",
            "description": "Error level analysis: recompress and map the differences.",
            "parameters": {
                "type": "object",
                "properties": {"quality": {"type": "integer", "minimum": 50, "maximum": 100}},
                "required": [],
                "additionalProperties": False,
            },
        },
    },
]
_WORDS = (
    "is this image photo picture real fake ai generated edited made by a camera look at check "
    "the region please tell me whether what do you think about it can show which part was "
    "changed synthetic authentic"
).split()


def data_url(image: Image.Image) -> str:
    """PNG data URL of ``image``."""
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def random_image(rng: np.random.Generator) -> str:
    """A random image (noise over a colour field, random size) as a data URL."""
    w, h = int(rng.integers(48, 400)), int(rng.integers(48, 400))
    base = rng.integers(0, 256, 3)
    arr = np.clip(base + rng.normal(0, rng.uniform(5, 80), (h, w, 3)), 0, 255).astype(np.uint8)
    return data_url(Image.fromarray(arr))


def turn_one(rng: np.random.Generator, words: random.Random) -> list[dict]:
    """System + user [image, question]."""
    question = " ".join(words.choice(_WORDS) for _ in range(words.randint(3, 12))) + "?"
    return [
        {"role": "system", "content": SYSTEM},
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": random_image(rng)}},
                {"type": "text", "text": question.capitalize()},
            ],
        },
    ]


def turn_two(rng: np.random.Generator, words: random.Random) -> list[dict]:
    """Turn one, the zoom call as the client sends it back, and the tool's answer."""
    call_id = f"call-{words.getrandbits(40):010x}"
    note = f"Crop {words.randint(1, 9)} of the region, ela_max={words.random():.2f}."
    return [
        *turn_one(rng, words),
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": "zoom", "arguments": json.dumps(ZOOM_ARGS)},
                }
            ],
        },
        {
            "role": "tool",
            "tool_call_id": call_id,
            "content": [
                {"type": "text", "text": note},
                {"type": "image_url", "image_url": {"url": random_image(rng)}},
            ],
        },
    ]


def examples(n: int, seed: int = 0) -> list[ChatExample]:
    """``n`` examples of each turn, seeded (use another seed for held-out prompts)."""
    rng, words = np.random.default_rng(seed), random.Random(seed)
    out = []
    for _ in range(n):
        out.append(ChatExample(turn_one(rng, words), TOOLS, TOOL_CALL))
        out.append(ChatExample(turn_two(rng, words), TOOLS, VERDICT_JSON))
    return out
