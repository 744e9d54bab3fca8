"""The scripted model's lessons, recorded from the agent's own requests.

The agent runs against a scripted OpenAI-compatible server (``fake_server``) and every
request it sends is kept: that is, byte for byte, what vLLM receives from the agent and
what the transformers backend renders. Each request becomes a training example with the
answer the script wants: on the first turn a ``zoom`` call on :data:`ZOOM_BOX` (in the
model's input pixels), after the crop comes back the verdict :data:`VERDICT`.
"""

from __future__ import annotations

import json

from sleuth.api import open_session
from sleuth.settings import Settings
from tests.agent.conftest import encode, photo
from tests.agent.fake_server import serve, text, tool_call
from tests.engines.scripted import ChatExample
from tests.engines.tiny_vlm import MAX_PIXELS

SIZE = (448, 336)
"""Original size of every scripted image; the tiny model sees it at 252x168."""
ZOOM_BOX = [28, 28, 84, 84]
VERDICT = {
    "label": "ai_generated",
    "p_ai": 0.8,
    "explanation": "The zoomed region shows synthetic texture [E1].",
    "cite": ["E1"],
    "boxes": [ZOOM_BOX],
}
TOOLS = ["zoom", "noise"]
"""The tools of a scripted case: few, so prompts stay within the tiny model's context."""


def scripted_settings(base: Settings, **more: object) -> Settings:
    """Settings for a scripted case: the tools above, a one-pass confidence threshold."""
    update = {
        "tools_enabled": TOOLS,
        "threshold": 0.5,
        "max_steps": 3,
        "model_family": "qwen2.5-vl",
        "model_max_pixels": MAX_PIXELS,
        "model_timeout": 120.0,
        "model_max_images": 2,
    }
    return base.model_copy(update=update | more)


def image(seed: int) -> bytes:
    """A scripted case's image: a seeded photo-like PNG of :data:`SIZE`."""
    return encode(photo(seed, SIZE))


def hermes(name: str, arguments: dict) -> str:
    """A tool call as the chat template writes it (and vLLM's hermes parser reads it)."""
    return "<tool_call>\n" + json.dumps({"name": name, "arguments": arguments}) + "\n</tool_call>"


def zoom_arguments(tools: list[dict]) -> dict:
    """The scripted zoom call's arguments, complete as the strict schema requires.

    Every parameter is required (null meaning "the default"), in the schema's order, so
    what the model learned is exactly what a server enforcing strict tool calls accepts.
    """
    (zoom,) = [t["function"] for t in tools if t["function"]["name"] == "zoom"]
    arguments = dict.fromkeys(zoom["parameters"]["properties"])
    arguments["box"] = ZOOM_BOX
    return arguments


def record(settings: Settings, seeds: range) -> list[ChatExample]:
    """Run the agent on each seed's image against the script; return its requests as lessons."""
    examples = []
    replies = [
        lambda body: tool_call("zoom", json.dumps(zoom_arguments(body["tools"]))),
        lambda body: text(json.dumps(VERDICT)),
    ]
    for seed in seeds:
        with serve(replies) as (url, seen):
            vlm = scripted_settings(settings, backend="openai:tiny-vlm", base_url=url)
            with open_session(vlm) as session:
                session.analyze(image(seed))
        if len(seen) != 2:
            raise RuntimeError(f"expected two model turns, the agent sent {len(seen)}")
        completions = [hermes("zoom", zoom_arguments(seen[0]["tools"])), json.dumps(VERDICT)]
        for body, completion in zip(seen, completions, strict=True):
            examples.append(ChatExample(body["messages"], body.get("tools"), completion))
    return examples
