"""``sleuth analyze`` and ``sleuth ask``: investigate an image, ask about a case."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sleuth.agent.backends import PROVIDERS
from sleuth.agent.context import AgentContext
from sleuth.cli.common import (
    AsJson,
    backend_spec,
    err,
    live_steps,
    out,
    print_verdict,
    refuse_url,
    write_report,
)
from sleuth.settings import Settings


def register(app: typer.Typer) -> None:
    """Add ``analyze`` and ``ask`` to ``app``."""
    app.command("analyze")(analyze_command)
    app.command("ask")(ask_command)


def analyze_command(
    image: Annotated[Path, typer.Argument(help="Image file.")],
    question: Annotated[
        str | None, typer.Option("--question", "-q", help="What you want to know.")
    ] = None,
    backend: Annotated[
        str | None, typer.Option("--backend", help=f"{', '.join(PROVIDERS)} (default offline).")
    ] = None,
    base_url: Annotated[
        str | None, typer.Option("--base-url", help="OpenAI-compatible server (openai).")
    ] = None,
    model: Annotated[str | None, typer.Option("--model", help="Model name or folder.")] = None,
    max_steps: Annotated[
        int | None, typer.Option("--max-steps", help=f"Reasoning turns ({AgentContext.max_steps}).")
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(
            "--threshold", help=f"Confidence that stops early ({AgentContext.threshold})."
        ),
    ] = None,
    fallback: Annotated[
        bool | None,
        typer.Option("--fallback/--no-fallback", help="Offline analyst if the model fails."),
    ] = None,
    as_json: AsJson = False,
    report: Annotated[
        Path | None, typer.Option("--report", help="Write a self-contained HTML report here.")
    ] = None,
) -> None:
    """Investigate an image and print the verdict (the case is stored for follow-ups)."""
    from sleuth.api import open_session

    refuse_url(image)

    settings = Settings.load(
        backend=backend_spec(backend, model),
        base_url=base_url,
        max_steps=max_steps,
        threshold=threshold,
        fallback=fallback,
    )
    with open_session(settings) as session, live_steps(as_json) as progress:
        verdict = session.analyze(image, question, progress=progress)
        earlier = session.earlier_cases(verdict.case_id)
        if report is not None:
            write_report(session, verdict.case_id, report)
    if as_json:
        out.print_json(verdict.model_dump_json())
    else:
        print_verdict(verdict)
        for case in earlier[:3]:
            label = case.label or "interrupted"
            err.print(
                f"this image was analysed before: case {case.case_id} ({label}, "
                f"{case.updated[:10]}; `sleuth cases show {case.case_id}`)",
                markup=False,
                highlight=False,
            )
    if report is not None:
        err.print(f"report written to {report}")


def ask_command(
    case_id: Annotated[str, typer.Argument(help="Case id (see `sleuth cases list`).")],
    question: Annotated[str, typer.Argument(help='E.g. "what did ELA show in box 2?"')],
    backend: Annotated[
        str | None, typer.Option("--backend", help="Answer with another backend.")
    ] = None,
    base_url: Annotated[str | None, typer.Option("--base-url")] = None,
    model: Annotated[str | None, typer.Option("--model")] = None,
    as_json: AsJson = False,
) -> None:
    """Ask a follow-up question about a stored case."""
    from sleuth.api import open_session

    settings = Settings.load(backend=backend_spec(backend, model), base_url=base_url)
    with open_session(settings) as session, live_steps(as_json) as progress:
        answer = session.ask(case_id, question, progress=progress)
    if as_json:
        out.print_json(answer.model_dump_json())
    else:
        out.print(answer.answer, markup=False, highlight=False)
        if not answer.understood:
            out.print(
                f"(not understood: {answer.backend.provider}:{answer.backend.model} could not "
                "answer all of this question; see above for what it can do)",
                style="yellow",
                markup=False,
                highlight=False,
            )
