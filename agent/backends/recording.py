"""Recording a backend's requests: each turn as sent, and the answer as it is carried on.

:class:`RecordingBackend` wraps a backend that composes OpenAI chat requests (a model
backend, or the :class:`~sleuth.agent.backends.teacher.TeacherBackend`) and keeps, for
every reasoning turn, the request (messages and tool schemas, exactly as the backend
composes them for the server) and the answer as an assistant message in OpenAI format,
written by the same conversion that carries it into the next request. Training traces
are made of these turns (:mod:`sleuth.evaluation.traces`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from langchain_core.messages import AIMessage
from PIL import Image

from sleuth.agent.backends.base import Backend, Opinion, Situation
from sleuth.agent.backends.parsing import parse_verdict
from sleuth.agent.backends.teacher import verdict_json
from sleuth.agent.frames import BoxFrame
from sleuth.agent.messages import to_openai
from sleuth.tools import LoadedImage


class ChatBackend(Backend, Protocol):
    """A backend that composes OpenAI chat requests (see :meth:`VisionBackend.chat`)."""

    def chat(self, situation: Situation) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Return the messages and tool schemas of the request for this turn."""
        ...


@dataclass(frozen=True)
class Turn:
    """One reasoning turn as recorded.

    Attributes
    ----------
    messages : list of dict
        The request's messages in OpenAI format, images as data URLs.
    tools : list of dict
        The request's tool schemas.
    reply : dict
        The answer as an OpenAI assistant message (``content``, ``tool_calls``).
    """

    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    reply: dict[str, Any]


class RecordingBackend:
    """Wraps a :class:`ChatBackend` and records its turns (see the module docstring).

    When a model's concluding message holds no readable verdict (the backend then asks
    again with structured output), the recorded answer of that turn is the verdict the
    case concluded with, written as the model's verdict JSON.
    """

    def __init__(self, inner: ChatBackend) -> None:
        self.inner = inner
        self.identity = inner.identity
        self.accepts_nudges = getattr(inner, "accepts_nudges", False)
        self.turns: list[Turn] = []

    def reset(self) -> None:
        """Forget the turns recorded so far (before the next case)."""
        self.turns = []

    def frame(self, image: LoadedImage) -> BoxFrame:
        """Return the inner backend's frame."""
        return self.inner.frame(image)

    def picture(self, picture: Image.Image) -> Image.Image:
        """Return the picture as the inner backend sends it."""
        return self.inner.picture(picture)

    def reason(self, situation: Situation) -> AIMessage:
        """Take the inner backend's turn and record the request and the answer."""
        messages, tools = self.inner.chat(situation)
        message = self.inner.reason(situation)
        reply = to_openai([message], system="", resolve=situation.resolve)[1]
        self.turns.append(Turn(messages=messages, tools=tools, reply=reply))
        return message

    def conclude(self, situation: Situation, message: AIMessage) -> Opinion:
        """Read the inner backend's verdict; record it when the message held none."""
        opinion = self.inner.conclude(situation, message)
        last = self.turns[-1] if self.turns else None
        if last is not None and parse_verdict(str(last.reply.get("content") or "")) is None:
            p_ai = opinion.p_model if opinion.p_model is not None else situation.p_signals
            reply = dict(last.reply, content=verdict_json(opinion, situation.frame, p_ai))
            self.turns[-1] = Turn(messages=last.messages, tools=last.tools, reply=reply)
        return opinion

    def close(self) -> None:
        """Close the inner backend, when it holds resources."""
        close = getattr(self.inner, "close", None)
        if close is not None:
            close()
