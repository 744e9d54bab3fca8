"""``sleuth train-vlm``: fine-tune a vision-language model on exported traces."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sleuth.cli.common import err, out

SCHEDULES = ("cosine", "constant_with_warmup", "linear")


def register(app: typer.Typer) -> None:
    """Add ``train-vlm`` to ``app``."""
    app.command("train-vlm")(train_vlm_command)


def train_vlm_command(
    traces: Annotated[
        Path, typer.Argument(help="A folder written by `sleuth traces export` (either format).")
    ],
    model: Annotated[
        str, typer.Option("--model", help="The base model: a folder, or a name in the local cache.")
    ],
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Folder for the trained model.", metavar="DIR")
    ] = None,
    full: Annotated[
        bool,
        typer.Option("--full", help="Train every language-model weight instead of LoRA adapters."),
    ] = False,
    rank: Annotated[int, typer.Option("--rank", min=1, help="LoRA rank.")] = 16,
    alpha: Annotated[
        int | None, typer.Option("--alpha", min=1, help="LoRA scale (default twice the rank).")
    ] = None,
    dropout: Annotated[float, typer.Option("--dropout", min=0.0, max=0.9)] = 0.05,
    epochs: Annotated[float, typer.Option("--epochs", min=0.01)] = 3.0,
    max_steps: Annotated[
        int, typer.Option("--max-steps", min=0, help="Optimiser steps (replaces --epochs).")
    ] = 0,
    learning_rate: Annotated[
        float | None,
        typer.Option("--learning-rate", min=0.0, help="Peak rate (default 2e-4 LoRA, 1e-5 full)."),
    ] = None,
    schedule: Annotated[
        str, typer.Option("--schedule", help=f"Learning-rate schedule: {', '.join(SCHEDULES)}.")
    ] = "cosine",
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 1,
    accumulation: Annotated[
        int, typer.Option("--accumulation", min=1, help="Batches per optimiser step.")
    ] = 8,
    max_tokens: Annotated[
        int | None,
        typer.Option("--max-tokens", min=1, help="Leave out longer examples (listed)."),
    ] = None,
    train_vision: Annotated[
        bool, typer.Option("--train-vision", help="Also train the vision tower.")
    ] = False,
    merge: Annotated[
        bool,
        typer.Option(
            "--merge/--no-merge", help="With LoRA, also write the merged model (served as is)."
        ),
    ] = True,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Print the plan and the token counts; train nothing."),
    ] = False,
) -> None:
    """Fine-tune a vision-language model on the requests and answers of exported traces.

    Every request of every case is rendered with the model's own processor and chat
    template exactly as vLLM renders it when sleuth asks, and the answer (tool calls or
    the verdict JSON) is learned. Needs the train extra. The result serves with
    `sleuth model-server DIR`.
    """
    from sleuth.training.plan import TrainOptions
    from sleuth.training.vlm import make_plan, train_vlm

    if schedule not in SCHEDULES:
        raise typer.BadParameter(f"use one of {', '.join(SCHEDULES)}", param_hint="--schedule")
    if out_dir is None and not dry_run:
        raise typer.BadParameter("where to write the trained model", param_hint="--out")
    options = TrainOptions(
        lora=not full,
        rank=rank,
        alpha=alpha,
        dropout=dropout,
        epochs=epochs,
        max_steps=max_steps,
        learning_rate=learning_rate,
        schedule=schedule,
        batch_size=batch_size,
        accumulation=accumulation,
        max_tokens=max_tokens,
        train_vision=train_vision,
        merge=merge,
        seed=seed,
    )
    if dry_run:
        plan = make_plan(traces, model, options)[0]
        for line in plan.describe():
            out.print(line, markup=False, highlight=False)
        return
    assert out_dir is not None
    report = train_vlm(
        traces,
        model,
        out_dir,
        options,
        progress=lambda line: err.print(line, markup=False, highlight=False),
    )
    out.print(
        f"trained in {report['seconds']:.0f} s ({report['steps']} steps, final loss "
        f"{report['final_loss']}); model written to {out_dir}; serve it with "
        f"`sleuth model-server {out_dir}`",
        markup=False,
        highlight=False,
    )
