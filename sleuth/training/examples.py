"""Training examples from exported traces: each request with the answer that followed it.

``sleuth traces export`` writes one record per case (a conversation whose requests are
prefixes of it; see :mod:`sleuth.evaluation.traces`). Every request of a record becomes
one :class:`TrainingExample`: the messages and tool schemas exactly as the server
received them (images as data URLs) and the assistant message that answered. Both export
formats are read: ``openai`` records directly, ``trl`` records by putting each image file
back in place of its placeholder.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sleuth.evaluation.traces import IMAGES_DIR, TRACES_FILE, answered_requests, read_traces
from sleuth.tools import SleuthError


@dataclass(frozen=True)
class TrainingExample:
    """One request and the answer to learn.

    Attributes
    ----------
    messages : list of dict
        The request's OpenAI chat messages, images as ``data:`` URLs.
    tools : list of dict or None
        The request's tool schemas.
    answer : dict
        The assistant message that answered (``content``, optional ``tool_calls``).
    case : str
        The case's key in the exported set.
    """

    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None
    answer: dict[str, Any]
    case: str

    @property
    def images(self) -> int:
        """Number of images in the request."""
        return sum(
            part.get("type") == "image_url"
            for message in self.messages
            if isinstance(message.get("content"), list)
            for part in message["content"]
        )


def read_examples(folder: Path) -> list[TrainingExample]:
    """Read every training example of an export folder, in the file's order.

    Parameters
    ----------
    folder : Path
        A folder written by ``sleuth traces export`` (``traces.jsonl`` and ``images/``).

    Returns
    -------
    list of TrainingExample

    Raises
    ------
    SleuthError
        When the folder holds no traces, or a record is not one the export writes.
    """
    folder = Path(folder)
    if not (folder / TRACES_FILE).is_file():
        raise SleuthError(
            f"{folder} holds no {TRACES_FILE}: give a folder written by `sleuth traces export`"
        )
    examples = list(iter_examples(read_traces(folder), folder))
    if not examples:
        raise SleuthError(f"{folder / TRACES_FILE} holds no records")
    return examples


def iter_examples(records: Sequence[dict[str, Any]], folder: Path) -> Iterator[TrainingExample]:
    """Yield the examples of exported records (either format)."""
    for number, record in enumerate(records, start=1):
        try:
            if "images" in record:  # the trl layout
                record = _as_openai(record, folder)
            for messages, tools, answer in answered_requests(record, folder):
                yield TrainingExample(messages, tools or None, answer, str(record.get("id")))
        except (KeyError, IndexError, TypeError, ValueError) as err:
            raise SleuthError(
                f"{folder / TRACES_FILE}, record {number}: not an exported trace ({err!r})"
            ) from None
        except OSError as err:
            raise SleuthError(f"{folder / TRACES_FILE}, record {number}: {err}") from None


def _as_openai(record: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Turn a ``trl`` record's image placeholders back into ``image_url`` parts (files)."""
    paths = iter(record["images"])
    messages = []
    for message in record["messages"]:
        message = dict(message)
        if isinstance(message.get("content"), list):
            parts = []
            for part in message["content"]:
                if part.get("type") == "image":
                    name = Path(next(paths)).name
                    part = {"type": "image_url", "image_url": {"url": f"{IMAGES_DIR}/{name}"}}
                parts.append(part)
            message["content"] = parts
        messages.append(message)
    if next(paths, None) is not None:
        raise ValueError("more image files than image placeholders")
    return record | {"messages": messages}
