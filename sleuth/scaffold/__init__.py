"""``sleuth tools new``: a plugin package for a new forensic tool, ready to install and test.

The package it writes (from the templates in ``templates/``)::

    sleuth-<name>/
        pyproject.toml            the sleuth.tools entry point, pytest settings
        README.md
        src/sleuth_<name>/tool.py the tool: a forensic_tool and its parameter model
        tests/test_<name>.py      sleuth's ToolContract and the tool's own tests

installs with ``pip install -e`` and passes its tests as written. With ``calibrated`` the
tool is a stand-in learned detector: its weights path is the setting ``SLEUTH_<NAME>_WEIGHTS``
(a clear error when it is missing) and it declares a calibrated score
(:class:`sleuth.tools.Calibration`), so its probability counts in ``p_ai``, capped.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

import jinja2

from sleuth.tools.base import TOOL_NAME
from sleuth.tools.errors import SleuthError


class ScaffoldError(SleuthError, ValueError):
    """The plugin cannot be written: a bad or taken name, or the folder is not empty."""


def distribution(name: str) -> str:
    """Return the distribution name of the plugin for the tool ``name`` (``sleuth-acme-x``)."""
    return "sleuth-" + name.replace("_", "-")


def weights_setting(name: str) -> str:
    """Return the environment variable holding a calibrated tool's weights path."""
    return f"SLEUTH_{name.upper()}_WEIGHTS"


def scaffold_plugin(
    name: str, folder: Path, *, calibrated: bool = False, taken: Iterable[str] = ()
) -> list[Path]:
    """Write a plugin package for the tool ``name`` into ``folder`` (created; must be empty).

    Parameters
    ----------
    name : str
        The tool's name, ``^[a-z][a-z0-9_]{0,63}$``; the package is ``sleuth_<name>``.
    folder : Path
        Where the package goes; created, or an existing empty folder.
    calibrated : bool
        Write a learned-detector stand-in with a calibrated score and a weights setting.
    taken : iterable of str
        Names of installed tools, which the new one may not take.

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    ScaffoldError
        For an invalid or taken name, or a folder that is not empty.
    """
    if not TOOL_NAME.match(name):
        raise ScaffoldError(
            f"tool name {name!r} is invalid: use 1-64 characters of a-z, 0-9 and _, starting "
            "with a letter, e.g. 'acme_detector'"
        )
    if name in set(taken):
        raise ScaffoldError(
            f"a tool named {name!r} is already installed; prefix it with your package's name, "
            f"e.g. 'acme_{name}'"
        )
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ScaffoldError(f"{folder} already exists and is not an empty folder; choose another")
    package = f"sleuth_{name}"
    values = {
        "name": name,
        "package": package,
        "dist": distribution(name),
        "env": weights_setting(name),
        "calibrated": calibrated,
    }
    files = {
        "pyproject.toml": "pyproject.toml",
        "README.md": "README.md",
        f"src/{package}/__init__.py": "__init__.py",
        f"src/{package}/tool.py": "detector.py" if calibrated else "tool.py",
        f"tests/test_{name}.py": "test_detector.py" if calibrated else "test_tool.py",
    }
    written = []
    for target, template in files.items():
        path = folder / target
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_environment().get_template(template).render(values), encoding="utf-8")
        written.append(path)
    return written


@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FunctionLoader(_source),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _source(name: str) -> str:
    return resources.files(__name__).joinpath("templates", name + ".j2").read_text("utf-8")
