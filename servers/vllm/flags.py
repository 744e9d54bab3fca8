"""vLLM's serving flags per model family: tool-call parser, chat template, context length.

The box conventions and image budgets of each family live with the agent
(:data:`sleuth.agent.frames.FAMILIES`); how vLLM serves a family lives here, keyed by the
family's name, because only ``sleuth model-server`` needs it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Serving:
    """How vLLM serves a family with tool calls (``sleuth model-server``).

    Attributes
    ----------
    tool_call_parser : str
        vLLM's ``--tool-call-parser`` for the family's tool-call format.
    chat_template : str, optional
        File name of a chat template shipped in ``servers/vllm/templates/``, for families
        whose own template has no tools section; None keeps the model's template.
    content_format : str
        ``--chat-template-content-format``: ``openai`` when the template walks content parts
        (so images stay where the message puts them, tool messages included).
    max_model_len : int
        Context length in tokens: the agent's prompt (tool schemas, evidence, a few images at
        the family's pixel budget) and its answer.
    """

    tool_call_parser: str
    chat_template: str | None = None
    content_format: str = "openai"
    max_model_len: int = 16384


QWEN_VL_TOOLS = Serving(tool_call_parser="hermes", chat_template="qwen2_5_vl_tools.jinja")
"""Qwen2-VL and Qwen2.5-VL write Hermes-style ``<tool_call>{json}</tool_call>`` blocks, but
their chat templates have no tools section: the shipped one adds Qwen2.5's."""

SERVING: dict[str, Serving] = {
    "qwen2.5-vl": QWEN_VL_TOOLS,
    "qwen3-vl": Serving(tool_call_parser="hermes"),  # its own template has tools
    "qwen2-vl": QWEN_VL_TOOLS,
}
"""Family name (:attr:`sleuth.agent.frames.ModelFamily.name`) to its serving flags; a
family missing here has no serving recipe."""
