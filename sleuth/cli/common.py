"""What the command groups share: consoles, options, progress, printing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from sleuth.agent.backends import PROVIDERS
from sleuth.present.console import step_line, verdict_lines
from sleuth.settings import Settings
from sleuth.tools import SleuthError, ToolRegistry

out = Console()
err = Console(stderr=True)

OutDir = Annotated[
    Path | None, typer.Option("--out", help="Write artifacts (heatmaps, crops) here as PNG.")
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def registry_for(settings: Settings) -> ToolRegistry:
    """Return the installed tools the settings allow (the commands' seam for tests)."""
    return settings.tool_registry()


def refuse_url(image: Path) -> None:
    """Say that the CLI reads files when given a URL (a Path folds ``https://`` to ``https:/``)."""
    text = str(image)
    scheme, sep, rest = text.partition(":/")
    if sep and scheme.lower() in ("http", "https", "ftp") and not image.exists():
        raise SleuthError(
            f"the CLI reads image files, not URLs: download {scheme}://{rest.lstrip('/')} "
            "first (e.g. curl -o image.jpg URL), or give the URL to `sleuth serve --allow-urls`"
        )


def parse_assignments(items: list[str]) -> dict[str, Any]:
    """Turn ``["quality=80", "mode=fast"]`` into a dict; values are read as JSON, else text."""
    params: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{item!r} is not key=value", param_hint="--set")
        try:
            params[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            params[key.strip()] = value
    return params


def print_verdict(verdict: Any) -> None:
    """Print a verdict's lines on stdout."""
    for line in verdict_lines(verdict):
        out.print(line, highlight=False)


def backend_spec(backend: str | None, model: str | None) -> str | None:
    """Return the ``provider:model`` setting for ``--backend`` and ``--model`` (None: unset)."""
    if backend is None and model is None:
        return None
    provider = backend or "openai"
    if provider not in PROVIDERS:
        raise typer.BadParameter(f"use one of {', '.join(PROVIDERS)}", param_hint="--backend")
    return f"{provider}:{model}" if model else provider


@contextmanager
def live_steps(quiet: bool) -> Iterator[Any]:
    """Print each step on stderr as it completes (nothing with --json or off a terminal)."""
    if quiet:
        yield None
        return
    with err.status("surveying ...") as status:

        def progress(step: Any) -> None:
            err.print(step_line(step), highlight=False)
            status.update(f"step {step.index + 1} ...")

        yield progress


def write_report(session: Any, case_id: str, path: Path) -> None:
    """Write a case's self-contained HTML report to ``path`` (the workbench's case view)."""
    from sleuth.ui.casepage import export_report
    from sleuth.ui.workbench import templates

    path.write_text(export_report(templates(), session, case_id), encoding="utf-8")


def print_artifacts(artifacts: list[Any], out_dir: Path | None) -> None:
    """Say how many artifacts were written, and where."""
    if out_dir is not None and artifacts:
        out.print(f"{len(artifacts)} artifact(s) written to {out_dir}")
