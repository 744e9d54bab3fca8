"""``sleuth scan``: screen folders, lists, manifests and archives into a table."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from sleuth.agent.backends import PROVIDERS
from sleuth.cli.common import backend_spec, err, out
from sleuth.settings import Settings


def register(app: typer.Typer) -> None:
    """Add ``scan`` to ``app``."""
    app.command("scan")(scan_command)


def scan_command(
    sources: Annotated[
        list[str],
        typer.Argument(
            help="Folders (recursive), globs, .txt lists of paths, manifest .csv files, "
            "zip/tar archives or image files."
        ),
    ],
    out_dir: Annotated[
        Path, typer.Option("--out", help="Output folder (a rerun resumes it).", metavar="DIR")
    ],
    jobs: Annotated[int, typer.Option("--jobs", help="Worker processes.", min=1)] = 2,
    engine: Annotated[
        str, typer.Option("--engine", help="local (a process pool) or ray (Ray Data).")
    ] = "local",
    address: Annotated[
        str | None, typer.Option("--address", help="A Ray cluster to join (--engine ray).")
    ] = None,
    escalate: Annotated[
        bool,
        typer.Option("--escalate", help="Send what the survey leaves uncertain to the model."),
    ] = False,
    keep_cases: Annotated[
        bool, typer.Option("--keep-cases", help="Store the escalated images' cases.")
    ] = False,
    backend: Annotated[
        str | None, typer.Option("--backend", help=f"{', '.join(PROVIDERS)}, for --escalate.")
    ] = None,
    base_url: Annotated[
        str | None, typer.Option("--base-url", help="OpenAI-compatible server (openai).")
    ] = None,
    model: Annotated[str | None, typer.Option("--model", help="Model name or folder.")] = None,
) -> None:
    """Screen many images: one row each in DIR/rows.jsonl and rows.parquet, plus a summary.

    Each image gets the survey's verdict (the tools, the fusion, the stability check); with
    --escalate, the uncertain ones go to the model backend. Exact duplicates are analysed
    once; a rerun skips what the output already holds.
    """
    from sleuth.scan.run import ScanOptions, run_scan

    if engine not in ("local", "ray"):
        raise typer.BadParameter("use local or ray", param_hint="--engine")
    if (keep_cases or backend or model or base_url) and not escalate:
        raise typer.BadParameter(
            "only escalated images use a model and become cases; add --escalate",
            param_hint="--keep-cases/--backend",
        )
    settings = Settings.load(backend=backend_spec(backend, model), base_url=base_url)
    options = ScanOptions(
        sources=tuple(sources),
        out=out_dir,
        jobs=jobs,
        engine=engine,  # type: ignore[arg-type]
        address=address,
        escalate=escalate,
        keep_cases=keep_cases,
    )
    meter = Meter()
    try:
        report = run_scan(options, settings, meter.update)
    except KeyboardInterrupt:
        meter.end()
        err.print(
            f"stopped after {meter.done} of {meter.total} images; the output is complete up "
            f"to there. Run the same command again to continue.",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(130) from None
    meter.end()
    outputs = report.outputs
    out.print(
        f"{report.total} image{'' if report.total == 1 else 's'}: {report.analysed} analysed "
        f"({report.escalated} by the model), "
        f"{report.duplicates} duplicates, {report.errors} errors, {report.skipped} already "
        "in the output",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    table = outputs.get("parquet")
    out.print(f"rows: {out_dir / 'rows.jsonl'}" + (f", {table}" if table else ""), markup=False)
    if table is None:
        err.print("no Parquet table: pip install 'sleuth[scan]' (pyarrow) to get one", markup=False)
    out.print(f"summary: {outputs['summary']}", markup=False)


class Meter:
    """Progress on stderr: a bar with rate and ETA on a terminal, a line every 10 s off it."""

    def __init__(self) -> None:
        self.done = 0
        self.total = 0
        self.started = time.monotonic()
        self.shown = 0.0
        self._bar: Any = None
        self._task: Any = None

    def update(self, done: int, total: int, row: dict[str, Any] | None) -> None:
        """Record progress (the scan's callback)."""
        self.done, self.total = done, total
        if err.is_terminal:
            if self._bar is None:
                from rich.progress import (
                    BarColumn,
                    MofNCompleteColumn,
                    Progress,
                    TextColumn,
                    TimeRemainingColumn,
                )

                self._bar = Progress(
                    TextColumn("scanning"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TextColumn("{task.fields[rate]}"),
                    TimeRemainingColumn(),
                    console=err,
                )
                self._bar.start()
                self._task = self._bar.add_task("scan", total=total, rate="")
            self._bar.update(self._task, completed=done, rate=self.rate())
            return
        now = time.monotonic()
        if now - self.shown >= 10 or done == total:
            self.shown = now
            print(f"{done}/{total} images, {self.rate()}", file=sys.stderr, flush=True)

    def rate(self) -> str:
        """Images per second so far."""
        seconds = max(time.monotonic() - self.started, 1e-6)
        return f"{self.done / seconds:.1f} images/s"

    def end(self) -> None:
        """Stop the bar."""
        if self._bar is not None:
            self._bar.stop()
