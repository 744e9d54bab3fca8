"""How ``sleuth serve`` runs: a light module, so the command line can read it at start-up."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from sleuth.tools.errors import SleuthError

Transport = Literal["stdio", "http"]
Workers = Literal["processes", "threads"]


@dataclass(frozen=True, kw_only=True)
class ServeOptions:
    """How ``sleuth serve`` runs: each field is also its command-line option.

    A field's metadata holds the option's help text (``help``) and bounds (``min``,
    ``max``); the command line is generated from this class, so a new option is added here
    only.
    """

    transport: Transport = field(
        default="stdio", metadata={"help": "stdio (launched by a client) or http."}
    )
    host: str = field(default="127.0.0.1", metadata={"help": "HTTP bind address."})
    port: int = field(default=8765, metadata={"help": "HTTP port.", "min": 1, "max": 65535})
    allow_dir: tuple[Path, ...] = field(
        default=(),
        metadata={"help": "A folder whose images may be read by path (repeat).", "metavar": "DIR"},
    )
    token_file: Path | None = field(
        default=None,
        metadata={
            "help": "Bearer token HTTP clients must send (required off loopback).",
            "metavar": "FILE",
        },
    )
    allow_urls: bool = field(
        default=False, metadata={"help": "Fetch http(s) image URLs (public hosts only)."}
    )
    allow_origin: tuple[str, ...] = field(
        default=(),
        metadata={
            "help": "A browser origin allowed besides loopback (repeat).",
            "metavar": "ORIGIN",
        },
    )
    max_base64_mb: float = field(
        default=20.0, metadata={"help": "Largest base64 image.", "min": 0.01}
    )
    jobs: int = field(default=2, metadata={"help": "Analyses at once.", "min": 1})
    workers: Workers = field(
        default="processes",
        metadata={
            "help": "Where analyses run: processes (one per job, every core used) or threads."
        },
    )
    queue: int = field(
        default=32, metadata={"help": "Calls that may wait before 'busy'.", "min": 0}
    )
    expose_tools: bool = field(
        default=False,
        metadata={"help": "Also list one MCP tool per forensic tool (run_tool reaches them all)."},
    )
    log_level: str = field(default="WARNING", metadata={"help": "Logging level."})

    def __post_init__(self) -> None:
        if self.transport not in ("stdio", "http"):
            raise SleuthError(f"--transport must be stdio or http, not {self.transport!r}")
        if self.workers not in ("processes", "threads"):
            raise SleuthError(f"--workers must be processes or threads, not {self.workers!r}")
