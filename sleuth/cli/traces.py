"""``sleuth traces``: investigations of a labelled set as training data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sleuth.agent.backends import PROVIDERS
from sleuth.agent.frames import DEFAULT_FAMILY
from sleuth.cli.common import backend_spec, err, out, registry_for
from sleuth.settings import Settings

app = typer.Typer(
    help="Training traces: the investigation's requests and answers on a labelled set.",
    no_args_is_help=True,
)


@app.command("export")
def export_command(
    sources: Annotated[
        list[Path], typer.Argument(help="Manifest CSVs or real/ + fake/ folders, read as one set.")
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder.", metavar="DIR")],
    backend: Annotated[
        str | None,
        typer.Option("--backend", help=f"{', '.join(PROVIDERS)} (default offline)."),
    ] = None,
    model: Annotated[str | None, typer.Option("--model", help="Model name (openai).")] = None,
    base_url: Annotated[
        str | None, typer.Option("--base-url", help="OpenAI-compatible server (openai).")
    ] = None,
    render_for: Annotated[
        str,
        typer.Option(
            "--render-for",
            help="Offline: the model (or model family) whose requests are composed; its "
            "family sets the box frame and the picture size (SLEUTH_MODEL_MAX_PIXELS and "
            "SLEUTH_MODEL_MAX_IMAGES apply too).",
        ),
    ] = DEFAULT_FAMILY,
    keep: Annotated[
        str,
        typer.Option("--keep", help="correct (only verdicts that match the label) or all."),
    ] = "correct",
    balance: Annotated[
        bool, typer.Option("--balance", help="Keep as many real cases as fake ones.")
    ] = False,
    max_steps: Annotated[
        int | None, typer.Option("--max-steps", help="Reasoning turns per case.")
    ] = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="openai (chat JSONL, images as files) or trl (messages + images + tools "
            "columns for TRL's SFTTrainer).",
        ),
    ] = "openai",
    composites: Annotated[
        int,
        typer.Option(
            "--composites",
            min=0,
            help="Add N composites (a real image with a pasted region), labelled fake, the "
            "region known.",
        ),
    ] = 0,
    limit: Annotated[int, typer.Option("--limit", min=0, help="First N images (0: all).")] = 0,
    seed: Annotated[int, typer.Option("--seed", help="Chooses the composites.")] = 0,
) -> None:
    """Investigate every image and write one training record per case to DIR/traces.jsonl.

    Each record holds the requests as the model server receives them (messages with
    images, tool schemas), the answers (tool calls, the verdict JSON), the label and the
    outcome. With the offline analyst, the requests are those a model of the --render-for
    family would be sent, answered with the analyst's decisions.
    """
    from sleuth.evaluation.sources import read_sources
    from sleuth.evaluation.traces import (
        FORMATS,
        KEEP,
        ExportOptions,
        export_traces,
        recording_backend,
        trace_cases,
    )

    if keep not in KEEP:
        raise typer.BadParameter(f"use one of {', '.join(KEEP)}", param_hint="--keep")
    if fmt not in FORMATS:
        raise typer.BadParameter(f"use one of {', '.join(FORMATS)}", param_hint="--format")
    settings = Settings.load(
        backend=backend_spec(backend, model), base_url=base_url, max_steps=max_steps
    )
    samples = read_sources(sources)[: limit or None]
    options = ExportOptions(
        keep=keep,  # type: ignore[arg-type]
        balance=balance,
        fmt=fmt,  # type: ignore[arg-type]
        composites=composites,
        seed=seed,
    )
    skipped: list[str] = []
    recorder = recording_backend(settings.backend, settings.backend_options(), render_for)
    try:
        with err.status("investigating ...") as status:
            summary = export_traces(
                trace_cases(
                    samples,
                    composites=composites,
                    seed=seed,
                    limits=settings.image_limits,
                    skipped=skipped,
                ),
                out=out_dir,
                recorder=recorder,
                registry=registry_for(settings),
                context=settings.context(),
                options=options,
                progress=lambda key: status.update(f"done: {key}"),
            )
    finally:
        recorder.close()
    for line in skipped + summary["failed"]:
        err.print(f"skipped {line}", markup=False, highlight=False)
    out.print(
        f"{summary['records']} record(s) of {summary['kept_cases']} case(s) written to "
        f"{out_dir / 'traces.jsonl'} ({summary['correct']} of {summary['cases']} verdicts "
        f"correct; kept: {keep}{', balanced' if balance else ''})",
        markup=False,
        highlight=False,
    )
