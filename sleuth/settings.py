"""Settings: one frozen model; explicit arguments, then environment, then file, then defaults."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sleuth.agent.backends import BackendOptions
from sleuth.agent.context import RANGES, AgentContext
from sleuth.tools.box import validation_message
from sleuth.tools.errors import SleuthError
from sleuth.tools.image import ImageLimits
from sleuth.tools.isolation import TOOL_SECONDS

if TYPE_CHECKING:
    from sleuth.agent.session import SessionConfig
    from sleuth.tools.registry import ToolRegistry

ENV_PREFIX = "SLEUTH_"
# Limits `sleuth serve` applies unless set: a server takes images from clients. An offline
# analysis peaks near 1 GB at 24 MP (3 GB at 80 MP; benchmarks/memory.py).
SERVE_DEFAULTS = {
    "max_store_mb": 2048.0,
    "case_ttl_days": 30.0,
    "max_image_pixels": 24_000_000,
}
LIST_SEPARATOR = ","


class SettingsError(SleuthError, ValueError):
    """A setting has an invalid value; the message names it and its source."""


def default_data_dir() -> Path:
    """Return the user data directory (``$XDG_DATA_HOME/sleuth`` on Linux)."""
    return Path(platformdirs.user_data_dir("sleuth", appauthor=False))


def default_config_file() -> Path:
    """Return ``$XDG_CONFIG_HOME/sleuth/config.toml`` (``~/.config`` when unset)."""
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "sleuth" / "config.toml"


def _context_field(name: str, description: str) -> Any:
    """Return a setting that is a field of :class:`AgentContext`, with its default and range."""
    low, high = RANGES[name]
    return Field(getattr(AgentContext, name), ge=low, le=high, description=description)


class Settings(BaseModel):
    """Everything configurable. Each field is also ``SLEUTH_<FIELD>`` in the environment.

    Load with :meth:`load`; construct directly for fully explicit settings.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_image_bytes: int = Field(ImageLimits.max_bytes, ge=1, description="Largest file read.")
    max_image_pixels: int = Field(
        ImageLimits.max_pixels, ge=1, description="Largest canvas decoded."
    )
    decode_seconds: float = Field(
        ImageLimits.decode_seconds,
        ge=0,
        le=3600,
        description="Longest one image may take to decode (CPU and wall clock), in a worker "
        "process stopped past it; 0 decodes in-process without a bound.",
    )
    tools_enabled: list[str] | None = Field(None, description="Only these tools, when set.")
    tools_blocked: list[str] = Field(default_factory=list, description="Tools never loaded.")
    tool_seconds: float = Field(
        TOOL_SECONDS,
        ge=0,
        le=86400,
        description="Longest one tool call may take (wall clock); past it the call gives an "
        "error finding and the analysis goes on (the tool's thread runs on in the background "
        "until it returns). 0: no limit.",
    )
    data_dir: Path = Field(
        default_factory=default_data_dir, description="Case images, artifacts and the database."
    )
    case_store: str | None = Field(
        None,
        description="SQLite file or postgres:// URL for case state; default: "
        "<data_dir>/cases.sqlite.",
    )
    max_store_mb: float = Field(
        0.0,
        ge=0,
        description="Case store quota in MB (images, artifacts, SQLite); the least recently "
        "used cases are removed to fit a new one. 0: no quota (`sleuth serve`: 2048).",
    )
    case_ttl_days: float = Field(
        0.0,
        ge=0,
        description="Cases unused for this many days are removed. 0: kept (`sleuth serve`: 30).",
    )
    backend: str = Field("offline", description="provider:model, e.g. openai:Qwen/Qwen2.5-VL-7B.")
    base_url: str | None = Field(None, description="OpenAI-compatible server for openai.")
    api_key: str = Field(BackendOptions.api_key, description="Bearer token for the model server.")
    model_timeout: float = Field(
        BackendOptions.timeout, gt=0, le=3600, description="Seconds per model call."
    )
    model_retries: int = Field(
        BackendOptions.retries, ge=0, le=5, description="Retries after a failed call."
    )
    model_family: str | None = Field(None, description="Box convention override.")
    model_max_pixels: int | None = Field(
        None, ge=3136, description="Image budget of the model server, when not the default."
    )
    model_max_images: int = Field(
        BackendOptions.max_images,
        ge=1,
        le=64,
        description="Images per request the model server accepts.",
    )
    fallback: bool = Field(False, description="Answer with the offline analyst if the model fails.")
    checkpoints: Literal["run", "step"] = Field(
        "run",
        description=(
            "When a case is written to the case store: 'run' once a run ends (done, failed or "
            "interrupted), 'step' after every step as well (survives a killed process)."
        ),
    )
    max_steps: int = _context_field("max_steps", "Reasoning turns per question.")
    threshold: float = _context_field("threshold", "Confidence that stops early.")
    abstain_low: float = _context_field("abstain_low", "Abstain band, lower end.")
    abstain_high: float = _context_field("abstain_high", "Abstain band, upper end.")
    stability_variants: int = _context_field(
        "stability_variants",
        "Web-style copies the survey's pixel tools re-run on; 0 switches it off.",
    )
    # `sleuth serve --transport http` under slow or hostile clients
    http_header_timeout: float = Field(
        10.0, gt=0, le=600, description="Seconds a client has to send a request's headers."
    )
    http_body_timeout: float = Field(
        60.0, gt=0, le=3600, description="Seconds to send a request body once its headers are in."
    )
    http_max_connections: int = Field(
        100,
        ge=1,
        le=100_000,
        description="HTTP connections open at once (lowered to fit the open-file limit); at the "
        "cap a new one replaces the oldest half-open or idle one, or is refused with 503.",
    )
    http_keep_alive: float = Field(
        5.0, gt=0, le=600, description="Seconds an idle kept-alive HTTP connection stays open."
    )

    def backend_options(self, base_url: str | None = None) -> BackendOptions:
        """Return the model backend's options (``base_url`` overrides the setting)."""
        return BackendOptions(
            base_url=base_url or self.base_url,
            api_key=self.api_key,
            timeout=self.model_timeout,
            retries=self.model_retries,
            family=self.model_family,
            max_pixels=self.model_max_pixels,
            max_images=self.model_max_images,
        )

    def context(self) -> AgentContext:
        """Return the budgets and thresholds of each run."""
        return AgentContext(
            max_steps=self.max_steps,
            threshold=self.threshold,
            abstain_low=self.abstain_low,
            abstain_high=self.abstain_high,
            stability_variants=self.stability_variants,
        )

    def tool_registry(self) -> ToolRegistry:
        """Return the installed forensic tools these settings allow (with their time budget)."""
        from sleuth.tools.registry import ToolRegistry as Registry

        return Registry.discover(
            enabled=self.tools_enabled, blocked=self.tools_blocked, tool_seconds=self.tool_seconds
        )

    def session_config(self) -> SessionConfig:
        """Return what a :class:`sleuth.agent.session.Session` needs, resolved."""
        from sleuth.agent.session import SessionConfig

        return SessionConfig(
            data_dir=self.data_dir,
            case_store=self.case_store_target,
            backend=self.backend,
            backend_options=self.backend_options(),
            backend_given="backend" in self.model_fields_set,
            fallback=self.fallback,
            checkpoints=self.checkpoints,
            context=self.context(),
            image_limits=self.image_limits,
            max_store_mb=self.max_store_mb,
            case_ttl_days=self.case_ttl_days,
            tools_enabled=None if self.tools_enabled is None else tuple(self.tools_enabled),
            tools_blocked=tuple(self.tools_blocked),
            tool_seconds=self.tool_seconds,
        )

    def for_serve(self) -> Settings:
        """Return these settings with the case-store limits of ``sleuth serve`` where unset.

        Each of :data:`SERVE_DEFAULTS` applies unless given explicitly (argument,
        ``SLEUTH_*`` variable or config file); 0 keeps the store limits off.
        """
        unset = {k: v for k, v in SERVE_DEFAULTS.items() if k not in self.model_fields_set}
        return self.model_copy(update=unset)

    @property
    def case_store_target(self) -> str:
        """The checkpointer target: the setting, or the SQLite file in the data directory."""
        return self.case_store or str(self.data_dir / "cases.sqlite")

    @property
    def image_limits(self) -> ImageLimits:
        """The image loading limits."""
        return ImageLimits(
            max_bytes=self.max_image_bytes,
            max_pixels=self.max_image_pixels,
            decode_seconds=self.decode_seconds,
        )

    @classmethod
    def load(cls, config_file: Path | None = None, **overrides: Any) -> Settings:
        """Resolve settings: ``overrides`` > ``SLEUTH_*`` variables > config file > defaults.

        Parameters
        ----------
        config_file : Path, optional
            A TOML file; defaults to ``$SLEUTH_CONFIG`` or :func:`default_config_file`
            (a missing default file is fine, a missing explicit one is an error).
        **overrides
            Explicit values; ``None`` means "not given".

        Raises
        ------
        SettingsError
            For an unreadable file, an unknown key or an invalid value.
        """
        values: dict[str, Any] = {}
        values.update(_from_file(config_file))
        values.update(_from_env())
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls.model_validate(values)
        except ValidationError as err:
            raise SettingsError(f"invalid settings: {validation_message(err)}") from None


def _from_file(path: Path | None) -> dict[str, Any]:
    explicit = path or (Path(p) if (p := os.environ.get(f"{ENV_PREFIX}CONFIG")) else None)
    target = explicit or default_config_file()
    if not target.is_file():
        if explicit:
            raise SettingsError(f"config file {target} does not exist")
        return {}
    try:
        return tomllib.loads(target.read_text())
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise SettingsError(f"cannot read config file {target}: {err}") from None


def _from_env() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, field in Settings.model_fields.items():
        raw = os.environ.get(ENV_PREFIX + name.upper())
        if raw is None:
            continue
        is_list = "list" in str(field.annotation)
        out[name] = [p.strip() for p in raw.split(LIST_SEPARATOR) if p.strip()] if is_list else raw
    return out
