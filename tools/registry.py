"""The tool registry: validation at registration, entry-point discovery, and running a tool.

Built-in tools are declared as entry points of the ``sleuth`` distribution itself, so
they reach the registry by exactly the path a third-party plugin takes. A third-party
plugin that cannot be loaded (import error, invalid spec, name clash) is skipped with one
warning line, unless ``enabled`` names it; a broken built-in is a broken installation and
raises.
"""

from __future__ import annotations

import inspect
import logging
import re
import typing
from collections.abc import Iterable, Iterator, Mapping
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from sleuth.tools.base import TOOL_NAME, Calibration, ToolContext, ToolResult, ToolSpec
from sleuth.tools.box import Box, validation_message
from sleuth.tools.errors import PluginValidationError, ToolInputError, UnknownToolError
from sleuth.tools.image import LoadedImage
from sleuth.tools.isolation import TOOL_SECONDS, call_with_budget, describe

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "sleuth.tools"
BUILTIN_DISTRIBUTION = "sleuth"
MAX_DESCRIPTION = 1024


class ToolRegistry:
    """Named forensic tools, validated on the way in.

    Parameters
    ----------
    specs : iterable of ToolSpec
        Tools to register (as third-party tools; :meth:`discover` marks the built-ins).
    tool_seconds : float
        Wall-clock budget of one tool call in :meth:`run` (0: none); see
        :func:`sleuth.tools.isolation.call_with_budget`.

    Attributes
    ----------
    skipped : dict of str to str
        Plugins :meth:`discover` skipped, by entry-point name: why, in one line.

    Examples
    --------
    >>> registry = ToolRegistry.discover()          # built-ins and installed plugins
    >>> result = registry.run("ela", image, {"quality": 90})  # doctest: +SKIP
    """

    def __init__(
        self, specs: Iterable[ToolSpec] = (), *, tool_seconds: float = TOOL_SECONDS
    ) -> None:
        if not tool_seconds >= 0:
            raise ValueError(f"tool_seconds must be 0 (no limit) or more, not {tool_seconds!r}")
        self.tool_seconds = tool_seconds
        self._specs: dict[str, ToolSpec] = {}
        self._builtin: set[str] = set()
        self.skipped: dict[str, str] = {}
        for spec in specs:
            self.register(spec)

    @classmethod
    def discover(
        cls,
        *,
        enabled: Iterable[str] | None = None,
        blocked: Iterable[str] = (),
        tool_seconds: float = TOOL_SECONDS,
    ) -> ToolRegistry:
        """Build a registry from every tool in the ``sleuth.tools`` entry-point group.

        A third-party plugin that fails to import, is invalid or clashes with a registered
        name is skipped with one WARNING line that names it, the cause and the setting
        that silences it; :attr:`skipped` keeps the reason.

        Parameters
        ----------
        enabled : iterable of str, optional
            When given, only these tools are loaded, and one that cannot be is an error.
        blocked : iterable of str
            Tools never loaded (not even imported), e.g. a broken plugin.
        tool_seconds : float
            Budget of one tool call (see :class:`ToolRegistry`).

        Raises
        ------
        PluginValidationError
            When a built-in tool, or a tool named in ``enabled``, cannot be loaded; the
            message names the distribution and how to fix it.
        """
        wanted = set(enabled) if enabled is not None else None
        skip = set(blocked)
        registry = cls(tool_seconds=tool_seconds)
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=_load_order):
            if ep.name in skip or (wanted is not None and ep.name not in wanted):
                continue
            registry._add_entry_point(ep, required=wanted is not None)
        if wanted is not None and (missing := wanted - set(registry.names())):
            raise UnknownToolError(
                f"enabled tools not installed: {', '.join(sorted(missing))}; "
                f"installed: {', '.join(sorted(_installed_names()))}"
            )
        return registry

    def _add_entry_point(self, ep: EntryPoint, *, required: bool) -> None:
        builtin = _is_builtin(ep)
        try:
            spec = _load_entry_point(ep)
        except PluginValidationError as err:
            if builtin or required:  # sleuth's own tools, or one the user asked for
                fix = (
                    f"reinstall sleuth, or block it with the setting tools_blocked=['{ep.name}']"
                    if builtin
                    else "fix or uninstall it"
                )
                raise PluginValidationError(f"{err}; {fix}") from err.__cause__
            self._skip(ep, str(err), f"set tools_blocked=['{ep.name}']")
            if err.__cause__ is not None:  # the import's traceback
                logger.debug("traceback of %s", _plugin(ep), exc_info=err.__cause__)
            return
        if spec.name in self._specs:  # blocking the name would block both tools
            owner = "sleuth's own tool" if self.is_builtin(spec.name) else "another plugin"
            dist = ep.dist.name if ep.dist is not None else "it"
            self._skip(
                ep,
                f"{_plugin(ep)}: the name {spec.name!r} is taken by {owner}",
                f"uninstall {dist} or have it renamed (e.g. 'acme_{spec.name}')",
            )
            return
        self.register(spec, builtin=builtin)

    def _skip(self, ep: EntryPoint, reason: str, silence: str) -> None:
        self.skipped[ep.name] = reason
        logger.warning("skipped %s; %s to silence this warning", reason, silence)

    def register(self, spec: ToolSpec, *, builtin: bool = False) -> ToolSpec:
        """Validate ``spec`` and add it.

        Parameters
        ----------
        spec : ToolSpec
            The tool.
        builtin : bool
            Whether it is one of sleuth's own tools, which come first in every order
            (:meth:`__iter__`, the survey), so a plugin never renumbers their evidence.

        Raises
        ------
        PluginValidationError
            When the name, parameter model, run signature or texts are invalid, or the
            name is taken. The message says how to fix it.
        """
        validate_spec(spec)
        if spec.name in self._specs:
            raise PluginValidationError(
                f"a tool named {spec.name!r} is already registered; choose another name "
                "(prefix it with your package's name, e.g. 'acme_ela')"
            )
        self._specs[spec.name] = spec
        if builtin:
            self._builtin.add(spec.name)
        return spec

    def is_builtin(self, name: str) -> bool:
        """Tell whether the tool ``name`` is one of sleuth's own (registered as built-in)."""
        return name in self._builtin

    def get(self, name: str) -> ToolSpec:
        """Return the tool called ``name``, or raise :class:`UnknownToolError`."""
        try:
            return self._specs[name]
        except KeyError:
            raise UnknownToolError(
                f"no tool named {name!r}; available: {', '.join(self.names())}"
            ) from None

    def names(self) -> list[str]:
        """Return the registered tool names, sorted."""
        return sorted(self._specs)

    def calibrations(self) -> dict[str, Calibration]:
        """Return the declared calibrations of the tools whose score counts in ``p_ai``.

        The fusion (:func:`sleuth.agent.fusion.fuse`) takes this mapping; a tool without
        ``calibrated=`` is not in it and its score never moves ``p_ai``.
        """
        return {spec.name: spec.calibrated for spec in self if spec.calibrated is not None}

    def named_in(self, text: str) -> tuple[str, ...]:
        """Return the tools a text names, by name or declared alias, each as whole words.

        "what did the error level analysis show?" names ``ela``; "related" does not.
        """
        lowered = text.lower()
        return tuple(
            spec.name
            for spec in self
            if any(re.search(rf"\b{re.escape(w)}\b", lowered) for w in (spec.name, *spec.aliases))
        )

    def __iter__(self) -> Iterator[ToolSpec]:
        """Iterate over the tools: the built-ins by name, then the others by name."""
        order = sorted(self._specs, key=lambda name: (not self.is_builtin(name), name))
        return iter(self._specs[name] for name in order)

    def __len__(self) -> int:
        return len(self._specs)

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def run(
        self,
        name: str,
        image: LoadedImage,
        params: Mapping[str, Any] | BaseModel | None = None,
        *,
        region: Box | None = None,
        artifact_dir: Path | None = None,
        label: str = "",
    ) -> ToolResult:
        """Run a tool on an image, or on a region of it.

        Parameters
        ----------
        name : str
            A registered tool.
        image : LoadedImage
            The whole image.
        params : mapping or BaseModel, optional
            Parameters; validated against the tool's model. Defaults when omitted.
        region : Box, optional
            A box in original pixels; the tool then analyses only that crop.
        artifact_dir : Path, optional
            Where artifacts are written as PNG.
        label : str
            Extra part of the artifact names (for example the step), so that a later call
            with other parameters never overwrites an earlier call's files.

        Returns
        -------
        ToolResult
            Findings whose boxes and artifact sources are in original pixels.

        Raises
        ------
        ToolInputError
            For parameters or a region the caller can fix.
        ToolTimeoutError
            When the tool runs past :attr:`tool_seconds` (it goes on in the background
            until it returns; see :func:`sleuth.tools.isolation.call_with_budget`).
        Exception
            Whatever else the tool raises, and :class:`TypeError` or
            :class:`RuntimeError` for a malformed result: a bug in the tool
            (:func:`sleuth.tools.isolation.run_isolated` makes it an error finding).
        """
        spec = self.get(name)
        parsed = parse_params(spec, params)
        view = image
        region_tag = ""
        if region is not None:
            if not spec.regional:
                raise ToolInputError(
                    f"tool {name!r} reads the whole file and takes no region; call it without one"
                )
            view = image.crop(region)
            region_tag = "r{}_{}_{}_{}".format(*region.as_tuple())
        tag = "-".join(part for part in (label, region_tag) if part)
        ctx = ToolContext(tool=name, artifact_dir=artifact_dir, tag=tag)
        result = call_with_budget(lambda: spec.run(view, parsed, ctx), self.tool_seconds, name=name)
        return _checked(spec, view, result)


def parse_params(spec: ToolSpec, params: Mapping[str, Any] | BaseModel | None) -> BaseModel:
    """Validate parameters for ``spec``; raise :class:`ToolInputError` with every problem."""
    if isinstance(params, spec.params):
        return params
    if isinstance(params, BaseModel):
        params = params.model_dump()
    if params is not None and not isinstance(params, Mapping):
        raise ToolInputError(
            f"parameters of {spec.name!r} must be an object, not {type(params).__name__}"
        )
    try:
        return spec.params.model_validate(dict(params or {}))
    except ValidationError as err:
        raise ToolInputError(
            f"bad parameters for {spec.name!r}: {validation_message(err)}"
        ) from None


QUOTED_BOX = re.compile(r"\((\d+), (\d+), (\d+), (\d+)\)")
"""A box as summaries quote it, ``(x0, y0, x1, y1)`` (``Box.as_tuple`` printed)."""


def _checked(spec: ToolSpec, view: LoadedImage, result: ToolResult) -> ToolResult:
    """Stamp the tool's name on its findings; reject boxes outside the analysed region.

    A summary that quotes a box ``(x0, y0, x1, y1)`` must quote one the result holds (a
    finding's box or an artifact's source), so a summary written in the crop's frame
    while the boxes are in original pixels is caught.
    """
    if not isinstance(result, ToolResult):
        raise TypeError(f"tool {spec.name!r} returned {type(result).__name__}, not ToolResult")
    region = view.region
    known = {a.name for a in result.artifacts}
    for finding in result.findings:
        for box in finding.boxes:
            if not _inside(box, region):
                raise RuntimeError(
                    f"tool {spec.name!r} returned box {box.as_tuple()} outside the analysed "
                    f"region {region.as_tuple()}; boxes are in original pixels "
                    "(use image.to_original(box) for boxes computed on a view)"
                )
        if unknown := set(finding.artifacts) - known:
            raise RuntimeError(f"tool {spec.name!r} cites missing artifacts {sorted(unknown)}")
    for artifact in result.artifacts:
        if artifact.source is not None:
            artifact.source.check_inside(*view.size)
    _check_quoted_boxes(spec, result)
    findings = [f.model_copy(update={"tool": spec.name}) for f in result.findings]
    return ToolResult(findings=findings, artifacts=result.artifacts)


def _check_quoted_boxes(spec: ToolSpec, result: ToolResult) -> None:
    held = {box.as_tuple() for f in result.findings for box in f.boxes}
    held |= {a.source.as_tuple() for a in result.artifacts if a.source is not None}
    for finding in result.findings:
        for match in QUOTED_BOX.findall(finding.summary):
            quoted = tuple(int(v) for v in match)
            if quoted not in held:
                raise RuntimeError(
                    f"tool {spec.name!r} quotes box {quoted} in its summary, but its result "
                    "holds no such box; quote the boxes in original pixels, as the findings "
                    "hold them"
                )


def _inside(box: Box, region: Box) -> bool:
    return (
        region.x0 <= box.x0 and region.y0 <= box.y0 and box.x1 <= region.x1 and box.y1 <= region.y1
    )


def validate_spec(spec: object) -> None:
    """Check everything a registry needs from a tool; raise with a fix on failure.

    Raises
    ------
    PluginValidationError
        Naming the first problem found and how to fix it.
    """
    if not isinstance(spec, ToolSpec):
        raise PluginValidationError(
            f"expected a ToolSpec, got {type(spec).__name__}: decorate your run function "
            "with @forensic_tool(...) and point the entry point at the decorated name"
        )
    if not TOOL_NAME.match(spec.name):
        raise PluginValidationError(
            f"tool name {spec.name!r} is invalid: use 1-64 characters of a-z, 0-9 and _, "
            "starting with a letter (pattern ^[a-z][a-z0-9_]{0,63}$), e.g. 'acme_noise'"
        )
    for attr in ("summary", "caveat", "score_meaning"):
        text = getattr(spec, attr)
        if not isinstance(text, str) or not text.strip():
            raise PluginValidationError(f"tool {spec.name!r}: {attr} must be a non-empty sentence")
    if len(spec.description) > MAX_DESCRIPTION:
        raise PluginValidationError(
            f"tool {spec.name!r}: summary + caveat + score_meaning is {len(spec.description)} "
            f"characters; keep it under {MAX_DESCRIPTION} (function-calling limits)"
        )
    if spec.cost not in typing.get_args(typing.get_type_hints(ToolSpec)["cost"]):
        raise PluginValidationError(
            f"tool {spec.name!r}: cost must be cheap, moderate or expensive"
        )
    _validate_aliases(spec)
    _validate_calibration(spec)
    _validate_params_model(spec)
    _validate_run_signature(spec)


def _validate_aliases(spec: ToolSpec) -> None:
    aliases = spec.aliases
    if not isinstance(aliases, tuple) or not all(
        isinstance(alias, str) and alias.strip() and alias == alias.lower() for alias in aliases
    ):
        raise PluginValidationError(
            f"tool {spec.name!r}: aliases must be a tuple of non-empty lower-case words or "
            f"phrases, e.g. aliases=('blur', 'sharpness'); got {aliases!r}"
        )


def _validate_calibration(spec: ToolSpec) -> None:
    declared = spec.calibrated
    if declared is None:
        return
    example = "calibrated=Calibration(on='the held-out split of ...', weight=1.0, cap=1.0)"
    if not isinstance(declared, Calibration):
        raise PluginValidationError(
            f"tool {spec.name!r}: calibrated must be a sleuth.tools.Calibration, e.g. "
            f"{example}; got {type(declared).__name__}"
        )
    if (problem := declared.problem()) is not None:
        raise PluginValidationError(
            f"tool {spec.name!r}: calibrated score: {problem}, e.g. {example}"
        )


def _validate_params_model(spec: ToolSpec) -> None:
    model = spec.params
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise PluginValidationError(
            f"tool {spec.name!r}: params must be a pydantic BaseModel subclass, got {model!r}"
        )
    if model.model_config.get("extra") != "forbid":
        raise PluginValidationError(
            f"tool {spec.name!r}: {model.__name__} must reject unknown fields; add "
            "model_config = ConfigDict(extra='forbid')"
        )
    try:
        model.model_json_schema()
        defaults = model()
    except ValidationError:
        raise PluginValidationError(
            f"tool {spec.name!r}: every field of {model.__name__} needs a default, so the "
            "tool can run in a survey without arguments"
        ) from None
    except Exception as err:
        raise PluginValidationError(
            f"tool {spec.name!r}: {model.__name__} has no JSON schema ({err}); use plain "
            "JSON types (numbers, strings, booleans, lists, nested models)"
        ) from None
    if model.model_validate_json(defaults.model_dump_json()) != defaults:
        raise PluginValidationError(
            f"tool {spec.name!r}: {model.__name__} does not round-trip through JSON"
        )


def _validate_run_signature(spec: ToolSpec) -> None:
    run = spec.run
    fix = "define it as run(image: LoadedImage, params: YourParams, ctx: ToolContext)"
    if not callable(run):
        raise PluginValidationError(f"tool {spec.name!r}: run is not callable; {fix}")
    try:
        positional = [
            p
            for p in inspect.signature(run).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        raise PluginValidationError(f"tool {spec.name!r}: run has no signature; {fix}") from None
    if len(positional) != 3:
        raise PluginValidationError(
            f"tool {spec.name!r}: run takes {len(positional)} positional arguments, not 3; {fix}"
        )
    try:
        hints = typing.get_type_hints(run)
    except Exception:  # unresolvable annotations are allowed; only resolved ones are checked
        return
    declared = hints.get(positional[1].name)
    if declared is not None and declared is not spec.params:
        raise PluginValidationError(
            f"tool {spec.name!r}: run annotates its params as {declared!r} but the spec "
            f"declares {spec.params.__name__}; make them the same model"
        )


def _is_builtin(ep: EntryPoint) -> bool:
    return ep.dist is not None and ep.dist.name == BUILTIN_DISTRIBUTION


def _load_order(ep: EntryPoint) -> tuple[bool, str]:
    """Built-ins first, so a plugin can never take a built-in's name."""
    return (not _is_builtin(ep), ep.name)


def _load_entry_point(ep: EntryPoint) -> ToolSpec:
    """Import and validate one entry point; raise a one-line PluginValidationError."""
    plugin = _plugin(ep)
    try:
        spec = ep.load()
    except Exception as err:
        raise PluginValidationError(
            f"{plugin} ({ep.value}) failed to import: {describe(err)}"
        ) from err
    try:
        validate_spec(spec)
    except PluginValidationError as err:
        raise PluginValidationError(f"{plugin}: {err}") from None
    if spec.name != ep.name:
        raise PluginValidationError(
            f"{plugin} points at a tool named {spec.name!r}; name the entry point {spec.name!r}"
        )
    return spec


def _plugin(ep: EntryPoint) -> str:
    dist = ep.dist.name if ep.dist is not None else "an unknown distribution"
    return f"tool plugin {ep.name!r} from {dist}"


def _installed_names() -> list[str]:
    return [ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)]
