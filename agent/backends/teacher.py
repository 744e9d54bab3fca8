"""The teacher: the offline analyst's decisions, asked and answered as a model would be.

Training a vision-language model on the offline analyst's investigations needs the
requests the model would be sent at each step. The teacher is a backend whose frame,
pictures, messages and tool schemas are a model backend's own (a :class:`VisionBackend`,
the code the ``openai`` backend composes its requests with) and whose decisions are the
offline analyst's: its tool calls, with boxes written in the model's frame, and its
conclusion, written as the verdict JSON a model answers with (:func:`verdict_json`).

The graph runs it like any backend, so every message of the case (the opening, each tool
result, each crop at the model's input size) is composed by the same code as for the
model. Two details keep the analyst's policy intact in the model's frame:

- A box the analyst chooses goes out as :meth:`BoxFrame.from_original` of it and comes
  back through :meth:`BoxFrame.to_original`, which rounds outwards; the analyst is shown
  the candidates as they come back, so it recognises a region it has examined.
- Each call lists every field of the tool's strict schema, null for a default, as a
  model's call under strict mode must.
- The teacher takes no nudges (like the analyst): when the fused evidence is not
  confident after it concludes, the case ends there.

Its verdict is the analyst's: the concluding message's explanation and boxes, and no
probability of its own (``p_model`` is None), so ``p_ai`` is the fused evidence's. The
explanation does not open with the analyst's "no vision-language model looked at the
image": the model trained on it does look.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from langchain_core.messages import AIMessage
from PIL import Image

from sleuth.agent.backends.base import BackendError, ModelVerdict, Opinion, Situation
from sleuth.agent.backends.offline import OfflineBackend
from sleuth.agent.backends.parsing import opinion_from, parse_verdict
from sleuth.agent.backends.vlm import VisionBackend
from sleuth.agent.frames import BoxFrame
from sleuth.agent.messages import CUT_MARK, MAX_ANSWER_CHARS, fence
from sleuth.agent.toolschemas import tool_schemas
from sleuth.agent.verdict import BackendIdentity
from sleuth.agent.view import CaseView
from sleuth.tools import Box, LoadedImage

CITATION = re.compile(r"\[(E\d+)\]")
MAX_EXPLANATION = ModelVerdict.model_fields["explanation"].metadata[0].max_length


def verdict_json(opinion: Opinion, frame: BoxFrame, p_ai: float) -> str:
    """Write an opinion as the verdict JSON a model answers with (:class:`ModelVerdict`).

    The label is the side of ``p_ai``; ``cite`` lists the ``[En]`` of the explanation in
    order; boxes are written in ``frame``. The text is what the assistant turn carries in
    a later request (it passes :func:`~sleuth.agent.messages.fence` unchanged), and it
    parses back with :func:`~sleuth.agent.backends.parsing.parse_verdict`.
    """
    explanation = opinion.explanation
    if len(explanation) > MAX_EXPLANATION:
        explanation = explanation[: MAX_EXPLANATION - len(CUT_MARK)].rstrip() + CUT_MARK
    cited = list(dict.fromkeys(CITATION.findall(explanation)))
    verdict = ModelVerdict(
        label="ai_generated" if p_ai >= 0.5 else "real",
        p_ai=round(p_ai, 4),
        explanation=explanation,
        cite=cited[:16],
        boxes=[frame.from_original(box) for box in opinion.boxes[:8]],
    )
    return fence(verdict.model_dump_json(), MAX_ANSWER_CHARS)


class TeacherBackend:
    """The offline analyst's decisions in a model backend's requests (see the module).

    Parameters
    ----------
    student : VisionBackend
        The model backend whose frame, pictures and requests are used (no model is called).
    analyst : OfflineBackend, optional
        The policy that decides.
    """

    accepts_nudges = False

    def __init__(self, student: VisionBackend, analyst: OfflineBackend | None = None) -> None:
        self.student = student
        self.analyst = analyst or OfflineBackend(teaching=True)
        self.identity = BackendIdentity(
            provider="offline",
            model=f"{self.analyst.identity.model} as {student.family.name}",
        )

    def frame(self, image: LoadedImage) -> BoxFrame:
        """Return the student's frame."""
        return self.student.frame(image)

    def picture(self, picture: Image.Image) -> Image.Image:
        """Return the picture at the student's input size."""
        return self.student.picture(picture)

    def chat(self, situation: Situation) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Return the request the student would send for this turn."""
        return self.student.chat(situation)

    def reason(self, situation: Situation) -> AIMessage:
        """Make the analyst's move: tool calls in the student's frame, or the verdict JSON."""
        seen, sent = self._as_returned(situation)
        message = self.analyst.reason(seen)
        if message.tool_calls:
            fields = {
                tool["function"]["name"]: list(tool["function"]["parameters"]["properties"])
                for tool in tool_schemas(situation.registry, situation.frame)
            }
            calls = []
            for call in message.tool_calls:
                args = dict(call["args"])
                if args.get("box") is not None:
                    x0, y0, x1, y1 = args["box"]
                    box = Box(x0=x0, y0=y0, x1=x1, y1=y1)
                    args["box"] = situation.frame.from_original(sent.get(box, box))
                # a strict schema requires every field: null stands for the default
                args = {name: args.get(name) for name in fields.get(call["name"], args)}
                calls.append({**call, "args": args})
            return AIMessage(content="", tool_calls=calls)
        if seen.view.mode == "followup":
            return message
        opinion = self.analyst.conclude(seen, message)
        return AIMessage(content=verdict_json(opinion, situation.frame, situation.p_signals))

    def conclude(self, situation: Situation, message: AIMessage) -> Opinion:
        """Read the verdict JSON back: the analyst's explanation and boxes, no probability."""
        verdict = parse_verdict(str(message.content))
        if verdict is None:
            raise BackendError("the teacher's concluding message holds no verdict")
        opinion = opinion_from(verdict, situation.frame, None)
        return dataclasses.replace(opinion, p_model=None)

    def _as_returned(self, situation: Situation) -> tuple[Situation, dict[Box, Box]]:
        """Show the analyst each candidate as a box sent in the frame comes back.

        Returns the situation the analyst sees and, for each candidate as it comes back,
        the candidate itself (what is sent).
        """
        frame = situation.frame
        sent: dict[Box, Box] = {}
        for box in situation.view.candidates:
            sent.setdefault(frame.to_original(frame.from_original(box)), box)
        if all(back == box for back, box in sent.items()):
            return situation, sent
        state = dict(situation.view.state)
        state["candidates"] = [box.model_dump(mode="json") for box in sent]
        return dataclasses.replace(situation, view=CaseView(state)), sent  # type: ignore[arg-type]
