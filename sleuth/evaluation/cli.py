"""``sleuth eval`` and ``sleuth train-fusion``: thin commands over the evaluation package.

Only typer and the standard library load here; the work (and scikit-learn, matplotlib)
is imported inside the commands, so ``sleuth --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

DEFAULT_FEATURES = "colour,size_generator_lossless"
"""The shipped pixel model's candidates: the colour tool's statistics (saturation and
clipping, the classifier-free-guidance look; chroma detail, the absence of demosaicing)
and the generator's frame on a losslessly stored file (see docs/evaluation.md)."""
DEFAULT_C_GRID = "0.01,0.03,0.1"
"""L2 strengths the fit chooses among by inner leave-one-source-out."""

SOURCES_HELP = "Manifest CSVs or real/ + fake/ folders, read as one set."
TRACK_CHOICES = {
    "native": ("native",),
    "laundered": ("laundered",),
    "web": ("web",),
    "both": ("native", "laundered"),
    "all": ("native", "laundered", "web"),
}
"""``--track`` values: one track, ``both`` (native and laundered) or ``all`` three."""


def _tracks(track: str) -> tuple[str, ...]:
    if track not in TRACK_CHOICES:
        raise typer.BadParameter(f"use one of {', '.join(TRACK_CHOICES)}", param_hint="--track")
    return TRACK_CHOICES[track]


def train_fusion_command(
    sources: Annotated[list[Path], typer.Argument(help=SOURCES_HELP)],
    out: Annotated[Path, typer.Option("--out", help="Coefficients file to write.")] = Path(
        "fusion-lr.json"
    ),
    version: Annotated[str, typer.Option(help="Version recorded in verdicts.")] = "lr-v6",
    features: Annotated[
        str,
        typer.Option(
            help="Comma-separated candidates of the pixel model: tool names (all their "
            "candidate features) or single feature names. Each is kept only when it points "
            "the same way on the native, laundered and web tracks of the training rows."
        ),
    ] = DEFAULT_FEATURES,
    c_grid: Annotated[
        str, typer.Option("--c-grid", help="L2 strengths to choose among (inner LOSO).")
    ] = DEFAULT_C_GRID,
    jobs: Annotated[int, typer.Option("--jobs", min=1, help="Worker processes.")] = 1,
    cache: Annotated[Path, typer.Option(help="Feature cache folder.")] = Path(
        ".cache/evaluation/features"
    ),
    plugins: Annotated[
        bool,
        typer.Option(
            "--plugins/--no-plugins",
            help="Fit a weight for each installed calibrated plugin (a tool declared with "
            "calibrated=Calibration(...)) on top of the rest; --no-plugins leaves them out "
            "of the file, so their declared weights apply.",
        ),
    ] = True,
) -> None:
    """Fit the fusion's pixel model on every track; score it leave-one-source-out.

    Calibrated plugins get a fitted weight each (see docs/evaluation.md).
    """
    from rich.console import Console

    from sleuth.evaluation.run import scores_text, select_features, train_from_source

    selection = [t.strip() for t in features.split(",") if t.strip()]
    try:
        select_features(selection)
        strengths = [float(c) for c in c_grid.split(",") if c.strip()]
        if not strengths or min(strengths) <= 0:
            raise ValueError("--c-grid needs positive numbers")
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None
    console = Console(stderr=True)
    document = train_from_source(
        sources,
        out=out,
        version=version,
        features=selection,
        c_grid=strengths,
        jobs=jobs,
        cache=cache,
        console=console,
        plugins=plugins,
    )
    for track, figures in document["loso"].items():
        console.print(f"leave one source out, {track:9s} {scores_text(figures)}", soft_wrap=True)
    console.print(f"wrote {out}")


def eval_command(
    sources: Annotated[list[Path], typer.Argument(help=SOURCES_HELP)],
    track: Annotated[
        str, typer.Option(help="native, laundered, web, both (native and laundered) or all.")
    ] = "all",
    backend: Annotated[
        list[str] | None,
        typer.Option(
            "--backend",
            help="Reasoning backend (offline, openai:MODEL, transformers:FOLDER); give it "
            "several times to compare backends in one report (default: offline).",
        ),
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option("--base-url", help="OpenAI-compatible server of every openai backend."),
    ] = None,
    jobs: Annotated[int, typer.Option("--jobs", min=1, help="Worker processes.")] = 1,
    out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("eval-out"),
    localisation: Annotated[
        int, typer.Option(help="Composites for the localisation track (0: skip).")
    ] = 40,
    limit: Annotated[int, typer.Option(help="Only the first N images (0: all).")] = 0,
    engine: Annotated[
        str, typer.Option("--engine", help="local (a process pool) or ray (as sleuth scan).")
    ] = "local",
    address: Annotated[
        str | None, typer.Option("--address", help="A Ray cluster to join (--engine ray).")
    ] = None,
) -> None:
    """Evaluate backends on a labelled image set; write results.jsonl and report.html.

    Give --backend several times to compare backends side by side (docs/evaluation.md).
    """
    from rich.console import Console

    from sleuth.evaluation.backends import BackendUnavailable
    from sleuth.evaluation.run import run_evaluation

    tracks = _tracks(track)
    if engine not in ("local", "ray"):
        raise typer.BadParameter("use local or ray", param_hint="--engine")
    console = Console(stderr=True)
    try:
        summary = run_evaluation(
            sources,
            tracks=tracks,
            backends=backend or ["offline"],
            jobs=jobs,
            engine=engine,
            address=address,
            out=out,
            localisation=localisation,
            limit=limit,
            console=console,
            base_url=base_url,
        )
    except BackendUnavailable as err:
        raise typer.BadParameter(str(err), param_hint="--backend") from None
    for line in summary:
        console.print(line, soft_wrap=True)
    console.print(f"wrote {out / 'results.jsonl'} and {out / 'report.html'}")


def eval_compare_command(
    runs: Annotated[
        list[Path],
        typer.Argument(help="Earlier `sleuth eval --out` folders (or their results.jsonl)."),
    ],
    out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("eval-compare"),
) -> None:
    """Compare earlier eval runs in one report, without analysing anything again.

    Each run's backends become method rows beside the baselines (docs/evaluation.md).
    """
    from rich.console import Console

    from sleuth.evaluation.compare import RunError, compare_runs

    console = Console(stderr=True)
    try:
        lines = compare_runs(runs, out=out)
    except RunError as err:
        raise typer.BadParameter(str(err), param_hint="RUNS") from None
    for line in lines:
        console.print(line, soft_wrap=True)
    console.print(f"wrote {out / 'results.jsonl'} and {out / 'report.html'}")
