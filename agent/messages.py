"""Messages of a case: what goes into them, and how they reach a model.

State keeps images as references (``{"type": "sleuth_image", "ref": ...}``: ``image``
for the case's image, else an artifact's file name), so checkpoints stay small; a
backend turns them into data URLs at the model's input resolution when it calls the
model. Everything a tool or the file says is wrapped as untrusted data before it
reaches a prompt.
"""

from __future__ import annotations

import base64
import json
import re
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from typing import Any

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage
from PIL import Image

from sleuth import prompts
from sleuth.agent.frames import BoxFrame
from sleuth.agent.verdict import Evidence
from sleuth.tools import Box
from sleuth.tools.base import png_bytes

IMAGE_PART = "sleuth_image"
CASE_IMAGE = "image"
WRAPPER_TAG = "untrusted-data"
MAX_METRIC_CHARS = 200
OMITTED_IMAGE = "(an earlier image is left out here: the model takes only a few per request)"
QUOTED_BOX = re.compile(r"\((\d+), (\d+), (\d+), (\d+)\)")

ImageResolver = Callable[[str], str]
"""Returns the data URL (see :func:`data_url`) of a reference's picture, already at the size
the model should see."""


def image_part(ref: str) -> dict[str, str]:
    """Return a content part referring to the case image or an artifact."""
    return {"type": IMAGE_PART, "ref": ref}


def text_part(text: str) -> dict[str, str]:
    """Return a text content part."""
    return {"type": "text", "text": text}


def untrusted(text: str, source: str) -> str:
    """Wrap ``text`` as untrusted data; the text cannot close or forge the wrapper."""
    safe = text.replace(f"<{WRAPPER_TAG}", f"<\u200b{WRAPPER_TAG}")
    safe = safe.replace(f"</{WRAPPER_TAG}", f"</\u200b{WRAPPER_TAG}")
    source = "".join(c for c in source if c.isalnum() or c in "_-")
    return prompts.render("untrusted", source=source, text=safe)


def evidence_text(items: Iterable[Evidence], frame: BoxFrame) -> str:
    """Render evidence for a model, boxes in its frame, each tool's output wrapped."""
    blocks = []
    for item in items:
        shown = {
            "id": item.id,
            "tool": item.tool,
            "region": _box_text(item.region, frame) if item.region else None,
            "score": item.score,
            "direction": item.direction,
            "kind": item.kind,
            "summary": reframe(item.summary, frame),
            "boxes": [_box_text(b, frame) for b in item.boxes[:8]],
            "caveats": item.caveats[:4],
            "metrics": [(k, str(v)[:MAX_METRIC_CHARS]) for k, v in item.metrics.items()][:12],
        }
        blocks.append(untrusted(prompts.render("evidence", items=[shown]), item.tool))
    return "\n".join(blocks) if blocks else "(none)"


def reframe(text: str, frame: BoxFrame) -> str:
    """Rewrite boxes quoted in a tool's text, ``(x0, y0, x1, y1)`` in original pixels, in ``frame``.

    Tools quote boxes as :meth:`Box.as_tuple` tuples; a model must see every coordinate in
    the one frame it writes boxes in.
    """
    if frame.units == "original_pixels":
        return text

    def convert(match: re.Match[str]) -> str:
        x0, y0, x1, y1 = (int(g) for g in match.groups())
        if not (x0 < x1 <= frame.width and y0 < y1 <= frame.height):
            return match.group(0)
        return json.dumps(frame.from_original(Box(x0=x0, y0=y0, x1=x1, y1=y1)))

    return QUOTED_BOX.sub(convert, text)


def _box_text(box: Any, frame: BoxFrame) -> str:
    return json.dumps(frame.from_original(box))


def opening_message(
    *,
    question: str | None,
    evidence: list[Evidence],
    candidates: list[Any],
    frame: BoxFrame,
    file_format: str,
) -> HumanMessage:
    """Return the first user message of a case: the image, the survey, the candidates."""
    seen = (
        f"{frame.extent[0]}x{frame.extent[1]} pixels"
        if frame.units != "norm1000"
        else "a resized copy (boxes on a 0-1000 grid)"
    )
    text = prompts.render(
        "case_opening",
        question=question,
        width=frame.width,
        height=frame.height,
        file_format=file_format,
        seen=seen,
        evidence=evidence_text(evidence, frame),
        candidates=[_box_text(b, frame) for b in candidates],
    )
    return HumanMessage(content=[image_part(CASE_IMAGE), text_part(text)])


def tool_message(
    call_id: str,
    name: str,
    *,
    evidence: list[Evidence] | None = None,
    crops: list[str] | None = None,
    error: str | None = None,
    frame: BoxFrame,
) -> ToolMessage:
    """Return the message answering one tool call: its evidence and crops, or the error."""
    text = prompts.render(
        "tool_result",
        error=error,
        evidence=evidence_text(evidence or [], frame),
        crops=bool(crops),
    )
    content: list[str | dict[str, str]] = [text_part(text)]
    content += [image_part(ref) for ref in crops or []]
    return ToolMessage(
        content=content, tool_call_id=call_id, name=name, status="error" if error else "success"
    )


def to_openai(
    messages: Iterable[AnyMessage],
    *,
    system: str,
    resolve: ImageResolver,
    max_images: int | None = None,
) -> list[dict[str, Any]]:
    """Convert a case's messages to OpenAI chat format, images as PNG data URLs.

    Parameters
    ----------
    messages : iterable of message
        The case's messages (human, AI, tool).
    system : str
        The system prompt, placed first.
    resolve : callable
        Turns an image reference into the data URL of the picture to send.
    max_images : int, optional
        The server's limit of images per request: the case image and the most recent
        crops are kept, older crops become a short note.

    Returns
    -------
    list of dict
        Ready for ``chat.completions.create(messages=...)`` or a chat template.
    """
    messages = list(messages)
    keep = _images_to_keep(messages, max_images)
    out: list[dict[str, Any]] = [{"role": "system", "content": system}]
    for message in messages:
        content = _content(message.content, resolve, keep)
        if isinstance(message, AIMessage):
            # no text beside tool calls is null, not "": servers render "" as an empty line
            text = _flat_text(content) or (None if message.tool_calls else "")
            entry: dict[str, Any] = {"role": "assistant", "content": text}
            if message.tool_calls:
                entry["tool_calls"] = [
                    {
                        "id": call["id"],
                        "type": "function",
                        "function": {"name": call["name"], "arguments": json.dumps(call["args"])},
                    }
                    for call in message.tool_calls
                ]
            out.append(entry)
        elif isinstance(message, ToolMessage):
            out.append({"role": "tool", "tool_call_id": message.tool_call_id, "content": content})
        else:
            out.append({"role": "user", "content": content})
    return out


def _images_to_keep(messages: list[AnyMessage], limit: int | None) -> set[int]:
    """Return ids of the image parts to send: the first, then the most recent ones."""
    parts = [
        id(part)
        for message in messages
        if isinstance(message.content, list)
        for part in message.content
        if isinstance(part, dict) and part.get("type") == IMAGE_PART
    ]
    if limit is None or len(parts) <= limit:
        return set(parts)
    return set(parts[:1] + parts[len(parts) - (limit - 1) :] if limit > 1 else parts[:1])


def _content(
    content: str | list[Any], resolve: ImageResolver, keep: set[int]
) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    parts: list[dict[str, Any]] = []
    for part in content:
        if isinstance(part, str):
            parts.append({"type": "text", "text": part})
        elif part.get("type") == IMAGE_PART and id(part) not in keep:
            parts.append({"type": "text", "text": OMITTED_IMAGE})
        elif part.get("type") == IMAGE_PART:
            url = resolve(part["ref"])
            parts.append({"type": "image_url", "image_url": {"url": url}})
        elif part.get("type") == "text":
            parts.append({"type": "text", "text": part["text"]})
    return parts


def _flat_text(content: str | list[dict[str, Any]]) -> str:
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content)


class DataUrlCache:
    """The last few pictures' data URLs: a case's image is sent again on every turn.

    Parameters
    ----------
    size : int
        Entries kept (a 1-megapixel picture's URL is about 2 MB).
    """

    def __init__(self, size: int = 16) -> None:
        self.size = size
        self._urls: OrderedDict[Hashable, str] = OrderedDict()

    def get(self, key: Hashable, picture: Callable[[], Image.Image]) -> str:
        """Return the URL stored under ``key``, else encode ``picture()`` and store it."""
        if key in self._urls:
            self._urls.move_to_end(key)
            return self._urls[key]
        url = self._urls[key] = data_url(picture())
        if len(self._urls) > self.size:
            self._urls.popitem(last=False)
        return url


def data_url(picture: Image.Image) -> str:
    """Encode a picture as a PNG data URL (lossless, so no new compression traces)."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(picture)).decode("ascii")
