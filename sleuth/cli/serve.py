"""``sleuth serve``, ``sleuth ui``, ``sleuth model-server``: MCP, the workbench, vLLM."""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable
from typing import Annotated, Any

import typer

from sleuth.servers.mcp.options import ServeOptions
from sleuth.settings import Settings
from sleuth.ui.options import UiOptions


def register(app: typer.Typer) -> None:
    """Add ``serve`` and ``model-server`` to ``app``."""
    app.command("serve")(options_command(ServeOptions, serve_command))
    app.command("ui")(options_command(UiOptions, ui_command))
    app.command("model-server")(model_server_command)


def serve_command(options: ServeOptions) -> None:
    """Run the MCP server (analyze_image, ask_followup, get_case and every forensic tool)."""
    from sleuth.servers.mcp.run import serve

    serve(options, Settings.load().for_serve())  # a quota and an expiry unless set


def ui_command(options: UiOptions) -> None:
    """Run the investigator's workbench: a local web app over the case store."""
    from sleuth.ui.app import run_ui

    run_ui(options, Settings.load())


def options_command(options: type[Any], run: Callable[[Any], None]) -> Callable[..., None]:
    """Return a typer command whose options are the fields of the dataclass ``options``.

    Each field becomes ``--field-name`` with the field's default, its metadata's ``help``,
    ``metavar`` and bounds (``min``, ``max``); a tuple field is a repeatable option. The
    command builds the dataclass and calls ``run`` with it.
    """
    hints = typing.get_type_hints(options)
    parameters = []
    for f in dataclasses.fields(options):
        kind, default = hints[f.name], f.default
        repeat = typing.get_origin(kind) is tuple
        if repeat:  # typer reads a repeatable option as a list
            kind, default = list[typing.get_args(kind)[0]] | None, None  # type: ignore[misc]
        elif typing.get_origin(kind) is typing.Literal:
            kind = str
        option = typer.Option(
            "--" + f.name.replace("_", "-"),
            help=f.metadata.get("help"),
            min=f.metadata.get("min"),
            max=f.metadata.get("max"),
            metavar=f.metadata.get("metavar"),
        )
        parameters.append(
            inspect.Parameter(
                f.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=default,
                annotation=Annotated[kind, option],
            )
        )

    def command(**values: Any) -> None:
        fields = {f.name: f for f in dataclasses.fields(options)}
        for name, value in values.items():
            if isinstance(fields[name].default, tuple):
                values[name] = tuple(value or ())
        run(options(**values))

    command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    command.__doc__ = run.__doc__
    command.__name__ = run.__name__
    return command


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
    from sleuth.servers.vllm.launch import describe, launch, plan

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
