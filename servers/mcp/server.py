"""The MCP server: the investigation agent and every forensic tool, for chat assistants.

:func:`create_server` builds a :class:`~sleuth.servers.mcp.strict.StrictServer` (an
:class:`~mcp.server.mcpserver.MCPServer` refusing unknown arguments) and registers, each
from its own module:

- ``analyze_image``, ``ask_followup`` and ``get_case`` (:mod:`.case_tools`): the whole
  agent, and follow-ups on a stored case;
- ``run_tool``: any registered forensic tool by name, plugins included; with
  ``expose_tools`` also one MCP tool per forensic tool (:mod:`.forensic`);
- resources ``case://{case_id}`` (JSON), ``case://{case_id}/report`` (HTML) and
  ``case://{case_id}/artifacts/{name}`` (PNG) (:mod:`.resources`);
- the prompt ``investigate_image``.

Blocking work runs in worker threads under a :class:`~sleuth.servers.mcp.gate.Gate`; the
analyses and follow-ups themselves, CPU-bound, run in worker processes
(:class:`~sleuth.servers.mcp.pool.Processes`) when the server is made with ``processes``,
so that they use every core (each waiting thread then only waits on a pipe). Every
expected failure (a refused input, a bad argument, an unknown case, a busy server) is a
``ToolError``, which the client receives as a result with ``is_error`` set and one line of
text. Text read from the image file is marked untrusted in everything returned
(:mod:`sleuth.servers.mcp.untrusted`). Transport and logging are chosen only by
:func:`sleuth.servers.mcp.run.serve`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from mcp.server.mcpserver import MCPServer
from pydantic import Field

from sleuth import prompts
from sleuth.agent.session import Session
from sleuth.servers.mcp.case_tools import add_case_tools
from sleuth.servers.mcp.forensic import add_forensic_tools, add_run_tool
from sleuth.servers.mcp.gate import Gate
from sleuth.servers.mcp.inputs import InputPolicy
from sleuth.servers.mcp.pool import Bench, InThreads, Processes, Runner, tool_error
from sleuth.servers.mcp.resources import add_case_resources
from sleuth.servers.mcp.strict import StrictServer
from sleuth.settings import Settings
from sleuth.tools import SleuthError, ToolRegistry

T = TypeVar("T")

READERS = 4
"""Threads reading stored cases (get_case, case resources), apart from the analyses'."""


@dataclass(frozen=True)
class Surface:
    """What every registration function needs: settings, tools, inputs, the gates, a runner.

    Attributes
    ----------
    settings : Settings
        Case store, backend, limits.
    registry : ToolRegistry
        The forensic tools.
    policy : InputPolicy
        What images may be read.
    analyses, reads : Gate
        Analyses (and forensic tool runs) wait at one; reading stored cases at the other,
        so a cheap read never queues behind analyses.
    runner : Runner
        Where analyses and follow-ups run (:mod:`.pool`): in worker processes, or in the
        gate's thread itself; called from inside the analyses' gate, which bounds it.
    """

    settings: Settings
    registry: ToolRegistry
    policy: InputPolicy
    analyses: Gate
    reads: Gate
    runner: Runner

    def session(self, overrides: dict[str, Any] | None = None) -> Session:
        """Return a session over the case store (``overrides``: settings by name)."""
        chosen = self.settings.model_copy(update=overrides) if overrides else self.settings
        return Session(chosen.session_config(), self.registry)

    async def work(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking work under the analyses' gate; sleuth errors become tool errors."""
        return await _gated(self.analyses, fn, *args)

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a read of stored cases under the readers' gate."""
        return await _gated(self.reads, fn, *args)


def create_server(
    registry: ToolRegistry | None = None,
    settings: Settings | None = None,
    *,
    policy: InputPolicy | None = None,
    running: int = 2,
    waiting: int = 32,
    expose_tools: bool = False,
    processes: bool = False,
) -> MCPServer:
    """Build the sleuth MCP server.

    Parameters
    ----------
    registry : ToolRegistry, optional
        The forensic tools; defaults to the installed ones the settings allow.
    settings : Settings, optional
        Case store, backend, limits; defaults to :meth:`Settings.load`.
    policy : InputPolicy, optional
        What images may be read; by default base64 only (no files, no URLs).
    running, waiting : int
        Jobs at once, and jobs that may queue before calls are refused as busy.
    expose_tools : bool
        Also list one MCP tool per forensic tool (by default they are reached through
        ``run_tool``, which keeps the listed surface small).
    processes : bool
        Run analyses and follow-ups in ``running`` worker processes, which use every core;
        the workers discover their tools from the settings, so ``registry`` must be left
        out. By default they run in the server's threads (one core between them). Forensic
        tool runs and reads of stored cases run in threads either way.

    Returns
    -------
    MCPServer
        Not started: run it with a transport, or connect an in-process ``Client`` to it.
    """
    settings = settings or Settings.load()
    if processes and registry is not None:
        raise ValueError(
            "worker processes discover their tools from the settings: leave out registry, "
            "or run analyses in threads (processes=False)"
        )
    registry = registry or settings.tool_registry()
    runner: Runner = (
        Processes(settings, running, warm=True)
        if processes
        else InThreads(Bench(settings, registry))
    )
    surface = Surface(
        settings=settings,
        registry=registry,
        policy=policy or InputPolicy(max_file_bytes=settings.max_image_bytes),
        analyses=Gate(running, waiting),
        reads=Gate(READERS, waiting),
        runner=runner,
    )
    server = StrictServer(
        "sleuth",
        title="sleuth: is this image AI-generated?",
        instructions=prompts.render("mcp_instructions"),
        version=_version(),
        # the SDK configures root logging when none is set; the entry point sets it first
        log_level="WARNING",
    )
    add_case_tools(server, surface)
    add_case_resources(server, surface)
    add_prompts(server, surface.policy)
    add_run_tool(server, surface.registry, surface.policy, settings.image_limits, surface.work)
    if expose_tools:
        add_forensic_tools(
            server, surface.registry, surface.policy, settings.image_limits, surface.work
        )
    return server


def add_prompts(server: MCPServer, policy: InputPolicy) -> None:
    """Register the ``investigate_image`` prompt (it asks for the inputs the server takes)."""

    @server.prompt(title="Investigate an image")
    def investigate_image(
        image: Annotated[
            str, Field(description="The image: a file name, a path, a URL, or 'the pasted image'.")
        ],
        question: str | None = None,
    ) -> str:
        """Investigate whether an image is AI-generated, citing the evidence."""
        return prompts.render(
            "mcp_investigate",
            image=image,
            question=question,
            files=bool(policy.allow_dirs),
            urls=policy.allow_urls,
        )


async def _gated(gate: Gate, fn: Callable[..., T], *args: Any) -> T:
    try:
        return await gate.run(fn, *args)
    except SleuthError as err:
        raise tool_error(err) from None


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sleuth")
    except PackageNotFoundError:
        return "0"
