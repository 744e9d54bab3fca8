"""The evaluation and training runs behind the command line."""

from __future__ import annotations

import functools
import json
import math
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import Progress

from sleuth.agent.features import FEATURE_NAMES, METRIC_FEATURES
from sleuth.evaluation import analysis
from sleuth.evaluation.sources import Sample, read_sources
from sleuth.tools.threads import worker_pool

if TYPE_CHECKING:
    import numpy as np

    from sleuth.evaluation.training import TrainingData
    from sleuth.tools import Calibration


def select_features(selection: Sequence[str]) -> list[str]:
    """Return the pixel-model candidates named by ``selection``, in vector order.

    Each item is a tool (all of its candidate features) or one feature name; only
    features the earned fusion may use are accepted (see
    :data:`sleuth.evaluation.earned.PIXEL_CANDIDATES` and ``ONE_SIDED``): provenance
    counts through its rules, and size only through one-sided features.
    """
    from sleuth.evaluation.earned import ONE_SIDED, PIXEL_CANDIDATES

    allowed = set(PIXEL_CANDIDATES) | set(ONE_SIDED)
    tool_of = {f.name: f.tool for f in METRIC_FEATURES}
    names = set()
    for item in selection:
        found = [n for n in allowed if item in (n, tool_of.get(n))]
        if not found:
            raise ValueError(
                f"no candidate tool or feature named {item!r}; use tools or features among "
                f"{', '.join(sorted(allowed))}"
            )
        names.update(found)
    if not names:
        raise ValueError("no features selected")
    return [n for n in FEATURE_NAMES if n in names]


def train_from_source(
    sources: Sequence[Path],
    *,
    out: Path,
    version: str,
    features: Sequence[str],
    c_grid: Sequence[float],
    jobs: int,
    cache: Path | None,
    console: Console,
    plugins: bool = True,
) -> dict[str, Any]:
    """Compute features on every track, score the procedure out of source, fit and write.

    The leave-one-source-out figures come from :func:`sleuth.evaluation.earned.
    leave_one_source_out` (the whole fit redone per held-out source); the shipped model
    from :func:`~sleuth.evaluation.earned.fit_pixel_model` on every row. With ``plugins``
    and calibrated plugins installed, each gets a fitted weight
    (:mod:`sleuth.evaluation.plugins`) under the file's ``plugins`` key, and ``loso``
    holds the figures with them (``loso_without_plugins`` those without).
    """
    from sleuth.agent.fusion import FusionWeights, ProvenanceRules
    from sleuth.evaluation.earned import (
        earned_document,
        fit_pixel_model,
        leave_one_source_out,
    )
    from sleuth.evaluation.features import collect_features, plugin_column
    from sleuth.evaluation.training import (
        TrainingData,
        require_sklearn,
        scores_by_track,
    )
    from sleuth.tools import ToolRegistry

    require_sklearn()
    calibrated = ToolRegistry.discover().calibrations() if plugins else {}
    samples = read_sources(sources)
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("features", total=len(samples))
        rows = collect_features(
            samples, jobs=jobs, cache=cache, progress=lambda n: bar.update(task, completed=n)
        )
    for row in rows:
        if row.error:
            console.print(f"skipped {row.key} ({row.track}): {row.error}")
    candidates = select_features(features)
    columns = FEATURE_NAMES + tuple(plugin_column(name) for name in calibrated)
    data = TrainingData.from_rows(rows, columns)
    rules = ProvenanceRules()
    with console.status("leave-one-source-out: refitting once per source"):
        p = leave_one_source_out(data, rules=rules, candidates=candidates, c_grid=c_grid)
    model = fit_pixel_model(data, candidates=candidates, c_grid=c_grid)
    console.print(
        f"pixel model: {', '.join(model.features)}; C {model.c}, temperature slope "
        f"{model.slope:.3f}, caps {model.cap_ai:.2f} towards AI, {model.cap_real:.2f} towards real"
    )
    fitted, p_plugins = _fit_plugins(data, p, calibrated, console)
    document = earned_document(
        model,
        version=version,
        rules=rules,
        loso=scores_by_track(data, p_plugins),
        n_images=len(samples),
        n_groups=len(set(data.groups)),
        candidates=candidates,
        c_grid=c_grid,
    )
    if fitted:
        from sleuth.evaluation.earned import loso_document
        from sleuth.evaluation.plugins import plugins_document

        document["plugins"] = plugins_document(data, calibrated, fitted)
        document["loso_without_plugins"] = loso_document(scores_by_track(data, p))
        document["description"] += (
            " plugins holds a weight for each calibrated plugin, fitted on top of the rest "
            "(sleuth.evaluation.plugins); loso then includes them and loso_without_plugins "
            "does not."
        )
    FusionWeights.save(document, out)
    return document


def _fit_plugins(
    data: TrainingData, p: np.ndarray, calibrated: dict[str, Calibration], console: Console
) -> tuple[dict[str, float], np.ndarray]:
    """Fit the calibrated plugins' weights; return them and the LOSO ``p_ai`` with them."""
    if not calibrated:
        return {}, p
    from sleuth.evaluation import plugins

    offset = plugins.offsets(p)
    fitted = plugins.fit_weights(data, offset, calibrated)
    for name, declared in calibrated.items():
        if name not in fitted:
            console.print(
                f"plugin {name}: fewer than {plugins.MIN_SCORED} scored rows; not fitted "
                f"(its declared weight {declared.weight:g} applies)"
            )
            continue
        console.print(
            f"plugin {name}: weight {fitted[name]:.2f} (declared {declared.weight:g}), "
            f"capped at ±{declared.cap:g} log-odds"
        )
    return fitted, plugins.leave_one_source_out(data, offset, calibrated)


def _analyse_all(
    samples: list[Sample],
    tracks: Sequence[str],
    backend: str,
    jobs: int,
    engine: str = "local",
    address: str | None = None,
    base_url: str | None = None,
) -> Iterator[dict[str, Any]]:
    jobs_list = [(s, t) for s in samples for t in tracks]
    if engine == "ray":
        from sleuth.scan.engines import ray_map

        make = functools.partial(analysis.Analyst, backend, base_url)
        yield from ray_map(make, jobs_list, jobs, address)
        return
    if jobs <= 1:
        analysis.open_session(backend, base_url)
        try:
            yield from (analysis.analyse(s, t) for s, t in jobs_list)
        finally:
            analysis.close_session()
        return
    with worker_pool(jobs, analysis.open_session, (backend, base_url)) as pool:
        yield from pool.map(
            analysis.analyse, [s for s, _ in jobs_list], [t for _, t in jobs_list], chunksize=2
        )


def run_evaluation(
    sources: Sequence[Path],
    *,
    tracks: Sequence[str],
    backends: Sequence[str],
    jobs: int,
    out: Path,
    localisation: int,
    limit: int,
    console: Console,
    engine: str = "local",
    address: str | None = None,
    base_url: str | None = None,
) -> list[str]:
    """Analyse every image on every track with each backend; write results.jsonl and report.html.

    The backends run one after another, each on every image and track; each row names its
    backend. The baselines, the leave-one-source-out refit and the localisation track do
    not depend on the backend and are computed once.

    Parameters
    ----------
    backends : sequence of str
        ``provider:model`` strings, checked before any image is analysed
        (:func:`sleuth.evaluation.backends.check_backends`).
    base_url : str, optional
        The OpenAI-compatible server of every ``openai`` backend (else the settings').

    Returns
    -------
    list of str
        Summary lines (one per track and method) for the terminal.

    Raises
    ------
    BackendUnavailable
        When a backend cannot run (named in the message); nothing is written.
    """
    from sleuth.evaluation.backends import check_backends
    from sleuth.evaluation.report import summarise, write_report
    from sleuth.settings import Settings

    check_backends(backends, Settings.load(base_url=base_url).backend_options())
    samples = read_sources(sources)[: limit or None]
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    rows = []
    timing = []
    with (
        Progress(console=console, transient=True) as bar,
        open(out / "results.jsonl", "w", encoding="utf-8") as fh,
    ):
        task = bar.add_task("analysing", total=len(samples) * len(tracks) * len(backends))
        for backend in backends:
            begun = time.perf_counter()
            for row in _analyse_all(samples, tracks, backend, jobs, engine, address, base_url):
                rows.append(row)
                fh.write(json.dumps(row) + "\n")
                bar.advance(task)
            timing.append(f"{backend}: {time.perf_counter() - begun:.0f} s")
    seconds = time.perf_counter() - start
    loc = None
    if localisation:
        from sleuth.evaluation.localisation import evaluate_localisation

        loc = evaluate_localisation(samples, count=localisation, jobs=jobs)
    summary = summarise(rows, tracks)
    write_report(
        out,
        rows,
        summary,
        localisation=loc,
        seconds=seconds,
        source=", ".join(str(s) for s in sources),
    )
    first = f"{len(rows)} analyses in {seconds:.0f} s"
    if len(backends) > 1:
        first += f" ({'; '.join(timing)})"
    lines = [first, *summary_lines(summary)]
    if loc is not None:
        lines.append(
            f"localisation: {loc['n']} composites, mean best IoU {_f(loc['mean_iou'])}, "
            f"hit rate (IoU >= 0.5) {_f(loc['hit_rate'])}"
        )
    return lines


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """Return one line per track and method of a :func:`~sleuth.evaluation.report.summarise`."""
    lines = []
    for track, methods in summary["methods"].items():
        for method, s in methods.items():
            lines.append(f"{track:9s} {method:18s} {scores_text(s)}")
    for track, s in summary.get("loso", {}).items():
        lines.append(f"{track:9s} {'fusion, LOSO':18s} {scores_text(s)}")
    return lines


def scores_text(s: dict[str, Any]) -> str:
    """One line of a method's figures on one track (a ``Scores`` as a dict)."""
    return (
        f"AUROC {_f(s['auroc'])}  ECE {_f(s['ece'])} (floor {_f(s['ece_floor'])})  "
        f"accuracy {_f(s['accuracy'])}  confidently wrong {_f(s['confidently_wrong'])}  "
        f"coverage@95% {_f(s['coverage_95'])}  abstain {_f(s['abstain_rate'])}"
    )


def _f(value: float) -> str:
    return "  n/a" if value is None or math.isnan(value) else f"{value:.3f}"
