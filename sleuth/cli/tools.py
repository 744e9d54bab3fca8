"""``sleuth tools``: list and run forensic tools, and start a new one (``tools new``).

A tool that fails (raises, returns no ToolResult, runs past ``tool_seconds``) gives an
error finding, named in one warning line on stderr; ``tools survey`` goes on with the
others, ``tools run`` prints the finding and exits with code 1.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress

from sleuth.cli.common import (
    AsJson,
    OutDir,
    err,
    out,
    parse_assignments,
    print_artifacts,
    refuse_url,
    registry_for,
)
from sleuth.present.console import findings_table, survey_json, tool_result_json, tools_table
from sleuth.settings import Settings
from sleuth.tools import Box, LoadedImage, ToolRegistry, load_image
from sleuth.tools.isolation import failure, run_isolated
from sleuth.tools.survey import run_survey

app = typer.Typer(help="List, run and write forensic tools.", no_args_is_help=True)


@app.command("list")
def tools_list(as_json: AsJson = False) -> None:
    """List the installed forensic tools (built-ins and plugins), and plugins skipped and why."""
    registry = registry_for(Settings.load())
    if as_json:
        rows = [
            {
                "name": s.name,
                "cost": s.cost,
                "regional": s.regional,
                "survey": s.survey,
                "calibrated": dataclasses.asdict(s.calibrated) if s.calibrated else None,
                "description": s.description,
                "parameters": s.params.model_json_schema(),
            }
            for s in registry
        ]
        out.print_json(json.dumps(rows))
    else:
        out.print(tools_table(registry))
        for reason in registry.skipped.values():
            out.print(f"skipped {reason}", markup=False, highlight=False, soft_wrap=True)


@app.command("run")
def tools_run(
    name: Annotated[str, typer.Argument(help="Tool name (see `sleuth tools list`).")],
    image: Annotated[Path, typer.Argument(help="Image file.")],
    box: Annotated[
        str | None, typer.Option("--box", help="Region x0,y0,x1,y1 in original pixels.")
    ] = None,
    assignments: Annotated[
        list[str] | None, typer.Option("--set", help="Parameter key=value (repeatable).")
    ] = None,
    as_json: AsJson = False,
    out_dir: OutDir = None,
) -> None:
    """Run one forensic tool on an image, or on a region of it."""
    registry, loaded = _tools_and_image(image)
    region = Box.parse(box) if box else None
    params = parse_assignments(assignments or [])
    result = run_isolated(registry, name, loaded, params, region=region, artifact_dir=out_dir)
    if as_json:
        out.print_json(tool_result_json(result))
    else:
        out.print(findings_table(result.findings, title=f"{name} on {image.name}"))
        print_artifacts(result.artifacts, out_dir)
    if failure(result) is not None:
        raise typer.Exit(1)


@app.command("survey")
def tools_survey(
    image: Annotated[Path, typer.Argument(help="Image file.")],
    as_json: AsJson = False,
    out_dir: OutDir = None,
) -> None:
    """Run the default survey (every survey tool on the whole image) and propose regions."""
    registry, loaded = _tools_and_image(image)
    with Progress(console=err, transient=True, disable=as_json or not err.is_terminal) as bar:
        task = bar.add_task("survey", total=None)

        def progress(tool: str, done: int, total: int) -> None:
            bar.update(task, description=f"running {tool}", completed=done, total=total)

        result = run_survey(registry, loaded, artifact_dir=out_dir, progress=progress)
    if as_json:
        out.print_json(survey_json(loaded, result))
        return
    findings = [f for r in result.results.values() for f in r.findings]
    out.print(findings_table(findings, title=f"survey of {image.name}"))
    for i, cand in enumerate(result.candidates, start=1):
        out.print(f"candidate {i}: {cand.box.as_tuple()} score {cand.score:.2f}")
    print_artifacts([a for r in result.results.values() for a in r.artifacts], out_dir)


@app.command("new")
def tools_new(
    name: Annotated[
        str, typer.Argument(help="The tool's name: a-z, 0-9 and _, e.g. acme_detector.")
    ],
    calibrated: Annotated[
        bool,
        typer.Option(
            "--calibrated",
            help="A learned detector: its score is a calibrated probability that counts "
            "in p_ai (capped), its weights path the setting SLEUTH_<NAME>_WEIGHTS.",
        ),
    ] = False,
    folder: Annotated[
        Path | None,
        typer.Option("--dir", help="Folder to create (default: ./sleuth-<name>)."),
    ] = None,
) -> None:
    """Write a plugin package for a new tool: pyproject, tool module, contract test, README."""
    from sleuth.scaffold import distribution, scaffold_plugin, weights_setting
    from sleuth.tools import ToolRegistry

    target = folder if folder is not None else Path(distribution(name))
    taken = ToolRegistry.discover().names()
    written = scaffold_plugin(name, target, calibrated=calibrated, taken=taken)
    for path in written:
        out.print(f"wrote {path}", markup=False, highlight=False)
    steps = [f"cd {target}", "pip install -e .", "pytest"]
    if calibrated:
        steps.insert(2, f"export {weights_setting(name)}=/path/to/weights")
    out.print("next: " + " && ".join(steps), markup=False, highlight=False, soft_wrap=True)


def _tools_and_image(image: Path) -> tuple[ToolRegistry, LoadedImage]:
    """Return the tools the settings allow and the image read within their limits."""
    refuse_url(image)
    settings = Settings.load()
    return registry_for(settings), load_image(image, limits=settings.image_limits)
