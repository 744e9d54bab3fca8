"""The ``transformers`` backend: the model in this process, on a GPU or the CPU.

It renders a turn exactly as an OpenAI-compatible server (vLLM) would render the same
request with the model's own chat template, so a model behaves the same in-process and
served; tool calls are read from ``<tool_call>`` JSON blocks (hermes format). Needs the
``local`` extra (torch, torchvision, transformers).
"""

from __future__ import annotations

import base64
import binascii
import copy
import io
import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage
from PIL import Image

from sleuth.agent.backends import BackendOptions
from sleuth.agent.backends.base import BackendError, ModelVerdict, Situation
from sleuth.agent.backends.parsing import label_probability, parse_tool_calls
from sleuth.agent.backends.vlm import VisionBackend
from sleuth.agent.frames import ModelFamily, family_for
from sleuth.agent.verdict import BackendIdentity
from sleuth.tools.errors import SleuthError

TOP_K = 5
MODELS_KEPT = 2
"""Loaded models a process keeps for later backends (the least recently used goes)."""


def served_tools(tools: Sequence[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """Return tool schemas as vLLM's OpenAI server hands them to the chat template.

    vLLM validates each tool into its request model and dumps it back: ``{"type",
    "function": {"name", "description", "parameters", "strict"}}`` in that order.
    """
    if not tools:
        return None
    served = []
    for tool in tools:
        function = tool["function"]
        entry = {
            "name": function["name"],
            "description": function.get("description"),
            "parameters": function.get("parameters"),
        }
        if function.get("strict") is not None:
            entry["strict"] = function["strict"]
        served.append({"type": tool.get("type", "function"), "function": entry})
    return served


def served_messages(
    messages: Sequence[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[Image.Image]]:
    """Return messages as vLLM's OpenAI server hands them to the chat template, and their images.

    Parameters
    ----------
    messages : sequence of dict
        OpenAI chat messages.

    Returns
    -------
    messages : list of dict
        A normalised deep copy (:func:`normalised_messages`).
    images : list of PIL.Image.Image
        One RGB image per ``image_url`` part (:func:`message_images`).
    """
    return normalised_messages(messages), message_images(messages)


def normalised_messages(messages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return a deep copy of the messages as vLLM's OpenAI server hands them to the template.

    Tool-call arguments arrive as JSON strings and are parsed to objects (the template
    serialises them again with ``tojson``); images stay as they are (not decoded).
    """
    out = copy.deepcopy(list(messages))
    for message in out:
        for call in message.get("tool_calls") or ():
            function = call.get("function", {})
            if isinstance(function.get("arguments"), str):
                function["arguments"] = json.loads(function["arguments"])
    return out


def message_images(messages: Sequence[dict[str, Any]]) -> list[Image.Image]:
    """Decode the messages' ``image_url`` parts, in the order the template renders them."""
    return [
        decode_data_url(part["image_url"]["url"])
        for message in messages
        if isinstance(message.get("content"), list)
        for part in message["content"]
        if part.get("type") == "image_url"
    ]


def render_prompt(processor: Any, messages: Sequence[dict], tools: Sequence[dict] | None) -> str:
    """Return the prompt text vLLM's OpenAI server builds for a request.

    The model's own chat template renders the request after the server's normalisations
    (:func:`normalised_messages`, :func:`served_tools`), with the generation prompt.

    Parameters
    ----------
    processor : transformers.ProcessorMixin
        The model's processor; its chat template renders.
    messages : sequence of dict
        OpenAI chat messages (images as data URLs).
    tools : sequence of dict or None
        OpenAI function tools as a client sends them.

    Returns
    -------
    str
        The prompt, image placeholders not yet expanded.
    """
    return processor.apply_chat_template(
        normalised_messages(messages),
        tools=served_tools(tools),
        add_generation_prompt=True,
        tokenize=False,
    )


def decode_data_url(url: str) -> Image.Image:
    """Decode a ``data:image/...;base64,...`` URL to an RGB image.

    Raises
    ------
    ValueError
        If ``url`` is not a base64 image data URL.
    """
    head, sep, payload = url.partition(",")
    if not (sep and head.startswith("data:image/") and head.endswith(";base64")):
        raise ValueError(f"expected a base64 image data URL, got {url[:40]!r}...")
    try:
        data = base64.b64decode(payload, validate=True)
    except binascii.Error as err:
        raise ValueError(f"bad base64 in data URL: {err}") from err
    with Image.open(io.BytesIO(data)) as picture:
        return picture.convert("RGB")


@dataclass(frozen=True)
class LoadedModel:
    """A model and its processor, loaded once per process and shared by its backends.

    ``lock`` serialises generation: analyses in several threads of one process (the MCP
    server's ``--workers threads``) share one model.
    """

    processor: Any
    model: Any
    lock: threading.Lock


_LOADED: OrderedDict[tuple[str, tuple[tuple[str, int, int], ...]], LoadedModel] = OrderedDict()
_LOADING = threading.Lock()


def load_model(model: str) -> LoadedModel:
    """Return the model and processor of ``model``, loading them on first use.

    Every session makes its own backend, so without this each analysis would load the
    model again (seconds for a small model, minutes for a large one). A model folder is
    loaded again when a file in it changed (a model retrained into the same folder).

    Raises
    ------
    SleuthError
        Without the ``local`` extra.
    BackendError
        When the model cannot be loaded.
    """
    try:
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor
    except ImportError as err:
        raise SleuthError(
            "the transformers backend needs the local extra: pip install torch==2.13.0 "
            f"'sleuth[local]' ({err})"
        ) from None
    key = (model, _files_of(model))
    with _LOADING:
        if key in _LOADED:
            _LOADED.move_to_end(key)
            return _LOADED[key]
        try:
            processor = AutoProcessor.from_pretrained(model)
            net = AutoModelForImageTextToText.from_pretrained(model, dtype=torch.float32)
        except (OSError, ValueError) as err:
            raise BackendError(f"cannot load the model {model!r}: {err}") from None
        net.eval()
        _LOADED[key] = LoadedModel(processor, net, threading.Lock())
        while len(_LOADED) > MODELS_KEPT:
            _LOADED.popitem(last=False)
        return _LOADED[key]


def _files_of(model: str) -> tuple[tuple[str, int, int], ...]:
    """Name, size and modification time of each file of a model folder (empty for a name)."""
    folder = Path(model)
    if not folder.is_dir():
        return ()
    found = []
    for path in sorted(folder.iterdir()):
        if path.is_file():
            stat = path.stat()
            found.append((path.name, stat.st_size, stat.st_mtime_ns))
    return tuple(found)


class TransformersBackend(VisionBackend):
    """A vision-language model loaded with transformers.

    Parameters
    ----------
    model : str
        A model folder (or a hub name already in the local cache); loaded once per
        process (:func:`load_model`).
    options : BackendOptions
        ``family`` and ``max_new_tokens`` apply.
    """

    def __init__(self, model: str, options: BackendOptions) -> None:
        self.loaded = load_model(model)
        self.processor = self.loaded.processor
        self.model = self.loaded.model
        import torch

        self.torch = torch
        super().__init__(_with_processor_limits(family_for(model, options.family), self.processor))
        self.options = options
        self.identity = BackendIdentity(provider="transformers", model=model)

    def reason(self, situation: Situation) -> AIMessage:
        """Generate the next turn greedily and read its tool calls."""
        messages, tools = self.chat(situation)
        text, p_label = self._generate(messages, tools)
        content, calls, invalid = parse_tool_calls(text)
        return AIMessage(
            content=content,
            tool_calls=calls,
            invalid_tool_calls=invalid,
            response_metadata={"p_label": p_label},
        )

    def _structured(self, situation: Situation) -> tuple[ModelVerdict | None, float | None]:
        return None, None  # no constrained decoding in-process: the parser had its chance

    def _generate(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]
    ) -> tuple[str, float | None]:
        images = message_images(messages)
        prompt = render_prompt(self.processor, messages, tools)
        inputs = self.processor(text=[prompt], images=images or None, return_tensors="pt")
        with self.loaded.lock, self.torch.inference_mode():
            out = self.model.generate(
                **inputs,
                max_new_tokens=self.options.max_new_tokens,
                do_sample=False,
                output_scores=True,
                return_dict_in_generate=True,
            )
        new = out.sequences[0, inputs["input_ids"].shape[1] :]
        tokenizer = self.processor.tokenizer
        text = tokenizer.decode(new, skip_special_tokens=True)
        pieces = [tokenizer.decode([int(t)]) for t in new]
        alternatives = []
        for scores in out.scores:
            logprobs = self.torch.log_softmax(scores[0].float(), dim=-1)
            top = self.torch.topk(logprobs, TOP_K)
            alternatives.append(
                {
                    tokenizer.decode([int(i)]): float(v)
                    for v, i in zip(top.values, top.indices, strict=True)
                }
            )
        return text, label_probability(pieces, alternatives)


def _with_processor_limits(family: ModelFamily, processor: Any) -> ModelFamily:
    """Take the input-resolution bounds from the model's own image processor."""
    image_processor = getattr(processor, "image_processor", None)
    size = getattr(image_processor, "size", None) or {}
    low = size.get("shortest_edge") or getattr(image_processor, "min_pixels", None)
    high = size.get("longest_edge") or getattr(image_processor, "max_pixels", None)
    patch = getattr(image_processor, "patch_size", None)
    merge = getattr(image_processor, "merge_size", None)
    factor = patch * merge if patch and merge else family.factor
    return replace(
        family,
        factor=factor,
        min_pixels=int(low or family.min_pixels),
        max_pixels=int(high or family.max_pixels),
    )
