"""Plugins that break in each way sleuth isolates, and a way to install them.

The module imports nothing from the tests, so :func:`install` can copy it into a folder as
the module ``acme_failing`` of an installed distribution (entry points in a ``.dist-info``),
as a user's ``pip install`` would, for a subprocess or for discovery in-process.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from sleuth.tools import Finding, ToolResult, forensic_tool

MODULE = "acme_failing"
RELEASE = threading.Event()
"""Set it to let a running ``acme_slow`` return (its thread outlives its time budget)."""
SLOW_SECONDS = 60.0
EXIT_CODE = 70
"""What ``acme_exit`` ends its process with."""


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


def declare(name: str, **options):
    return forensic_tool(
        name=name,
        params=NoParams,
        summary="A test plugin.",
        caveat="Only for tests.",
        score_meaning="No score.",
        **options,
    )


@declare("acme_raise", survey=True)
def acme_raise(image, params, ctx):
    raise RuntimeError("boom\non two lines " + "x" * 400)


@declare("acme_dict", survey=True)
def acme_dict(image, params, ctx):
    return {"findings": []}


@declare("acme_slow", survey=True)
def acme_slow(image, params, ctx):
    RELEASE.wait(SLOW_SECONDS)
    return ToolResult(findings=[Finding(summary="Too late.", score=1.0, direction="ai")])


def beside(name: str) -> Path:
    """A file next to this module: how a test talks to a plugin in another process."""
    return Path(__file__).with_name(name)


@declare("acme_exit", survey=True)
def acme_exit(image, params, ctx):
    """Ends its whole process the first time it runs (as a crashing native library would)."""
    marker = beside("exited")
    if not marker.exists():
        marker.touch()
        os._exit(EXIT_CODE)
    return ToolResult()


@declare("acme_hold", survey=True)
def acme_hold(image, params, ctx):
    """Says it started, then waits for the test to release it (in whichever process)."""
    beside("started").touch()
    deadline = time.monotonic() + SLOW_SECONDS
    while not beside("release").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return ToolResult()


@declare("acme_quiet")
def acme_quiet(image, params, ctx):
    """A working plugin that keeps the default: out of the survey."""
    return ToolResult(findings=[Finding(summary="A plugin's reading.", score=0.9, direction="ai")])


@declare("acme_extra", survey=True)
def acme_extra(image, params, ctx):
    """A working plugin that joins the survey; its name sorts before the built-ins'."""
    return ToolResult(findings=[Finding(summary="Another reading.", score=0.8, direction="ai")])


@declare("ela")
def acme_ela(image, params, ctx):
    """Takes a built-in's name."""
    return ToolResult()


class Loose(BaseModel):  # no extra="forbid": registration refuses it
    level: int = 1


acme_invalid = forensic_tool(
    name="acme_invalid", params=Loose, summary="S.", caveat="C.", score_meaning="M."
)(lambda image, params, ctx: ToolResult())

ENTRY_POINTS = {
    "raise": {"acme_raise": f"{MODULE}:acme_raise"},
    "dict": {"acme_dict": f"{MODULE}:acme_dict"},
    "slow": {"acme_slow": f"{MODULE}:acme_slow"},
    "exit": {"acme_exit": f"{MODULE}:acme_exit"},
    "hold": {"acme_hold": f"{MODULE}:acme_hold"},
    "quiet": {"acme_quiet": f"{MODULE}:acme_quiet"},
    "extra": {"acme_extra": f"{MODULE}:acme_extra"},
    "invalid": {"acme_invalid": f"{MODULE}:acme_invalid"},
    "missing": {"acme_missing": "acme_nowhere:acme_missing"},
    "clash": {"ela": f"{MODULE}:acme_ela"},
}
"""Entry points of each scenario's distribution."""
PLUGIN_OF = {"clash": "ela", **{k: next(iter(v)) for k, v in ENTRY_POINTS.items() if k != "clash"}}
"""The tool (entry-point) name each scenario installs."""


def install(root: Path, scenario: str) -> Path:
    """Install this module as ``acme_failing`` with ``scenario``'s entry points under ``root``.

    Returns
    -------
    Path
        ``root``, to put on ``sys.path`` or ``PYTHONPATH``.
    """
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(Path(__file__), root / f"{MODULE}.py")
    dist = root / f"acme_failing_{scenario}-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: acme-failing-{scenario}\nVersion: 0.1\n"
    )
    lines = "".join(f"{name} = {value}\n" for name, value in ENTRY_POINTS[scenario].items())
    (dist / "entry_points.txt").write_text(f"[sleuth.tools]\n{lines}")
    return root
