"""``sleuth eval`` and ``sleuth train-fusion``: thin commands over the evaluation package.

Only typer and the standard library load here; the work (and scikit-learn, matplotlib)
is imported inside the commands, so ``sleuth --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

DEFAULT_FEATURES = "provenance,dimensions,colour,noise_npr_deviation,at_gen_size"
"""The shipped model's features: three tools' groups, one noise statistic and the colour
statistics at generator sizes (see docs/evaluation.md for how they were chosen)."""


def train_fusion_command(
    manifest: Annotated[Path, typer.Argument(help="Manifest CSV or real/ + fake/ folder.")],
    out: Annotated[Path, typer.Option("--out", help="Coefficients file to write.")] = Path(
        "fusion-lr.json"
    ),
    version: Annotated[str, typer.Option(help="Version recorded in verdicts.")] = "lr-v5",
    features: Annotated[
        str,
        typer.Option(
            help="Comma-separated features the model uses: tool names (all their "
            "features), single feature names, or at_gen_size (the colour statistics "
            "gated by a generator's frame size)."
        ),
    ] = DEFAULT_FEATURES,
    c: Annotated[float, typer.Option("--c", help="Inverse L2 strength.")] = 0.1,
    seed: Annotated[int, typer.Option(help="Seed of the fold assignment.")] = 0,
    repeats: Annotated[
        int,
        typer.Option(
            min=1,
            help="Repeat the CV over this many distinct fold assignments (--seed's first) "
            "and record the spread.",
        ),
    ] = 5,
    jobs: Annotated[int, typer.Option("--jobs", min=1, help="Worker processes.")] = 1,
    cache: Annotated[Path, typer.Option(help="Feature cache folder.")] = Path(
        ".cache/evaluation/features"
    ),
    calibration: Annotated[
        str,
        typer.Option(
            help="auto (chosen by nested CV), identity, platt or platt-slope.",
        ),
    ] = "auto",
) -> None:
    """Fit the calibrated fusion with CV grouped by source_repo; write a coefficients file."""
    from rich.console import Console

    from sleuth.evaluation.run import select_features, spread_text, train_from_source

    selection = [t.strip() for t in features.split(",") if t.strip()]
    try:
        select_features(selection)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--features") from None
    console = Console(stderr=True)
    document = train_from_source(
        manifest,
        out=out,
        version=version,
        features=selection,
        c=c,
        seed=seed,
        jobs=jobs,
        cache=cache,
        console=console,
        calibration=calibration,
        repeats=repeats,
    )
    for track, figures in document["cv"].items():
        console.print(
            f"grouped CV {track}: AUROC {figures['auroc']:.3f}  ECE {figures['ece']:.3f} "
            f"(floor {figures['ece_floor']:.3f})"
        )
    for track, spread in document.get("cv_repeated", {}).items():
        console.print(f"grouped CV {track} {spread_text(spread)}")
    console.print(f"wrote {out}")


def eval_command(
    source: Annotated[Path, typer.Argument(help="Manifest CSV or real/ + fake/ folder.")],
    track: Annotated[str, typer.Option(help="native, laundered or both.")] = "both",
    backend: Annotated[str, typer.Option(help="Reasoning backend (provider:model).")] = "offline",
    jobs: Annotated[int, typer.Option("--jobs", min=1, help="Worker processes.")] = 1,
    out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("eval-out"),
    localisation: Annotated[
        int, typer.Option(help="Composites for the localisation track (0: skip).")
    ] = 40,
    limit: Annotated[int, typer.Option(help="Only the first N images (0: all).")] = 0,
) -> None:
    """Evaluate a backend on a labelled image set; write results.jsonl and report.html."""
    from rich.console import Console

    from sleuth.evaluation.run import run_evaluation

    tracks = {"native": ("native",), "laundered": ("laundered",), "both": ("native", "laundered")}
    if track not in tracks:
        raise typer.BadParameter("use native, laundered or both", param_hint="--track")
    console = Console(stderr=True)
    summary = run_evaluation(
        source,
        tracks=tracks[track],
        backend=backend,
        jobs=jobs,
        out=out,
        localisation=localisation,
        limit=limit,
        console=console,
    )
    for line in summary:
        console.print(line, soft_wrap=True)
    console.print(f"wrote {out / 'results.jsonl'} and {out / 'report.html'}")
