"""The ``sleuth`` command line: one module per command group.

=====================  ============================================================
module                 commands
=====================  ============================================================
``investigate``        ``analyze``, ``ask``
``cases``              ``cases list|show|resume|prune``
``tools``              ``tools list|run|survey``
``serve``              ``serve`` (options generated from the server's own options),
                       ``model-server``
``traces``             ``traces export``
``train``              ``train-vlm``
``sleuth.evaluation``  ``eval``, ``eval-compare``, ``train-fusion``
=====================  ============================================================
"""

from __future__ import annotations

import sys

import typer

from sleuth.cli import cases, investigate, scan, serve, tools, traces, train
from sleuth.cli.common import err
from sleuth.evaluation import cli as evaluation_cli  # light: work is imported per command
from sleuth.tools import SleuthError

app = typer.Typer(
    help="sleuth: decide whether an image is AI-generated, and show why.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
investigate.register(app)
app.add_typer(cases.app, name="cases")
app.add_typer(tools.app, name="tools")
serve.register(app)
scan.register(app)
app.add_typer(traces.app, name="traces")
train.register(app)
app.command("eval")(evaluation_cli.eval_command)
app.command("eval-compare")(evaluation_cli.eval_compare_command)
app.command("train-fusion")(evaluation_cli.train_fusion_command)


def main() -> None:
    """Run the CLI; expected errors become one line on stderr and a non-zero exit code."""
    try:
        code = app(standalone_mode=False)  # a command's typer.Exit(n) comes back as n
    except SleuthError as exc:
        _fail(str(exc) + _hint(exc), 2)
    except typer.Abort:
        _fail("aborted", 130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.TyperException as exc:  # usage errors; typer vendors click's classes
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        _fail(message, getattr(exc, "exit_code", 2))
    except OSError as exc:
        _fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc), 2)
    if isinstance(code, int) and code:
        sys.exit(code)


def _hint(exc: SleuthError) -> str:
    """Return what to type next for an error from the layers below (which know no commands)."""
    from sleuth.agent.cases import UnknownCaseError
    from sleuth.agent.session import AnalysisInterrupted

    if isinstance(exc, AnalysisInterrupted):
        return f" Run `sleuth cases resume {exc.case_id}` then."
    if isinstance(exc, UnknownCaseError):
        return " (see `sleuth cases list`)"
    return ""


def _fail(message: str, code: int) -> None:
    if message.strip():  # help shown for a bare command group carries no message
        err.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    sys.exit(code)
