"""Feature vectors of an evaluation set: the survey on each image, per track, cached.

Besides the fusion's features (:data:`sleuth.agent.features.FEATURE_NAMES`), a row holds
one column per calibrated plugin (:func:`plugin_column`): the score that would count in
``p_ai`` (:func:`sleuth.agent.detectors.detector_item`), NaN when it gave none.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sleuth.agent.detectors import detector_item
from sleuth.agent.features import FEATURE_NAMES, FEATURE_SET, extract_features
from sleuth.evaluation.launder import launder
from sleuth.evaluation.sources import Sample
from sleuth.tools import LoadedImage, SleuthError, ToolInputError, ToolRegistry, load_image
from sleuth.tools.base import ToolResult
from sleuth.tools.isolation import run_isolated
from sleuth.tools.survey import run_survey
from sleuth.tools.threads import worker_pool
from sleuth.tools.variants import load_copy, web_copy

TRACKS = ("native", "laundered", "web")
DEFAULT_CACHE = Path(".cache") / "evaluation" / "features"
"""Relative to the working directory: the checkout's ``.cache`` when run from it."""
PLUGIN_PREFIX = "plugin:"
"""Prefix of the columns holding calibrated plugins' scores."""


def plugin_column(tool: str) -> str:
    """Return the name of the column holding the calibrated tool ``tool``'s score."""
    return PLUGIN_PREFIX + tool


@dataclass(frozen=True)
class FeatureRow:
    """The survey's features for one image on one track.

    Attributes
    ----------
    key : str
        The sample's name in its set (for reports only; never a feature).
    track : {'native', 'laundered', 'web'}
    y : int
        1 for fake.
    group : str
        ``source_repo``, for grouped cross-validation.
    values : dict of str to float
        Feature name to value (NaN when missing).
    error : str, optional
        Why the image could not be analysed; ``values`` is then empty.
    """

    key: str
    track: str
    y: int
    group: str
    values: dict[str, float] = field(default_factory=dict)
    error: str | None = None


def track_image(image: LoadedImage, track: str) -> LoadedImage:
    """Return the image as a track sees it: as is (native), laundered, or a web copy.

    The web copy's recipe (:func:`sleuth.tools.variants.web_recipe`) is drawn from the
    image's sha256, so every run and every process makes the same copy.
    """
    if track == "native":
        return image
    if track == "laundered":
        return load_copy(launder(image))
    if track == "web":
        return load_copy(web_copy(image.full, image.sha256)[0])
    raise ValueError(f"unknown track {track!r}; use one of {', '.join(TRACKS)}")


def survey_features(image: LoadedImage, registry: ToolRegistry) -> dict[str, float]:
    """Run the survey on the whole image and read the fusion's feature vector.

    Calibrated tools outside the survey run on the whole image too; each calibrated
    tool's score goes into its :func:`plugin_column` (NaN when it gave none or failed).
    """
    survey = run_survey(registry, image)
    findings = [f for result in survey.results.values() for f in result.findings]
    values = extract_features(findings).values
    for name in registry.calibrations():
        values[plugin_column(name)] = _calibrated_score(registry, name, image, survey.results)
    return values


def _calibrated_score(
    registry: ToolRegistry, name: str, image: LoadedImage, done: Mapping[str, ToolResult]
) -> float:
    """Return the score of ``name`` that would count in ``p_ai``, NaN when there is none."""
    if name in done:
        findings = done[name].findings
    else:
        try:
            findings = run_isolated(registry, name, image).findings
        except ToolInputError:  # defaults on the whole image: nobody can fix that call
            return float("nan")
    index = detector_item(findings, name)
    score = findings[index].score if index is not None else None
    return float("nan") if score is None else float(score)


def _cache_tag(registry: ToolRegistry) -> str:
    """Key the cache by the feature set and the installed tools' names.

    A plugin whose weights change under the same name is not noticed: clear the cache
    (or pass another ``cache``) then.
    """
    text = FEATURE_SET + "|" + ",".join(registry.names())
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _rows_for(sample: Sample, tracks: tuple[str, ...], cache: Path | None) -> list[FeatureRow]:
    registry = ToolRegistry.discover()
    base = {"key": sample.key, "y": sample.y, "group": sample.meta.get("source_repo", "unknown")}
    try:
        image = load_image(sample.path)
    except (SleuthError, OSError) as err:
        return [FeatureRow(track=t, error=f"{type(err).__name__}: {err}", **base) for t in tracks]
    rows = []
    tag = _cache_tag(registry)
    for track in tracks:
        path = cache / f"{image.sha256}-{track}-{tag}.json" if cache else None
        if path is not None and path.is_file():
            values = json.loads(path.read_text("utf-8"))
        else:
            values = survey_features(track_image(image, track), registry)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(values), "utf-8")
        rows.append(FeatureRow(track=track, values=values, **base))
    return rows


def collect_features(
    samples: Iterable[Sample],
    *,
    tracks: tuple[str, ...] = TRACKS,
    jobs: int = 1,
    cache: Path | None = DEFAULT_CACHE,
    progress: Callable[[int], None] | None = None,
) -> list[FeatureRow]:
    """Compute (or read from the cache) the feature rows of every sample and track.

    Parameters
    ----------
    samples : iterable of Sample
    tracks : tuple of str
        Subset of :data:`TRACKS`.
    jobs : int
        Worker processes (1: in this process).
    cache : Path, optional
        Folder of per-image feature files, keyed by the image's sha256, the track, the
        feature set and the installed tools. None disables it.
    progress : callable, optional
        Called with the number of samples finished so far.

    Returns
    -------
    list of FeatureRow
        In sample order, tracks in the order given; unreadable images give error rows.
    """
    items = list(samples)
    out: list[FeatureRow] = []
    for done, rows in enumerate(_map(items, tracks, jobs, cache), start=1):
        out.extend(rows)
        if progress is not None:
            progress(done)
    return out


def _map(
    items: list[Sample], tracks: tuple[str, ...], jobs: int, cache: Path | None
) -> Iterator[list[FeatureRow]]:
    if jobs <= 1:
        yield from (_rows_for(s, tracks, cache) for s in items)
        return
    with worker_pool(jobs) as pool:
        yield from pool.map(_rows_for, items, [tracks] * len(items), [cache] * len(items))


def write_rows(rows: Iterable[FeatureRow], path: Path) -> None:
    """Write feature rows as JSON lines (NaN as null)."""
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            data = asdict(row)
            data["values"] = {k: (None if v != v else v) for k, v in row.values.items()}
            fh.write(json.dumps(data) + "\n")


def read_rows(path: Path) -> list[FeatureRow]:
    """Read rows written by :func:`write_rows`."""
    rows = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            data = json.loads(line)
            data["values"] = {
                k: float("nan") if data["values"].get(k) is None else float(data["values"][k])
                for k in data["values"]
                if k in FEATURE_NAMES or k.startswith(PLUGIN_PREFIX)
            }
            rows.append(FeatureRow(**data))
    return rows
