"""Messages of a case: what goes into them, and how they reach a model.

State keeps images as references (``{"type": "sleuth_image", "ref": ...}``: ``image``
for the case's image, else an artifact's file name), so checkpoints stay small; a
backend turns them into data URLs at the model's input resolution when it calls the
model. Everything a tool or the file says is wrapped as untrusted data before it
reaches a prompt, and every piece of text from outside the code (tool output, file
text, the investigator's question, a tool's error, earlier answers) passes through
:func:`fence` on its way into a message.
"""

from __future__ import annotations

import base64
import json
import re
import unicodedata
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
# longest text fence() lets through, per kind of field (characters)
MAX_METRIC_CHARS = 200
MAX_KEY_CHARS = 60
MAX_SUMMARY_CHARS = 600
MAX_CAVEAT_CHARS = 300
MAX_BLOCK_CHARS = 6000
MAX_QUESTION_CHARS = 2000
MAX_ERROR_CHARS = 600
MAX_ANSWER_CHARS = 8000
SHOWN_OPEN, SHOWN_CLOSE = "\u2039", "\u203a"
"""How angle brackets in fenced text are shown: single guillemets, never a tag's ``<``/``>``."""
_OPENING_ANGLES = "<\u02c2\u1438\u2039\u2329\u276e\u27e8\u29fc\u3008\ufe64\uff1c"
_CLOSING_ANGLES = ">\u02c3\u1433\u203a\u232a\u276f\u27e9\u29fd\u3009\ufe65\uff1e"
_ANGLES = str.maketrans(
    dict.fromkeys(_OPENING_ANGLES, SHOWN_OPEN) | dict.fromkeys(_CLOSING_ANGLES, SHOWN_CLOSE)
)
_ANGLE_ENTITY = re.compile(r"&(?:(lt|#0*60|#x0*3c)|gt|#0*62|#x0*3e);?", re.IGNORECASE)
CUT_MARK = "..."
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


def fence(text: str, limit: int) -> str:
    r"""Make outside text safe to put in a prompt: one bounded line with no tag in it.

    Every string that did not come from sleuth's own code passes through here before it
    reaches a model message: each field of a tool's evidence (much of it read from the
    file's EXIF, XMP, PNG text or C2PA manifest), the wrapped block as a whole, the
    investigator's question, a tool's error and earlier assistant turns.

    The rules, and why:

    - **No angle bracket survives.** ``<`` and ``>``, the look-alikes a model may read as
      one (fullwidth ``＜``, small ``﹤``, ``〈``, ``⟨``, ``❮``, ``˂``, ...) and their HTML
      entities (``&lt;``, ``&#60;``, ``&#x3e;``) are shown as ``‹`` and ``›``. Text without
      ``<`` cannot spell the closing tag of the ``<untrusted-data>`` wrapper in any case,
      spacing or spelling (``</UNTRUSTED-DATA>``, ``< /untrusted-data>``,
      ``</untrusted-data   >``), cannot open a second wrapper, and cannot spell a chat
      template's control token (``<|im_start|>``, ``<start_of_turn>``) that a server or the
      transformers backend would tokenise as a real role boundary. Matching tag spellings
      instead would be a blacklist that the next spelling slips past.
    - **Compatibility forms are folded** (Unicode NFKC) before the brackets are replaced,
      so fullwidth and other compatibility letters and brackets are judged as the
      characters they stand for.
    - **One line.** Every line or paragraph separator (``\n``, ``\r``, U+2028, U+2029,
      U+0085, vertical tab, form feed, the ASCII record separators) and every other run of
      white space becomes one space, so a field cannot start a line that looks like a new
      speaker ("SYSTEM: ignore previous instructions").
    - **No invisible characters.** Control, format (zero-width, bidirectional overrides),
      surrogate, private-use and unassigned code points are dropped.
    - **Bounded.** At most ``limit`` characters; a longer text is cut and ends in
      ``...``. Only the first ``4 * limit`` characters are read at all.

    A per-request random tag name was considered and not used: it would make every prompt
    and every stored case differ from run to run (no server prefix cache, no reproducible
    case), while text without brackets cannot form a tag of any name. The function is
    idempotent.

    Parameters
    ----------
    text : str
        Text from outside the code.
    limit : int
        Longest result, in characters (at least 4).

    Returns
    -------
    str
        The text on one line, without ``<``, ``>`` or their look-alikes.
    """
    visible = "".join(
        " " if c.isspace() else c
        for c in text[: limit * 4]
        if c.isspace() or unicodedata.category(c)[0] != "C"
    )
    folded = unicodedata.normalize("NFKC", visible)
    folded = _ANGLE_ENTITY.sub(lambda m: SHOWN_OPEN if m.group(1) else SHOWN_CLOSE, folded)
    flat = " ".join(folded.translate(_ANGLES).split())
    if len(flat) <= limit:
        return flat
    return flat[: limit - len(CUT_MARK)].rstrip() + CUT_MARK


def untrusted(text: str, source: str) -> str:
    """Wrap ``text`` as untrusted data; the text cannot close or forge the wrapper.

    The text goes through :func:`fence` (one line, no angle brackets, at most
    :data:`MAX_BLOCK_CHARS`), so the wrapper's own closing tag is the only one in the block.
    """
    source = "".join(c for c in source if c.isalnum() or c in "_-")[:MAX_KEY_CHARS]
    return prompts.render("untrusted", source=source, text=fence(text, MAX_BLOCK_CHARS))


def evidence_text(items: Iterable[Evidence], frame: BoxFrame) -> str:
    """Render evidence for a model, boxes in its frame, each tool's output wrapped."""
    blocks = []
    for item in items:
        shown = {
            "id": item.id,
            "tool": fence(item.tool, MAX_KEY_CHARS),
            "region": _box_text(item.region, frame) if item.region else None,
            "score": item.score,
            "direction": item.direction,
            "kind": item.kind,
            "summary": fence(reframe(item.summary, frame), MAX_SUMMARY_CHARS),
            "boxes": [_box_text(b, frame) for b in item.boxes[:8]],
            "caveats": [fence(c, MAX_CAVEAT_CHARS) for c in item.caveats[:4]],
            "metrics": [
                (fence(k, MAX_KEY_CHARS), fence(str(v), MAX_METRIC_CHARS))
                for k, v in list(item.metrics.items())[:12]
            ],
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
        question=fence(question, MAX_QUESTION_CHARS) if question else None,
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
        error=fence(error, MAX_ERROR_CHARS) if error else error,
        evidence=evidence_text(evidence or [], frame),
        crops=bool(crops),
    )
    content: list[str | dict[str, str]] = [text_part(text)]
    content += [image_part(ref) for ref in crops or []]
    return ToolMessage(
        content=content, tool_call_id=call_id, name=name, status="error" if error else "success"
    )


def followup_message(question: str) -> HumanMessage:
    """Return the message that opens a follow-up question on a concluded case.

    The question is the investigator's, so it stays outside any untrusted wrapper, but
    it goes through :func:`fence` like file text: it cannot forge a wrapper either.
    """
    return HumanMessage(
        content=prompts.render("followup", question=fence(question, MAX_QUESTION_CHARS))
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
            # no text beside tool calls is null, not "": servers render "" as an empty line;
            # an earlier answer may quote evidence (the offline analyst's do), so it is fenced,
            # and so are the calls' names and strings, which a chat template renders as text
            text = fence(_flat_text(content), MAX_ANSWER_CHARS) or (
                None if message.tool_calls else ""
            )
            entry: dict[str, Any] = {"role": "assistant", "content": text}
            if message.tool_calls:
                entry["tool_calls"] = [
                    {
                        "id": call["id"],
                        "type": "function",
                        "function": {
                            "name": fence(call["name"], MAX_KEY_CHARS),
                            "arguments": json.dumps(_fenced(call["args"])),
                        },
                    }
                    for call in message.tool_calls
                ]
            out.append(entry)
        elif isinstance(message, ToolMessage):
            out.append({"role": "tool", "tool_call_id": message.tool_call_id, "content": content})
        else:
            out.append({"role": "user", "content": content})
    return out


def _fenced(value: Any) -> Any:
    """Fence every string in a tool call's arguments; numbers and structure stay as they are."""
    if isinstance(value, str):
        return fence(value, MAX_ANSWER_CHARS)
    if isinstance(value, dict):
        return {fence(str(k), MAX_ANSWER_CHARS): _fenced(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_fenced(v) for v in value]
    return value


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
