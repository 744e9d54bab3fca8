"""``sleuth model-server``: run vLLM for a model with the recipe, or show what would run.

:func:`plan` gathers the server's command line and environment (from
:mod:`sleuth.servers.vllm.recipe`) and the sleuth settings that point the agent at it;
:func:`describe` prints them for ``--dry-run``; :func:`launch` replaces the current process
with the server.
"""

from __future__ import annotations

import os
import shlex
import shutil
from dataclasses import dataclass
from typing import NoReturn

from sleuth.servers.vllm.recipe import (
    IMAGES_PER_PROMPT,
    serving_family,
    vllm_command,
    vllm_environment,
)
from sleuth.tools.errors import SleuthError

__all__ = ["ServerPlan", "VllmMissing", "describe", "launch", "plan"]

#: Addresses that mean "every interface": a client must use the machine's own address.
WILDCARD_HOSTS = ("0.0.0.0", "::", "")


class VllmMissing(SleuthError):
    """The ``vllm`` command is not installed."""


@dataclass(frozen=True)
class ServerPlan:
    """A model server to start, and how sleuth talks to it.

    Attributes
    ----------
    argv : list of str
        The ``vllm serve`` command line.
    environment : dict of str to str
        Variables added to the inherited environment of the server.
    client : dict of str to str
        ``SLEUTH_*`` settings that point the agent at the server.
    notes : tuple of str
        Remarks for the person starting it.
    """

    argv: list[str]
    environment: dict[str, str]
    client: dict[str, str]
    notes: tuple[str, ...] = ()


def plan(
    model: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    family: str | None = None,
    max_model_len: int | None = None,
    gpu_memory_utilization: float | None = None,
    tensor_parallel_size: int | None = None,
) -> ServerPlan:
    """Plan the production server for ``model`` (a GPU machine, ``vllm serve``).

    The image budget is the family's (``max_pixels`` of
    :data:`sleuth.agent.frames.FAMILIES`), so the server and the agent agree on the size
    images are sent at; images per request are the agent's default.

    Parameters
    ----------
    model : str
        Model name on the Hugging Face hub, or a local folder.
    host : str
        Address to listen on.
    port : int
        Port to listen on.
    family : str, optional
        Model family; None guesses it from ``model``.
    max_model_len : int, optional
        Context length in tokens; None takes the family's.
    gpu_memory_utilization : float, optional
        Share of GPU memory vLLM may take.
    tensor_parallel_size : int, optional
        GPUs to split the model over.

    Returns
    -------
    ServerPlan
        The command, its environment and the matching sleuth settings.

    Raises
    ------
    RecipeError
        If the model family is unknown or has no serving recipe.
    """
    fam = serving_family(model, family)
    argv = vllm_command(
        model,
        host=host,
        port=port,
        family=fam.name,
        max_model_len=max_model_len,
        images_per_prompt=IMAGES_PER_PROMPT,
        max_pixels=fam.max_pixels,
        gpu_memory_utilization=gpu_memory_utilization,
        tensor_parallel_size=tensor_parallel_size,
    )
    notes: tuple[str, ...] = ()
    client_host = host
    if host in WILDCARD_HOSTS:
        client_host = "127.0.0.1"
        notes = ("from another machine, put this machine's address in SLEUTH_BASE_URL",)
    if ":" in client_host:  # an IPv6 address
        client_host = f"[{client_host}]"
    client = {
        "SLEUTH_BACKEND": f"openai:{model}",
        "SLEUTH_BASE_URL": f"http://{client_host}:{port}/v1",
        "SLEUTH_MODEL_FAMILY": fam.name,
        "SLEUTH_MODEL_MAX_PIXELS": str(fam.max_pixels),
        "SLEUTH_MODEL_MAX_IMAGES": str(IMAGES_PER_PROMPT),
    }
    return ServerPlan(argv=argv, environment=vllm_environment(), client=client, notes=notes)


def describe(server: ServerPlan) -> str:
    """Say what ``sleuth model-server`` would run, as lines a shell accepts.

    Parameters
    ----------
    server : ServerPlan
        The plan.

    Returns
    -------
    str
        The server's environment and command (one line), then the sleuth settings, each
        group under a comment.
    """
    lines = ["# model server: environment, then command"]
    lines += [f"export {key}={shlex.quote(value)}" for key, value in server.environment.items()]
    lines.append(shlex.join(server.argv))
    lines.append("# sleuth, where the agent runs: settings that point it at the server")
    lines += [f"export {key}={shlex.quote(value)}" for key, value in server.client.items()]
    lines += [f"# {note}" for note in server.notes]
    return "\n".join(lines)


def launch(server: ServerPlan) -> NoReturn:
    """Replace the current process with the model server.

    Parameters
    ----------
    server : ServerPlan
        The plan.

    Raises
    ------
    VllmMissing
        If there is no ``vllm`` command on ``PATH``.
    """
    executable = shutil.which(server.argv[0])
    if executable is None:
        raise VllmMissing(
            f"{server.argv[0]!r} is not installed (not on PATH): on a GPU machine run "
            "`pip install vllm`; `sleuth model-server MODEL --dry-run` shows the command"
        )
    os.execve(executable, server.argv, {**os.environ, **server.environment})
