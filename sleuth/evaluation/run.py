"""The evaluation and training runs behind the command line."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress

from sleuth.agent.features import (
    FEATURE_NAMES,
    GATED_FEATURES,
    GATED_GROUP,
    METRIC_FEATURES,
    PROVENANCE_FEATURES,
)
from sleuth.evaluation import analysis
from sleuth.evaluation.sources import Sample, read_source


def select_features(selection: Sequence[str]) -> list[str]:
    """Return the features named by ``selection``, in vector order.

    Each item is a tool (all of its features, ``provenance`` for the two flags), one
    feature name, or ``at_gen_size`` for every feature gated by the generator-size cell
    (see :mod:`sleuth.agent.features`).
    """
    names = set()
    for item in selection:
        found = [f.name for f in METRIC_FEATURES if item in (f.tool, f.name)]
        found += list(PROVENANCE_FEATURES) if item == "provenance" else []
        found += [item] if item in PROVENANCE_FEATURES else []
        found += [f.name for f in GATED_FEATURES if item in (GATED_GROUP, f.name)]
        if not found:
            raise ValueError(f"no tool or feature named {item!r}; see sleuth.agent.features")
        names.update(found)
    if not names:
        raise ValueError("no features selected")
    return [n for n in FEATURE_NAMES if n in names]


def train_from_source(
    source: Path,
    *,
    out: Path,
    version: str,
    features: Sequence[str],
    c: float,
    seed: int,
    jobs: int,
    cache: Path | None,
    console: Console,
    calibration: str = "auto",
    repeats: int = 1,
) -> dict[str, Any]:
    """Compute features, cross-validate, fit and write the coefficients file.

    With ``repeats`` above 1 the CV is repeated over that many distinct fold
    assignments (``seed``'s first) and their spread is written beside ``seed``'s figures.
    """
    from sleuth.evaluation.features import collect_features
    from sleuth.evaluation.training import (
        TrainingData,
        coefficients_document,
        fit_fusion,
        repeated_cross_validate,
        scores_by_track,
        spread_by_track,
        write_coefficients,
    )

    samples = read_source(source)
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("features", total=len(samples))
        rows = collect_features(
            samples, jobs=jobs, cache=cache, progress=lambda n: bar.update(task, completed=n)
        )
    for row in rows:
        if row.error:
            console.print(f"skipped {row.key} ({row.track}): {row.error}")
    data = TrainingData.from_rows(rows, select_features(features))
    runs = repeated_cross_validate(
        data, repeats=max(repeats, 1), c=c, seed=seed, calibration=calibration
    )
    cv = scores_by_track(data, runs[0][1])
    spread = spread_by_track(data, runs) if repeats > 1 else None
    fitted = fit_fusion(data, c=c, seed=seed, calibration=calibration)
    console.print(f"calibration: {fitted.calibration}")
    document = coefficients_document(
        fitted,
        version=version,
        cv=cv,
        n_images=len(samples),
        n_groups=len(set(data.groups)),
        c=c,
        seed=seed,
        cv_repeated=spread,
    )
    write_coefficients(document, out)
    return document


def _analyse_all(
    samples: list[Sample], tracks: Sequence[str], backend: str, jobs: int
) -> Iterator[dict[str, Any]]:
    jobs_list = [(s, t) for s in samples for t in tracks]
    if jobs <= 1:
        analysis.open_session(backend)
        try:
            yield from (analysis.analyse(s, t) for s, t in jobs_list)
        finally:
            analysis.close_session()
        return
    with ProcessPoolExecutor(jobs, initializer=analysis.open_session, initargs=(backend,)) as pool:
        yield from pool.map(
            analysis.analyse, [s for s, _ in jobs_list], [t for _, t in jobs_list], chunksize=2
        )


def run_evaluation(
    source: Path,
    *,
    tracks: Sequence[str],
    backend: str,
    jobs: int,
    out: Path,
    localisation: int,
    limit: int,
    console: Console,
) -> list[str]:
    """Analyse every image on every track, then write results.jsonl and report.html.

    Returns
    -------
    list of str
        Summary lines (one per track and method) for the terminal.
    """
    from sleuth.evaluation.report import summarise, write_report

    samples = read_source(source)[: limit or None]
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    rows = []
    with (
        Progress(console=console, transient=True) as bar,
        open(out / "results.jsonl", "w", encoding="utf-8") as fh,
    ):
        task = bar.add_task("analysing", total=len(samples) * len(tracks))
        for row in _analyse_all(samples, tracks, backend, jobs):
            rows.append(row)
            fh.write(json.dumps(row) + "\n")
            bar.advance(task)
    seconds = time.perf_counter() - start
    loc = None
    if localisation:
        from sleuth.evaluation.localisation import evaluate_localisation

        loc = evaluate_localisation(samples, count=localisation, jobs=jobs)
    summary = summarise(rows, tracks)
    write_report(out, rows, summary, localisation=loc, seconds=seconds, source=source.name)
    lines = [f"{len(rows)} analyses in {seconds:.0f} s"]
    for track, methods in summary["methods"].items():
        for method, s in methods.items():
            lines.append(
                f"{track:9s} {method:18s} AUROC {_f(s['auroc'])}  ECE {_f(s['ece'])} "
                f"(floor {_f(s['ece_floor'])})  accuracy {_f(s['accuracy'])}  "
                f"abstain {_f(s['abstain_rate'])}"
            )
    for track, s in summary.get("cv", {}).items():
        lines.append(
            f"{track:9s} {'grouped CV fusion':18s} AUROC {_f(s['auroc'])}  ECE {_f(s['ece'])} "
            f"(floor {_f(s['ece_floor'])})"
        )
    for track, s in summary.get("cv_repeated", {}).items():
        lines.append(f"{track:9s} {'grouped CV fusion':18s} {spread_text(s)}")
    if loc is not None:
        lines.append(
            f"localisation: {loc['n']} composites, mean best IoU {_f(loc['mean_iou'])}, "
            f"hit rate (IoU >= 0.5) {_f(loc['hit_rate'])}"
        )
    return lines


def spread_text(spread: dict[str, Any]) -> str:
    """One line for a track's repeated-CV spread (see ``spread_by_track``)."""
    auroc, ece = spread["auroc"], spread["ece"]
    return (
        f"over {len(spread['seeds'])} fold assignments: "
        f"AUROC {_f(auroc['mean'])} ({_f(auroc['min'])}-{_f(auroc['max'])})  "
        f"ECE {_f(ece['mean'])} ({_f(ece['min'])}-{_f(ece['max'])})"
    )


def _f(value: float) -> str:
    return "  n/a" if value is None or math.isnan(value) else f"{value:.3f}"
