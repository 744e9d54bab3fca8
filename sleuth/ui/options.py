"""How ``sleuth ui`` runs: each field is also its command-line option."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, kw_only=True)
class UiOptions:
    """Options of ``sleuth ui`` (the command line is generated from this class)."""

    host: str = field(default="127.0.0.1", metadata={"help": "Bind address."})
    port: int = field(default=8766, metadata={"help": "Port.", "min": 1, "max": 65535})
    allow_dir: tuple[Path, ...] = field(
        default=(),
        metadata={
            "help": "A folder whose images may be analysed by path (repeat).",
            "metavar": "DIR",
        },
    )
    token_file: Path | None = field(
        default=None,
        metadata={
            "help": "Token the browser must present (required off loopback).",
            "metavar": "FILE",
        },
    )
    allow_origin: tuple[str, ...] = field(
        default=(),
        metadata={"help": "An origin allowed besides the app's own (repeat).", "metavar": "ORIGIN"},
    )
    max_upload_mb: float = field(default=50.0, metadata={"help": "Largest upload.", "min": 0.01})
    jobs: int = field(default=2, metadata={"help": "Analyses at once.", "min": 1})
    queue: int = field(
        default=16, metadata={"help": "Analyses that may wait before 'busy'.", "min": 0}
    )
    log_level: str = field(default="WARNING", metadata={"help": "Logging level."})
