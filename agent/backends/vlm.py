"""What the vision-language backends share: frames, pictures, prompts, reading verdicts."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from langchain_core.messages import AIMessage
from PIL import Image

from sleuth import prompts
from sleuth.agent.backends.base import BackendError, ModelVerdict, Opinion, Situation
from sleuth.agent.backends.options import BackendOptions
from sleuth.agent.backends.parsing import opinion_from, parse_verdict
from sleuth.agent.frames import BoxFrame, ModelFamily, family_for, input_size
from sleuth.agent.messages import to_openai
from sleuth.agent.toolschemas import tool_schemas
from sleuth.tools import LoadedImage


def served_family(model: str, options: BackendOptions) -> ModelFamily:
    """Return the family of a served ``model``, with the server's image budget when given."""
    family = family_for(model, options.family)
    if options.max_pixels:
        family = replace(family, max_pixels=options.max_pixels)
    return family


class VisionBackend:
    """Base of the model backends: subclasses implement ``_complete`` and ``_structured``.

    Parameters
    ----------
    family : ModelFamily
        Decides the input resolution and the box convention.
    """

    accepts_nudges = True

    def __init__(self, family: ModelFamily, *, max_images: int | None = None) -> None:
        self.family = family
        self.max_images = max_images

    def frame(self, image: LoadedImage) -> BoxFrame:
        """Return the model family's box frame on ``image``."""
        return BoxFrame.for_model(*image.size, self.family)

    def picture(self, picture: Image.Image) -> Image.Image:
        """Resize to the model's input resolution (so boxes map back exactly)."""
        size = input_size(*picture.size, self.family)
        if size == picture.size:
            return picture
        return picture.resize(size, Image.Resampling.BICUBIC)

    def chat(self, situation: Situation) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Return the OpenAI-format messages and tools for a turn."""
        system = prompts.render(
            "system",
            box_rule=situation.frame.describe(),
            rubric=prompts.render("verdict_rubric"),
        )
        messages = to_openai(
            situation.view.state.get("messages", []),
            system=system,
            resolve=situation.resolve,
            max_images=self.max_images,
        )
        return messages, tool_schemas(situation.registry, situation.frame)

    def conclude(self, situation: Situation, message: AIMessage) -> Opinion:
        """Read the verdict from the message, else ask for it with structured output.

        Raises
        ------
        BackendError
            When neither the message nor a structured request yields a valid verdict.
        """
        text = message.text if isinstance(message.content, list) else str(message.content)
        verdict = parse_verdict(text)
        p_label = message.response_metadata.get("p_label")
        if verdict is None:
            verdict, p_label = self._structured(situation)
        if verdict is None:
            raise BackendError(
                "the model gave no readable verdict, even with structured output; "
                f"its last words: {text[:200]!r}"
            )
        return opinion_from(verdict, situation.frame, p_label)

    def _structured(self, situation: Situation) -> tuple[ModelVerdict | None, float | None]:
        raise NotImplementedError
