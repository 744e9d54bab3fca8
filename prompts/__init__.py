"""Prompt texts, kept as files and rendered by name.

Every prompt is a Jinja template ``<name>.md.j2`` in this package. :func:`render` is the
only way to fill one: a variable the template does not use is rejected (a typo or a leak,
such as a file name or a label, never passes silently), and a variable it uses but was not
given raises (``StrictUndefined``).
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

import jinja2
from jinja2 import meta

SUFFIX = ".md.j2"


class PromptError(ValueError):
    """A prompt was asked for by a wrong name or with wrong variables."""


@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FunctionLoader(_source),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _source(name: str) -> str:
    try:
        return resources.files(__name__).joinpath(name + SUFFIX).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PromptError(f"no prompt named {name!r}; available: {', '.join(names())}") from None


@functools.cache
def variables(name: str) -> frozenset[str]:
    """Return the variables the template ``name`` uses."""
    env = _environment()
    return frozenset(meta.find_undeclared_variables(env.parse(_source(name))))


def names() -> list[str]:
    """Return the names of the packaged prompts."""
    files = resources.files(__name__).iterdir()
    return sorted(f.name.removesuffix(SUFFIX) for f in files if f.name.endswith(SUFFIX))


def render(name: str, **values: Any) -> str:
    """Render the prompt ``name`` with exactly the variables it uses.

    Parameters
    ----------
    name : str
        Prompt name (file ``<name>.md.j2`` in this package).
    **values
        One value per variable of the template.

    Returns
    -------
    str
        The text, stripped of leading and trailing blank space.

    Raises
    ------
    PromptError
        For an unknown prompt, a variable the template does not use, or a missing one.
    """
    expected = variables(name)
    if extra := set(values) - expected:
        raise PromptError(
            f"prompt {name!r} does not use {sorted(extra)}; it takes {sorted(expected)}"
        )
    try:
        return _environment().get_template(name).render(**values).strip()
    except jinja2.UndefinedError as err:
        raise PromptError(f"prompt {name!r}: {err.message}; it takes {sorted(expected)}") from None


if __name__ != "sleuth.prompts":  # e.g. `import prompts` from the repository root: a second copy
    raise ImportError(
        f"import sleuth.prompts, not {__name__}: the prompts/ folder is installed as sleuth.prompts"
    )
