"""The ``sleuth`` command line."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress

from sleuth.evaluation import cli as evaluation_cli  # light: work is imported per command
from sleuth.render import (
    cases_table,
    findings_table,
    step_line,
    survey_json,
    tool_result_json,
    tools_table,
    verdict_lines,
)
from sleuth.settings import Settings
from sleuth.tools import Box, SleuthError, ToolRegistry, load_image
from sleuth.tools.survey import run_survey

app = typer.Typer(
    help="sleuth: decide whether an image is AI-generated, and show why.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
tools_app = typer.Typer(help="List and run forensic tools.", no_args_is_help=True)
app.add_typer(tools_app, name="tools")
cases_app = typer.Typer(help="List, show, resume and prune stored cases.", no_args_is_help=True)
app.add_typer(cases_app, name="cases")

app.command("eval")(evaluation_cli.eval_command)
app.command("train-fusion")(evaluation_cli.train_fusion_command)

out = Console()
err = Console(stderr=True)

OutDir = Annotated[
    Path | None, typer.Option("--out", help="Write artifacts (heatmaps, crops) here as PNG.")
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _registry(settings: Settings) -> ToolRegistry:
    return ToolRegistry.discover(enabled=settings.tools_enabled, blocked=settings.tools_blocked)


def _refuse_url(image: Path) -> None:
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


@tools_app.command("list")
def tools_list(as_json: AsJson = False) -> None:
    """List the installed forensic tools (built-ins and plugins)."""
    registry = _registry(Settings.load())
    if as_json:
        rows = [
            {
                "name": s.name,
                "cost": s.cost,
                "regional": s.regional,
                "survey": s.survey,
                "description": s.description,
                "parameters": s.params.model_json_schema(),
            }
            for s in registry
        ]
        out.print_json(json.dumps(rows))
    else:
        out.print(tools_table(registry))


@tools_app.command("run")
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
    _refuse_url(image)
    settings = Settings.load()
    registry = _registry(settings)
    loaded = load_image(image, limits=settings.image_limits)
    region = Box.parse(box) if box else None
    params = parse_assignments(assignments or [])
    result = registry.run(name, loaded, params, region=region, artifact_dir=out_dir)
    if as_json:
        out.print_json(tool_result_json(result))
    else:
        out.print(findings_table(result.findings, title=f"{name} on {image.name}"))
        _print_artifacts(result.artifacts, out_dir)


@tools_app.command("survey")
def tools_survey(
    image: Annotated[Path, typer.Argument(help="Image file.")],
    as_json: AsJson = False,
    out_dir: OutDir = None,
) -> None:
    """Run the default survey (every survey tool on the whole image) and propose regions."""
    _refuse_url(image)
    settings = Settings.load()
    registry = _registry(settings)
    loaded = load_image(image, limits=settings.image_limits)
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
    _print_artifacts([a for r in result.results.values() for a in r.artifacts], out_dir)


BACKENDS = ("offline", "openai", "transformers")


@app.command("analyze")
def analyze_command(
    image: Annotated[Path, typer.Argument(help="Image file.")],
    question: Annotated[
        str | None, typer.Option("--question", "-q", help="What you want to know.")
    ] = None,
    backend: Annotated[
        str | None, typer.Option("--backend", help="offline (default), openai or transformers.")
    ] = None,
    base_url: Annotated[
        str | None, typer.Option("--base-url", help="OpenAI-compatible server (openai).")
    ] = None,
    model: Annotated[str | None, typer.Option("--model", help="Model name or folder.")] = None,
    max_steps: Annotated[
        int | None, typer.Option("--max-steps", help="Reasoning turns (default 6).")
    ] = None,
    threshold: Annotated[
        float | None, typer.Option("--threshold", help="Confidence that stops early (0.85).")
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
    from sleuth.api import Investigator

    _refuse_url(image)

    settings = Settings.load(
        backend=_backend_spec(backend, model),
        base_url=base_url,
        max_steps=max_steps,
        threshold=threshold,
        fallback=fallback,
    )
    with Investigator(settings) as session, _live_steps(as_json) as progress:
        verdict = session.analyze(image, question, progress=progress)
        if report is not None:
            _write_report(session, verdict.case_id, report)
    if as_json:
        out.print_json(verdict.model_dump_json())
    else:
        _print_verdict(verdict)
    if report is not None:
        err.print(f"report written to {report}")


@app.command("ask")
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
    from sleuth.api import Investigator

    settings = Settings.load(backend=_backend_spec(backend, model), base_url=base_url)
    with Investigator(settings) as session, _live_steps(as_json) as progress:
        answer = session.ask(case_id, question, progress=progress)
    if as_json:
        out.print_json(answer.model_dump_json())
    else:
        out.print(answer.answer, markup=False, highlight=False)


@cases_app.command("list")
def cases_list(as_json: AsJson = False) -> None:
    """List stored cases, most recent first."""
    from sleuth.api import Investigator

    with Investigator(Settings.load()) as session:
        rows = session.cases()
    if as_json:
        out.print_json(json.dumps([r.model_dump(mode="json") for r in rows]))
        return
    out.print(cases_table(rows))


@cases_app.command("show")
def cases_show(
    case_id: Annotated[str, typer.Argument(help="Case id.")],
    as_json: AsJson = False,
    report: Annotated[Path | None, typer.Option("--report", help="Write the HTML report.")] = None,
) -> None:
    """Show a stored case: its verdict and follow-up answers."""
    from sleuth.api import Investigator

    with Investigator(Settings.load()) as session:
        case = session.case(case_id)
        if report is not None:
            _write_report(session, case_id, report)
    if as_json:
        out.print_json(case.model_dump_json())
        return
    if case.verdict is not None:
        _print_verdict(case.verdict)
    else:
        out.print(f"case {case_id} was interrupted; `sleuth cases resume {case_id}` continues it")
    for answer in case.answers:
        out.print(f"\nQ: {answer.question}", markup=False, highlight=False)
        out.print(answer.answer, markup=False, highlight=False)


@cases_app.command("resume")
def cases_resume(
    case_id: Annotated[str, typer.Argument(help="Case id of an interrupted analysis.")],
    as_json: AsJson = False,
) -> None:
    """Continue an interrupted analysis (e.g. after the model server came back)."""
    from sleuth.api import Investigator

    with Investigator(Settings.load()) as session, _live_steps(as_json) as progress:
        verdict = session.resume(case_id, progress=progress)
    if as_json:
        out.print_json(verdict.model_dump_json())
    else:
        _print_verdict(verdict)


@cases_app.command("prune")
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
    from sleuth.api import Investigator

    with Investigator(Settings.load()) as session:
        report = session.prune(older_than, max_mb, dry_run=dry_run)
    if as_json:
        out.print_json(json.dumps(report.as_json()))
        return
    for line in report.lines():
        out.print(line, markup=False, highlight=False, soft_wrap=True)


def _print_verdict(verdict: Any) -> None:
    for line in verdict_lines(verdict):
        out.print(line, highlight=False)


def _backend_spec(backend: str | None, model: str | None) -> str | None:
    if backend is None and model is None:
        return None
    provider = backend or "openai"
    if provider not in BACKENDS:
        raise typer.BadParameter(f"use one of {', '.join(BACKENDS)}", param_hint="--backend")
    return f"{provider}:{model}" if model else provider


@contextmanager
def _live_steps(quiet: bool) -> Iterator[Any]:
    """Print each step on stderr as it completes (nothing with --json or off a terminal)."""
    if quiet:
        yield None
        return
    with err.status("surveying ...") as status:

        def progress(step: Any) -> None:
            err.print(step_line(step), highlight=False)
            status.update(f"step {step.index + 1} ...")

        yield progress


def _write_report(session: Any, case_id: str, path: Path) -> None:
    from sleuth.report import render_report

    html = render_report(
        session.case(case_id),
        session.image(case_id),
        lambda name: session.files.artifact_path(case_id, name),
    )
    path.write_text(html, encoding="utf-8")


def _print_artifacts(artifacts: list[Any], out_dir: Path | None) -> None:
    if out_dir is not None and artifacts:
        out.print(f"{len(artifacts)} artifact(s) written to {out_dir}")


@app.command("serve")
def serve_command(
    transport: Annotated[
        str, typer.Option("--transport", help="stdio (launched by a client) or http.")
    ] = "stdio",
    host: Annotated[str, typer.Option("--host", help="HTTP bind address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="HTTP port.", min=1, max=65535)] = 8765,
    allow_dir: Annotated[
        list[Path] | None,
        typer.Option("--allow-dir", help="A folder whose images may be read by path (repeat)."),
    ] = None,
    token_file: Annotated[
        Path | None,
        typer.Option(
            "--token-file", help="Bearer token HTTP clients must send (required off loopback)."
        ),
    ] = None,
    allow_urls: Annotated[
        bool, typer.Option("--allow-urls", help="Fetch http(s) image URLs (public hosts only).")
    ] = False,
    allow_origin: Annotated[
        list[str] | None,
        typer.Option("--allow-origin", help="A browser origin allowed besides loopback (repeat)."),
    ] = None,
    max_base64_mb: Annotated[
        float, typer.Option("--max-base64-mb", help="Largest base64 image.", min=0.01)
    ] = 20.0,
    jobs: Annotated[int, typer.Option("--jobs", help="Analyses at once.", min=1)] = 2,
    queue: Annotated[
        int, typer.Option("--queue", help="Calls that may wait before 'busy'.", min=0)
    ] = 32,
    log_level: Annotated[str, typer.Option("--log-level", help="Logging level.")] = "WARNING",
) -> None:
    """Run the MCP server (analyze_image, ask_followup, get_case and every forensic tool)."""
    from sleuth.servers.__main__ import serve

    settings = Settings.load().for_serve()  # a quota and an expiry unless set
    if transport not in ("stdio", "http"):
        raise SleuthError(f"--transport must be stdio or http, not {transport!r}")
    serve(
        transport=transport,  # type: ignore[arg-type]
        host=host,
        port=port,
        allow_dirs=allow_dir or (),
        token_file=token_file,
        allow_urls=allow_urls,
        allow_origins=allow_origin or (),
        max_base64_mb=max_base64_mb,
        running=jobs,
        waiting=queue,
        log_level=log_level,
        settings=settings,
    )


@app.command("model-server")
def model_server_command(
    model: Annotated[
        str, typer.Argument(help="Model to serve, e.g. Qwen/Qwen2.5-VL-7B-Instruct, or a folder.")
    ],
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port.", min=1, max=65535)] = 8000,
    family: Annotated[
        str | None, typer.Option("--family", help="Model family, when the name does not say it.")
    ] = None,
    max_model_len: Annotated[
        int | None, typer.Option("--max-model-len", help="Context length (family default).", min=1)
    ] = None,
    gpu_memory_utilization: Annotated[
        float | None,
        typer.Option("--gpu-memory-utilization", help="Share of GPU memory.", min=0.01, max=1.0),
    ] = None,
    tensor_parallel_size: Annotated[
        int | None, typer.Option("--tensor-parallel-size", help="GPUs to split over.", min=1)
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the command and settings; start nothing.")
    ] = False,
) -> None:
    """Serve a vision-language model with vLLM for the agent (a GPU machine)."""
    from sleuth.servers.model_server import describe, launch, plan

    server = plan(
        model,
        host=host,
        port=port,
        family=family,
        max_model_len=max_model_len,
        gpu_memory_utilization=gpu_memory_utilization,
        tensor_parallel_size=tensor_parallel_size,
    )
    if dry_run:
        typer.echo(describe(server))
        return
    launch(server)


def main() -> None:
    """Run the CLI; expected errors become one line on stderr and a non-zero exit code."""
    try:
        app(standalone_mode=False)
    except SleuthError as exc:
        _fail(str(exc), 2)
    except typer.Abort:
        _fail("aborted", 130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.TyperException as exc:  # usage errors; typer vendors click's classes
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        _fail(message, getattr(exc, "exit_code", 2))
    except OSError as exc:
        _fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc), 2)


def _fail(message: str, code: int) -> None:
    if message.strip():  # help shown for a bare command group carries no message
        err.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    sys.exit(code)
