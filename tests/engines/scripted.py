"""Overfit the tiny VLM to a script of chats, so agent loops against real engines are exact.

A random model never calls a tool. Trained for a minute on a few dozen chats, the tiny model
answers each prompt shape with its scripted completion (a ``<tool_call>`` for ``zoom``, a JSON
verdict, ...) whatever the image or the wording, greedily and exactly, through transformers and
through vLLM.

The training prompts must be rendered exactly as the serving engine renders the agent's
requests, or the model answers garbage. So each :class:`ChatExample` holds the request as an
OpenAI client sends it (messages, tool schemas) and is rendered by
:mod:`sleuth.training.rendering`, the rendering ``sleuth train-vlm`` trains with (the
processor's own chat template after vLLM's two normalisations). What differs from that
command is only when training stops: here, once greedy decoding reproduces every
completion with a margin.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sleuth.training.rendering import encode, encode_prompt
from tests.engines.tiny_vlm import EOS_TOKEN, cached_build, tiny_vlm_dir

#: Training stops once every target token wins its greedy choice by this many logits.
MARGIN = 4.0
LEARNING_RATE = 3e-3
WARMUP_STEPS = 20
MAX_STEPS = 2000


@dataclasses.dataclass(frozen=True)
class ChatExample:
    """One scripted turn: a request as an OpenAI client sends it, and the answer to learn.

    Parameters
    ----------
    messages : list of dict
        OpenAI chat messages (roles system, user, assistant, tool). Content is a string or a
        list of ``{"type": "text", "text": ...}`` and ``{"type": "image_url", "image_url":
        {"url": "data:image/png;base64,..."}}`` parts; assistant messages may carry
        ``tool_calls`` in OpenAI format.
    tools : list of dict or None
        OpenAI function tool schemas, exactly as the client sends them.
    completion : str
        The assistant text to produce, e.g. ``'<tool_call>\\n{"name": "zoom", "arguments":
        {...}}\\n</tool_call>'`` or a JSON verdict.
    """

    messages: list[dict]
    tools: list[dict] | None
    completion: str

    def to_json(self) -> dict[str, Any]:
        """The example as plain JSON data (key order kept: it shows in the rendering)."""
        return {"messages": self.messages, "tools": self.tools, "completion": self.completion}


def encode_example(processor, example: ChatExample) -> tuple[dict, int]:
    """Model inputs for prompt + completion + end of turn, and the completion's length.

    The product's rendering (:func:`sleuth.training.rendering.encode`, what ``sleuth
    train-vlm`` trains on), so the tests' model and a user's learn the same prompts.

    Parameters
    ----------
    processor : transformers.ProcessorMixin
        The model's processor.
    example : ChatExample
        The scripted turn.

    Returns
    -------
    tuple of (dict, int)
        The inputs with ``labels`` (-100 on the prompt), and the number of target tokens.
    """
    encoded = encode(processor, example.messages, example.tools, example.completion + EOS_TOKEN)
    return encoded.inputs, encoded.target_tokens


def greedy_margin(model, inputs: dict, n_target: int) -> float:
    """Smallest lead of a target token's logit over the best other token (teacher forced).

    Positive means greedy decoding reproduces the whole target.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        The model.
    inputs : dict
        Output of :func:`encode_example`.
    n_target : int
        Number of target tokens at the end of ``inputs["input_ids"]``.

    Returns
    -------
    float
        The smallest margin over the target tokens.
    """
    import torch

    kwargs = {k: v for k, v in inputs.items() if k != "labels"}
    with torch.no_grad():
        logits = model(**kwargs).logits
    return _margin(logits, inputs["input_ids"], n_target)


def _margin(logits, input_ids, n_target: int) -> float:
    """Smallest target-logit lead over the target positions of one sequence."""
    import torch

    logits = logits[0, -n_target - 1 : -1].float().clone()
    target = input_ids[0, -n_target:]
    chosen = logits.gather(1, target[:, None])[:, 0]
    logits.scatter_(1, target[:, None], -torch.inf)
    return float((chosen - logits.max(dim=1).values).min())


def generate(model, processor, messages: Sequence[dict], tools, max_new_tokens: int = 96) -> str:
    """Greedy completion of a request through transformers, end-of-turn token removed.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        The model.
    processor : transformers.ProcessorMixin
        Its processor.
    messages : sequence of dict
        OpenAI chat messages.
    tools : sequence of dict or None
        OpenAI function tools as a client sends them.
    max_new_tokens : int
        Generation budget.

    Returns
    -------
    str
        The generated text (added tokens such as ``<tool_call>`` kept).
    """
    import torch

    inputs = encode_prompt(processor, messages, tools)
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    new = out[0, inputs["input_ids"].shape[1] :]
    return processor.tokenizer.decode(new, skip_special_tokens=True)


def train_scripted(
    base_dir: Path,
    out_dir: Path,
    examples: Sequence[ChatExample],
    *,
    seed: int = 0,
    max_steps: int = MAX_STEPS,
    held_out: Sequence[ChatExample] = (),
) -> Path:
    """Overfit the model in ``base_dir`` to ``examples`` and save it to ``out_dir``.

    AdamW over the examples in seeded random order, loss on the completion tokens and the
    end-of-turn token only. Training stops as soon as, on every example (and every held-out
    example), every target token leads the best other token by :data:`MARGIN` logits: greedy
    decoding then reproduces the completions, with room for another engine's rounding.

    Parameters
    ----------
    base_dir : Path
        A model folder (the tiny VLM).
    out_dir : Path
        Folder to write the trained model to (processor files copied from ``base_dir``).
    examples : sequence of ChatExample
        The script. Vary images and wording between examples of the same shape so the model
        learns to ignore them.
    seed : int
        Seed for the example order.
    max_steps : int
        Give up (``RuntimeError``) when the margin is not reached by then.
    held_out : sequence of ChatExample
        Examples never trained on that must reach the margin too before training stops: a
        few prompts of each shape with other images and wording make sure the model keys on
        the shape, not on what it memorised.

    Returns
    -------
    Path
        ``out_dir``; its ``training.json`` records steps, loss, margins and seconds.

    Raises
    ------
    RuntimeError
        If the margin is not reached within ``max_steps``.
    """
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    if not examples:
        raise ValueError("no examples to train on")
    started = time.perf_counter()
    processor = AutoProcessor.from_pretrained(base_dir)
    model = AutoModelForImageTextToText.from_pretrained(base_dir, dtype=torch.float32)
    # The vision tower stays as built: trained, it learns huge image-specific features that
    # the language model then memorises, and held-out images break the script.
    model.model.visual.requires_grad_(False)
    encoded = [encode_example(processor, example) for example in examples]
    checks = [encode_example(processor, example) for example in held_out]
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    trained = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trained, lr=LEARNING_RATE, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / WARMUP_STEPS)
    )
    step, losses = 0, []
    margins = [-math.inf] * len(encoded)  # per example, from its latest training forward
    held_margin = -math.inf
    while min(margins) < MARGIN or held_margin < MARGIN:
        model.train()
        for index in torch.randperm(len(encoded), generator=generator).tolist():
            if step >= max_steps:
                raise RuntimeError(
                    f"scripted training did not converge in {max_steps} steps: smallest "
                    f"greedy margin {min(margins):.2f} (held out: {held_margin:.2f}), "
                    f"wanted {MARGIN}; last loss {losses[-1]:.4f}"
                )
            inputs, n_target = encoded[index]
            output = model(**inputs)
            output.loss.backward()
            torch.nn.utils.clip_grad_norm_(trained, 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(output.loss.item())
            margins[index] = _margin(output.logits.detach(), inputs["input_ids"], n_target)
            step += 1
        if min(margins) >= MARGIN:  # measured before each update: confirm on the final weights
            model.eval()
            margins = [greedy_margin(model, inputs, n) for inputs, n in encoded]
            held = [greedy_margin(model, inputs, n) for inputs, n in checks]
            held_margin = min(held, default=math.inf)
    out_dir = Path(out_dir)
    shutil.copytree(base_dir, out_dir, dirs_exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    report = {
        "examples": len(encoded),
        "held_out": len(checks),
        "steps": step,
        "last_loss": round(sum(losses[-len(encoded) :]) / len(encoded), 6),
        "min_margin": round(min(margins), 3),
        "min_held_out_margin": round(held_margin, 3) if checks else None,
        "seconds": round(time.perf_counter() - started, 1),
    }
    (out_dir / "training.json").write_text(json.dumps(report, indent=1) + "\n")
    return out_dir


def scripted_key(
    examples: Sequence[ChatExample], *, seed: int = 0, held_out: Sequence[ChatExample] = ()
) -> str:
    """Cache key: the base model's identity, this trainer's source, the examples, the seed.

    The examples are hashed as the exact JSON a client would send (key order kept), which with
    the base model's template determines the rendered training data.

    Parameters
    ----------
    examples : sequence of ChatExample
        The script.
    seed : int
        Training seed.
    held_out : sequence of ChatExample
        The held-out checks (they decide when training stops).

    Returns
    -------
    str
        A 16-hex-digit key.
    """
    digest = hashlib.sha256()
    digest.update(tiny_vlm_dir().name.encode())
    digest.update(Path(__file__).read_bytes())
    for group in (examples, held_out):
        digest.update(json.dumps([e.to_json() for e in group], ensure_ascii=False).encode())
    digest.update(str(seed).encode())
    return digest.hexdigest()[:16]


def scripted_vlm_dir(
    examples: Sequence[ChatExample], *, seed: int = 0, held_out: Sequence[ChatExample] = ()
) -> Path:
    """The tiny VLM trained on ``examples``, cached under ``.cache/engines`` and reused.

    Parameters
    ----------
    examples : sequence of ChatExample
        The script.
    seed : int
        Training seed.
    held_out : sequence of ChatExample
        Checks never trained on (see :func:`train_scripted`).

    Returns
    -------
    Path
        ``.cache/engines/scripted-<key>`` (see :func:`scripted_key`).
    """
    base = tiny_vlm_dir()
    return cached_build(
        f"scripted-{scripted_key(examples, seed=seed, held_out=held_out)}",
        lambda tmp: train_scripted(base, tmp, examples, seed=seed, held_out=held_out),
    )
