"""Supervised fine-tuning of a vision-language model on exported traces (the ``train`` extra).

Each request of each exported case is one example: the request rendered as the serving
engine renders it, the answer learned (:mod:`sleuth.training.rendering`). TRL's
``SFTTrainer`` runs the optimisation with PEFT's LoRA adapters by default; the examples
are rendered here, not by TRL's vision collator, because that one does not pass the tool
schemas to the chat template and the model would learn prompts it is never sent.

The output folder holds a model any engine serves as it is (with LoRA, the base model with
the adapters merged in), its processor and chat template, the adapters alone in
``adapter/`` and ``training.json`` (the plan, the losses, the seconds).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sleuth.tools import SleuthError
from sleuth.training.examples import TrainingExample, read_examples
from sleuth.training.plan import (
    ExampleCount,
    TrainingPlan,
    TrainOptions,
    lora_targets,
    vision_parameters,
)
from sleuth.training.rendering import EncodedExample, answer_text, collate, encode

TRAINING_FILE = "training.json"
ADAPTER_DIR = "adapter"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
LIBRARY_DEPRECATIONS = r".*checkpointing.* is deprecated and will be removed in v6"


def require_training() -> None:
    """Raise a clear error unless the ``train`` extra (and the ``local`` one) is installed."""
    missing = []
    for module in ("torch", "transformers", "trl", "peft", "datasets"):
        try:
            __import__(module)
        except Exception as err:  # an ImportError, or a CUDA-linked wheel failing to load
            missing.append(f"{module} ({type(err).__name__}: {err})")
    if missing:
        raise SleuthError(
            "sleuth train-vlm needs the train extra: pip install torch==2.13.0 "
            f"'sleuth[local,train]' on a CPU-only machine, 'sleuth[local,train]' with a GPU; "
            f"missing: {', '.join(missing)}"
        )


def load_processor(model: str) -> Any:
    """Load a model's processor, or raise a clear error."""
    from transformers import AutoProcessor

    try:
        return AutoProcessor.from_pretrained(model)
    except (OSError, ValueError) as err:
        raise SleuthError(f"cannot load the processor of {model!r}: {err}") from None


def encode_examples(
    processor: Any, examples: Sequence[TrainingExample], max_tokens: int | None
) -> tuple[list[EncodedExample], list[ExampleCount], list[str]]:
    """Render and encode every example; leave out the ones longer than ``max_tokens``.

    Returns
    -------
    encoded : list of EncodedExample
    counts : list of ExampleCount
        One per kept example.
    skipped : list of str
        Why each left-out example was left out.
    """
    encoded, counts, skipped = [], [], []
    for number, example in enumerate(examples, start=1):
        target = answer_text(processor, example.messages, example.tools, example.answer)
        item = encode(processor, example.messages, example.tools, target)
        if max_tokens is not None and item.tokens > max_tokens:
            skipped.append(
                f"example {number} of case {example.case}: {item.tokens} tokens > {max_tokens}"
            )
            continue
        encoded.append(item)
        counts.append(
            ExampleCount(example.case, example.images, item.prompt_tokens, item.target_tokens)
        )
    if not encoded:
        raise SleuthError(f"no example left to train on ({len(skipped)} longer than max tokens)")
    return encoded, counts, skipped


def make_plan(
    traces: Path, model: str, options: TrainOptions
) -> tuple[TrainingPlan, list[EncodedExample], Any]:
    """Read, render and count the examples; count the parameters without loading weights.

    Returns
    -------
    plan : TrainingPlan
    encoded : list of EncodedExample
    processor : transformers.ProcessorMixin
    """
    require_training()
    examples = read_examples(traces)
    processor = load_processor(model)
    encoded, counts, skipped = encode_examples(processor, examples, options.max_tokens)
    plan = TrainingPlan(str(model), str(traces), options, counts, skipped)
    plan.parameters, plan.trainable = count_parameters(model, options)
    return plan, encoded, processor


def count_parameters(model: str, options: TrainOptions) -> tuple[int, int]:
    """Return (all, trained) parameters of a run, from the model's config (no weights read)."""
    from accelerate import init_empty_weights
    from transformers import AutoConfig, AutoModelForImageTextToText

    try:
        config = AutoConfig.from_pretrained(model)
    except (OSError, ValueError) as err:
        raise SleuthError(f"cannot read the config of {model!r}: {err}") from None
    with init_empty_weights():
        empty = AutoModelForImageTextToText.from_config(config)
    total = sum(p.numel() for p in empty.parameters())
    vision = sum(p.numel() for p in vision_parameters(empty))
    if not options.lora:
        return total, total - (0 if options.train_vision else vision)
    modules = dict(empty.named_modules())
    adapters = sum(
        options.rank * (modules[name].in_features + modules[name].out_features)
        for name in lora_targets(empty)
    )
    return total + adapters, adapters + (vision if options.train_vision else 0)


def train_vlm(
    traces: Path,
    model: str,
    out: Path,
    options: TrainOptions,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Fine-tune ``model`` on the traces in ``traces``; write the result to ``out``.

    Parameters
    ----------
    traces : Path
        A folder written by ``sleuth traces export`` (either format).
    model : str
        A model folder (or a name in the local Hugging Face cache).
    out : Path
        The folder to write (created; files of the same names are replaced).
    options : TrainOptions
    progress : callable, optional
        Called with a line of text as training goes.

    Returns
    -------
    dict
        What ``out/training.json`` records: the plan, the losses, the seconds.
    """
    import torch
    from datasets import Dataset
    from transformers import AutoModelForImageTextToText, Trainer, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    started = time.perf_counter()
    plan, encoded, processor = make_plan(traces, model, options)
    say = progress or (lambda line: None)
    for line in plan.describe():
        say(line)
    gpu = torch.cuda.is_available()
    dtype = torch.bfloat16 if gpu and torch.cuda.is_bf16_supported() else torch.float32
    try:
        network = AutoModelForImageTextToText.from_pretrained(model, dtype=dtype)
    except (OSError, ValueError) as err:
        raise SleuthError(f"cannot load the model {model!r}: {err}") from None
    if not options.train_vision:
        for param in vision_parameters(network):
            param.requires_grad_(False)
    peft_config = None
    if options.lora:
        from peft import LoraConfig

        peft_config = LoraConfig(
            r=options.rank,
            lora_alpha=options.alpha or 2 * options.rank,
            lora_dropout=options.dropout,
            target_modules=lora_targets(network),
            modules_to_save=None,
            task_type="CAUSAL_LM",
        )
    pad = processor.tokenizer.pad_token_id
    pad = processor.tokenizer.eos_token_id if pad is None else pad
    losses: list[dict[str, float]] = []

    class Progress(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: D102
            if logs and "loss" in logs:
                losses.append({"step": state.global_step, "loss": round(float(logs["loss"]), 6)})
                say(f"step {state.global_step}/{state.max_steps}: loss {logs['loss']:.4f}")

    class AnswerTrainer(SFTTrainer):
        """SFT; on a CPU with the model's own loss (cross-entropy on the answer's tokens).

        TRL's tiled LM head saves a GPU the memory of the full logits; on a CPU it only
        costs time (twice the step time of the tiny test model).
        """

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: D102
            if gpu:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            return Trainer.compute_loss(self, model, inputs, return_outputs, num_items_in_batch)

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sleuth-train-") as work:
        args = SFTConfig(
            output_dir=work,
            num_train_epochs=options.epochs,
            max_steps=options.max_steps if options.max_steps > 0 else -1,
            per_device_train_batch_size=options.batch_size,
            gradient_accumulation_steps=options.accumulation,
            learning_rate=options.peak_learning_rate,
            lr_scheduler_type=options.schedule,
            warmup_steps=max(1, plan.steps // 20),
            weight_decay=0.0,
            max_grad_norm=1.0,
            logging_steps=max(1, plan.steps // 20),
            save_strategy="no",
            report_to="none",
            seed=options.seed,
            data_seed=options.seed,
            bf16=dtype == torch.bfloat16,
            use_cpu=not gpu,
            remove_unused_columns=False,
            dataset_kwargs={"skip_prepare_dataset": True},
            disable_tqdm=True,
            # recomputing activations saves a GPU's memory; on a CPU it only costs time
            activation_checkpointing=gpu,
        )
        with warnings.catch_warnings():
            # TRL 1.16 still calls transformers' old checkpointing names; nothing to act on
            warnings.filterwarnings("ignore", LIBRARY_DEPRECATIONS, FutureWarning)
            trainer = AnswerTrainer(
                model=network,
                args=args,
                train_dataset=Dataset.from_dict({"example": list(range(len(encoded)))}),
                data_collator=lambda rows: collate([encoded[r["example"]] for r in rows], pad),
                processing_class=processor,
                peft_config=peft_config,
                callbacks=[Progress()],
            )
            trainer.train()
        trained = trainer.model
    trained.eval()
    _copy_model_files(model, out)
    if options.lora:
        trained.save_pretrained(out / ADAPTER_DIR)
        if options.merge:
            trained.merge_and_unload().save_pretrained(out)
    else:
        trained.save_pretrained(out)
    processor.save_pretrained(out)
    report = plan.to_json() | {
        "losses": losses,
        "final_loss": losses[-1]["loss"] if losses else None,
        "device": "cuda" if gpu else "cpu",
        "dtype": str(dtype).removeprefix("torch."),
        "seconds": round(time.perf_counter() - started, 1),
        "versions": _versions(),
    }
    (out / TRAINING_FILE).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return report


def _copy_model_files(model: str, out: Path) -> None:
    """Copy a model folder's other files (configs, templates) beside the trained weights."""
    source = Path(model)
    if not source.is_dir():
        return
    for path in source.iterdir():
        if path.is_file() and not path.name.endswith((*WEIGHT_SUFFIXES, ".index.json")):
            shutil.copy2(path, out / path.name)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("torch", "transformers", "trl", "peft"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out
