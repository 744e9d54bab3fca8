"""``sleuth cases``: list, show, resume and prune stored cases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from sleuth.cli.common import AsJson, live_steps, out, print_verdict, write_report
from sleuth.present.console import cases_table
from sleuth.settings import Settings

app = typer.Typer(help="List, show, resume and prune stored cases.", no_args_is_help=True)


@app.command("list")
def cases_list(as_json: AsJson = False) -> None:
    """List stored cases, most recent first."""
    from sleuth.api import open_session

    with open_session(Settings.load()) as session:
        rows = session.cases()
    if as_json:
        out.print_json(json.dumps([r.model_dump(mode="json") for r in rows]))
        return
    out.print(cases_table(rows))


@app.command("show")
def cases_show(
    case_id: Annotated[str, typer.Argument(help="Case id.")],
    as_json: AsJson = False,
    report: Annotated[Path | None, typer.Option("--report", help="Write the HTML report.")] = None,
) -> None:
    """Show a stored case: its verdict and follow-up answers."""
    from sleuth.api import open_session

    with open_session(Settings.load()) as session:
        case = session.case(case_id)
        if report is not None:
            write_report(session, case_id, report)
    if as_json:
        out.print_json(case.model_dump_json())
        return
    if case.name:
        out.print(f"file: {case.name}", markup=False, highlight=False)
    if case.verdict is not None:
        print_verdict(case.verdict)
    else:
        out.print(f"case {case_id} was interrupted; `sleuth cases resume {case_id}` continues it")
    for answer in case.answers:
        out.print(f"\nQ: {answer.question}", markup=False, highlight=False)
        out.print(answer.answer, markup=False, highlight=False)


@app.command("resume")
def cases_resume(
    case_id: Annotated[str, typer.Argument(help="Case id of an interrupted analysis.")],
    as_json: AsJson = False,
) -> None:
    """Continue an interrupted analysis (e.g. after the model server came back)."""
    from sleuth.api import open_session

    with open_session(Settings.load()) as session, live_steps(as_json) as progress:
        verdict = session.resume(case_id, progress=progress)
    if as_json:
        out.print_json(verdict.model_dump_json())
    else:
        print_verdict(verdict)


@app.command("prune")
def cases_prune(
    older_than: Annotated[
        float | None,
        typer.Option("--older-than", help="Remove cases unused for DAYS days.", min=0),
    ] = None,
    max_mb: Annotated[
        float | None,
        typer.Option(
            "--max-mb",
            help="Then the least recently used, to fit in MB (not those used in the last hour).",
            min=0,
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print what would be removed; remove nothing.")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Remove old cases (their checkpoints, artifacts, and images no other case uses).

    Without options, the settings case_ttl_days and max_store_mb are applied.
    """
    from sleuth.api import open_session

    with open_session(Settings.load()) as session:
        report = session.prune(older_than, max_mb, dry_run=dry_run)
    if as_json:
        out.print_json(json.dumps(report.as_json()))
        return
    for line in report.lines():
        out.print(line, markup=False, highlight=False, soft_wrap=True)
