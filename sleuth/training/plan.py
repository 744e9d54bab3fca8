"""What a fine-tuning run will do: its options, its examples and their token counts.

``sleuth train-vlm --dry-run`` prints a :class:`TrainingPlan` without training; a run
records the same plan beside the model it writes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

DEFAULT_LEARNING_RATE = {True: 2e-4, False: 1e-5}
"""Learning rate by method: LoRA (True) or every weight (False)."""


@dataclass(frozen=True)
class TrainOptions:
    """How to fine-tune.

    Attributes
    ----------
    lora : bool
        Train low-rank adapters on the language model's linear layers (True, the default)
        or every weight of the language model (False).
    rank, alpha, dropout : int, int or None, float
        The adapters' rank, scale (default twice the rank) and dropout.
    epochs : float
        Passes over the examples.
    max_steps : int
        Optimiser steps; when > 0 it replaces ``epochs``.
    learning_rate : float or None
        Peak learning rate; default :data:`DEFAULT_LEARNING_RATE` for the method.
    schedule : {'cosine', 'constant_with_warmup', 'linear'}
        How the learning rate moves after a short warm-up (a twentieth of the steps).
    batch_size : int
        Examples per forward pass.
    accumulation : int
        Forward passes per optimiser step (the effective batch is their product).
    max_tokens : int or None
        Examples longer than this (prompt, image tokens and answer) are left out and
        listed; a request cannot be cut without changing what the model is asked.
    train_vision : bool
        Also train the vision tower (frozen by default: few examples teach it to memorise
        pictures, not to see).
    merge : bool
        With LoRA, also write the base model with the adapters merged in, which any
        engine serves as a plain model.
    seed : int
        Seed of the example order and the adapters' initialisation.
    """

    lora: bool = True
    rank: int = 16
    alpha: int | None = None
    dropout: float = 0.05
    epochs: float = 3.0
    max_steps: int = 0
    learning_rate: float | None = None
    schedule: str = "cosine"
    batch_size: int = 1
    accumulation: int = 8
    max_tokens: int | None = None
    train_vision: bool = False
    merge: bool = True
    seed: int = 0

    @property
    def peak_learning_rate(self) -> float:
        """The learning rate in use."""
        return self.learning_rate or DEFAULT_LEARNING_RATE[self.lora]


@dataclass(frozen=True)
class ExampleCount:
    """One example's size.

    Attributes
    ----------
    case : str
        Its case in the exported set.
    images : int
        Images in its request.
    prompt_tokens : int
        Tokens of the rendered request, image tokens included.
    target_tokens : int
        Tokens of the answer, end-of-turn token included.
    """

    case: str
    images: int
    prompt_tokens: int
    target_tokens: int

    @property
    def tokens(self) -> int:
        """Its sequence length."""
        return self.prompt_tokens + self.target_tokens


@dataclass
class TrainingPlan:
    """A run's inputs and arithmetic.

    Attributes
    ----------
    model : str
        The base model.
    traces : str
        The exported traces folder.
    options : TrainOptions
    examples : list of ExampleCount
        The examples trained on.
    skipped : list of str
        Examples left out, and why.
    parameters : int
        The model's parameters.
    trainable : int
        Parameters the run updates.
    """

    model: str
    traces: str
    options: TrainOptions
    examples: list[ExampleCount] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    parameters: int = 0
    trainable: int = 0

    @property
    def steps(self) -> int:
        """Optimiser steps the run will take."""
        if self.options.max_steps > 0:
            return self.options.max_steps
        per_epoch = math.ceil(
            len(self.examples) / (self.options.batch_size * self.options.accumulation)
        )
        return max(1, math.ceil(per_epoch * self.options.epochs))

    def totals(self) -> dict[str, int]:
        """Token and image totals over the examples."""
        return {
            "examples": len(self.examples),
            "cases": len({e.case for e in self.examples}),
            "images": sum(e.images for e in self.examples),
            "prompt_tokens": sum(e.prompt_tokens for e in self.examples),
            "target_tokens": sum(e.target_tokens for e in self.examples),
            "longest": max((e.tokens for e in self.examples), default=0),
        }

    def describe(self) -> list[str]:
        """Return the plan as lines of text, for a terminal."""
        o, t = self.options, self.totals()
        method = (
            f"LoRA rank {o.rank}, alpha {o.alpha or 2 * o.rank}, dropout {o.dropout}"
            if o.lora
            else "every language-model weight"
        )
        lines = [
            f"model: {self.model}",
            f"traces: {self.traces}",
            f"method: {method}; vision tower {'trained' if o.train_vision else 'frozen'}",
            f"examples: {t['examples']} request(s) of {t['cases']} case(s), {t['images']} image(s)",
            f"tokens: {t['prompt_tokens']} in prompts, {t['target_tokens']} learned; the "
            f"longest example {t['longest']}",
            f"steps: {self.steps} (batch {o.batch_size} x {o.accumulation} accumulated, "
            + (f"{o.max_steps} steps" if o.max_steps > 0 else f"{o.epochs:g} epoch(s)")
            + f"), learning rate {o.peak_learning_rate:g} ({o.schedule})",
        ]
        if self.parameters:
            lines.append(
                f"parameters: {self.trainable:,} trained of {self.parameters:,} "
                f"({100 * self.trainable / self.parameters:.2f} %)"
            )
        lines += [f"left out: {reason}" for reason in self.skipped]
        return lines

    def to_json(self) -> dict[str, Any]:
        """Return the plan as JSON data (recorded beside the trained model)."""
        return {
            "model": self.model,
            "traces": self.traces,
            "options": asdict(self.options),
            "steps": self.steps,
            "totals": self.totals(),
            "parameters": self.parameters,
            "trainable": self.trainable,
            "skipped": self.skipped,
        }


def lora_targets(model: Any) -> list[str]:
    """Return the names of the language model's linear layers (where adapters go).

    Every ``torch.nn.Linear`` outside the vision tower, but the output head.

    Parameters
    ----------
    model : transformers.PreTrainedModel

    Returns
    -------
    list of str
        Full module names, as PEFT's ``target_modules`` takes them.
    """
    import torch

    vision = _vision_prefixes(model)
    return [
        name
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear)
        and not any(name == p or name.startswith(p + ".") for p in vision)
        and name.rpartition(".")[2] != "lm_head"
    ]


def vision_parameters(model: Any) -> list[Any]:
    """Return the vision tower's parameters (empty for a model without one)."""
    prefixes = _vision_prefixes(model)
    return [
        param
        for name, param in model.named_parameters()
        if any(name.startswith(p + ".") for p in prefixes)
    ]


def _vision_prefixes(model: Any) -> list[str]:
    """Return the module names of the vision tower (``model.visual`` in Qwen2.5-VL)."""
    return [
        name
        for name, _ in model.named_modules()
        if name.rpartition(".")[2] in ("visual", "vision_tower", "vision_model")
    ]
