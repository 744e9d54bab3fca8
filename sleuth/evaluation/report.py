"""The evaluation report: figures per track and method, breakdowns, plots, one HTML page."""

from __future__ import annotations

import html
import json
import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from sleuth.evaluation.metrics import confidently_wrong, reliability, risk_coverage, score

BREAKDOWNS = ("generator", "format", "source_repo")
ANALYST = "analyst"
"""The method name of a run's only backend; with several, each is ``analyst (BACKEND)``."""
BASELINES = {"metadata rule": "metadata_rule", "spectral detector": "spectral"}
"""Baselines computed once from the survey's evidence: the result-row column of each one's
p_ai."""

Series = dict[str, tuple[list[dict[str, Any]], str]]
"""Method name to its rows and the column holding its p_ai."""


def backends_of(rows: Sequence[dict[str, Any]]) -> list[str | None]:
    """Return the backends named by ``rows``, in order of first appearance.

    Rows written before results named their backend give ``None``.
    """
    return list(dict.fromkeys(r.get("backend") for r in rows))


def analyst_names(rows: Sequence[dict[str, Any]]) -> dict[str, str | None]:
    """Return each backend's method name: ``analyst`` alone, ``analyst (BACKEND)`` for several."""
    backends = backends_of(rows)
    if len(backends) == 1:
        return {ANALYST: backends[0]}
    return {f"{ANALYST} ({b})": b for b in backends}


def baseline_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return one good row per image and track: the first backend's that analysed it.

    The baselines and the fusion's features come from the survey, which every backend
    runs alike, so they are scored once on these rows.
    """
    first: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        if "error" not in r:
            first.setdefault((r["file"], r["track"]), r)
    return list(first.values())


def method_series(rows: Sequence[dict[str, Any]]) -> Series:
    """Return every method's good rows and p_ai column: one per backend, then the baselines."""
    good = [r for r in rows if "error" not in r]
    series: Series = {
        name: ([r for r in good if r.get("backend") == backend], "p_ai")
        for name, backend in analyst_names(rows).items()
    }
    base = baseline_rows(good)
    series.update({name: (base, column) for name, column in BASELINES.items()})
    return series


def summarise(rows: Sequence[dict[str, Any]], tracks: Sequence[str]) -> dict[str, Any]:
    """Return figures per track and method, breakdowns, errors and leave-one-source-out figures.

    With several backends (the rows' ``backend``), each is a method of its own, scored on
    its own rows and broken down per source, generator and format; the baselines and the
    leave-one-source-out refit are computed once.
    """
    series = method_series(rows)
    names = analyst_names(rows)
    methods: dict[str, dict[str, Any]] = {}
    breakdowns: dict[str, dict[str, Any]] = {}
    for track in tracks:
        methods[track] = {}
        for method, (part, column) in series.items():
            part = [r for r in part if r["track"] == track]
            methods[track][method] = asdict(
                score([r["y"] for r in part], [r[column] for r in part])
            )
        analysts = {m: [r for r in series[m][0] if r["track"] == track] for m in names}
        breakdowns[track] = {b: _breakdown(analysts, b) for b in BREAKDOWNS}
    summary: dict[str, Any] = {
        "methods": methods,
        "breakdowns": breakdowns,
        "errors": [
            {
                "file": r["file"],
                "track": r["track"],
                "backend": r.get("backend"),
                "error": r["error"],
            }
            for r in rows
            if "error" in r
        ],
        "backends": [b for b in names.values() if b is not None],
    }
    if note := _coverage_note(rows):
        summary["note"] = note
    if loso := leave_one_source_out(baseline_rows(rows)):
        summary["loso"] = loso
    return summary


def _coverage_note(rows: Sequence[dict[str, Any]]) -> str:
    """Say so when the backends were not run on the same images and tracks."""
    analysed: dict[str | None, set[tuple[str, str]]] = {}
    for r in rows:
        analysed.setdefault(r.get("backend"), set()).add((r["file"], r["track"]))
    if len({frozenset(v) for v in analysed.values()}) <= 1:
        return ""
    counts = "; ".join(f"{b}: {len(v)}" for b, v in analysed.items())
    return (
        f"The backends were not run on the same images and tracks ({counts} analyses); "
        "their figures are not directly comparable."
    )


def _breakdown(analysts: dict[str, list[dict[str, Any]]], column: str) -> list[dict[str, Any]]:
    """Return one entry per group of ``column`` (largest first) and method.

    With several methods each entry carries its ``method``; with one, none does.
    """
    groups: dict[str, dict[str, list[dict[str, Any]]]] = {}
    images: dict[str, set[str]] = {}
    for method, rows in analysts.items():
        for r in rows:
            name = str(r.get(column, "unknown"))
            groups.setdefault(name, {}).setdefault(method, []).append(r)
            images.setdefault(name, set()).add(r["file"])
    out = []
    for name in sorted(groups, key=lambda g: -len(images[g])):
        for method in analysts:
            if part := groups[name].get(method):
                entry = _group_figures(part)
                if len(analysts) > 1:
                    entry["method"] = method
                out.append({"name": name, **entry})
    return out


def _group_figures(part: list[dict[str, Any]]) -> dict[str, Any]:
    correct = [(r["p_ai"] > 0.5) == bool(r["y"]) for r in part]
    called = [r for r in part if r.get("verdict", "uncertain") != "uncertain"]
    return {
        "n": len(part),
        "fakes": sum(r["y"] for r in part),
        "accuracy": float(np.mean(correct)),
        "called": len(called),
        "accuracy_called": float(np.mean([(r["p_ai"] > 0.5) == bool(r["y"]) for r in called]))
        if called
        else math.nan,
        "confidently_wrong": confidently_wrong([r["y"] for r in part], [r["p_ai"] for r in part]),
        "mean_p_ai": float(np.mean([r["p_ai"] for r in part])),
    }


def shipped_training() -> dict[str, Any]:
    """Return the shipped coefficients file's training settings (candidates, C grid).

    Files from before the earned fusion have none; the procedure's defaults stand in.
    """
    from importlib import resources

    from sleuth.agent.fusion import DEFAULT_WEIGHTS
    from sleuth.evaluation.earned import C_GRID, ONE_SIDED, PIXEL_CANDIDATES

    text = resources.files("sleuth.agent").joinpath("weights", DEFAULT_WEIGHTS).read_text()
    training = json.loads(text).get("training", {})
    return {
        "candidates": training.get("candidates", list(PIXEL_CANDIDATES + ONE_SIDED)),
        "C_grid": training.get("C_grid", list(C_GRID)),
    }


def leave_one_source_out(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Refit the shipped fusion's procedure with each source held out, on these rows.

    Every source (``source_repo``) is predicted by the procedure of
    :func:`sleuth.evaluation.earned.fit_pixel_model`, with the shipped file's candidates
    and C grid, run on the other sources' rows (all tracks of an image stay together),
    with the provenance rules added: the honest estimate of how the fusion does on a
    source it never saw.

    Returns
    -------
    dict
        Scores per track (and ``all``); empty when scikit-learn is missing or a class
        has fewer than two sources.
    """
    try:
        from sleuth.agent.features import FEATURE_NAMES
        from sleuth.evaluation.earned import leave_one_source_out as loso
        from sleuth.evaluation.features import FeatureRow
        from sleuth.evaluation.training import TrainingData, scores_by_track
    except ImportError:
        return {}
    feature_rows = [
        FeatureRow(
            key=r["file"],
            track=r["track"],
            y=r["y"],
            group=r.get("source_repo", "?"),
            values={k: math.nan if v is None else v for k, v in r["features"].items()},
        )
        for r in rows
    ]
    data = TrainingData.from_rows(feature_rows, FEATURE_NAMES)
    for label in (0, 1):
        if len(set(data.groups[data.y == label])) < 2:
            return {}
    training = shipped_training()
    try:
        p = loso(data, candidates=training["candidates"], c_grid=training["C_grid"])
    except ImportError:
        return {}
    return {t: asdict(s) for t, s in scores_by_track(data, p).items()}


def _plots(out: Path, rows: list[dict[str, Any]], tracks: Sequence[str]) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    series = method_series(rows)
    analysts = analyst_names(rows)
    names = []
    for track in tracks:
        by_method = {m: [r for r in part if r["track"] == track] for m, (part, _) in series.items()}
        if not any(by_method.values()):
            continue
        fig, (roc, rel, risk) = plt.subplots(1, 3, figsize=(15, 4.5))
        for method, (_, column) in series.items():
            part = by_method[method]
            fpr, tpr = _roc(np.array([r["y"] for r in part]), np.array([r[column] for r in part]))
            roc.plot(fpr, tpr, label=method)
        roc.plot([0, 1], [0, 1], color="grey", lw=0.5)
        roc.set(xlabel="false positive rate", ylabel="true positive rate", title=f"ROC ({track})")
        _legend(roc, "lower right", len(analysts) > 1)
        rel.plot([0, 1], [0, 1], color="grey", lw=0.5)
        for method in analysts:
            part = by_method[method]
            bins = reliability([r["y"] for r in part], [r["p_ai"] for r in part])
            rel.plot([b[0] for b in bins], [b[1] for b in bins], "o-", label=method)
            for mean_p, share, count in bins:
                rel.annotate(str(count), (mean_p, share), fontsize=7)
        rel.set(
            xlabel="mean p_ai in bin",
            ylabel="share of fakes",
            xlim=(0, 1),
            ylim=(0, 1),
            title=f"Reliability ({track})",
        )
        if len(analysts) > 1:
            _legend(rel, "upper left", True)
        for method, (_, column) in series.items():
            part = by_method[method]
            curve = risk_coverage([r["y"] for r in part], [r[column] for r in part])
            risk.plot([c for c, _ in curve], [a for _, a in curve], label=method)
        risk.axhline(0.95, color="grey", lw=0.5)
        risk.set(
            xlabel="share of images called (most confident first)",
            ylabel="accuracy among them",
            xlim=(0, 1),
            ylim=(0.4, 1.01),
            title=f"Risk-coverage ({track})",
        )
        _legend(risk, "lower left", len(analysts) > 1)
        name = f"plots-{track}.png"
        with warnings.catch_warnings():  # long backend names may not fit; the plot still does
            warnings.simplefilter("ignore", UserWarning)
            fig.tight_layout()
        fig.savefig(out / name, dpi=90, bbox_inches="tight" if len(analysts) > 1 else None)
        plt.close(fig)
        names.append(name)
    return names


def _legend(axes: Any, loc: str, below: bool) -> None:
    """Put the legend inside the axes, or below them when several backends make it long."""
    if below:
        axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), fontsize=7)
    else:
        axes.legend(loc=loc)


def _roc(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(-p, kind="stable")
    ys = y[order]
    tpr = np.r_[0, np.cumsum(ys) / max(1, ys.sum())]
    fpr = np.r_[0, np.cumsum(1 - ys) / max(1, (1 - ys).sum())]
    return fpr, tpr


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.3f}"
    return html.escape(str(value))


def _table(head: Sequence[str], body: Sequence[Sequence[Any]]) -> str:
    cells = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    lines = "".join("<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in row) + "</tr>" for row in body)
    return f"<table><tr>{cells}</tr>{lines}</table>"


def write_report(
    out: Path,
    rows: list[dict[str, Any]],
    summary: dict[str, Any],
    *,
    localisation: dict[str, Any] | None,
    seconds: float | None,
    source: str,
) -> Path:
    """Write ``report.html`` (and its PNG plots) into ``out``; return its path.

    ``seconds`` is the run's wall time (None for a report on earlier runs' rows).
    """
    tracks = list(summary["methods"])
    several = len(summary.get("backends", ())) > 1
    took = "" if seconds is None else f" in {seconds:.0f} s"
    parts = [
        f"<h1>sleuth evaluation: {html.escape(source)}</h1>",
        f"<p>{len(rows)} analyses{took}; {len(summary['errors'])} error(s).</p>",
    ]
    if summary.get("note"):
        parts.append(f"<p><b>{html.escape(summary['note'])}</b></p>")
    parts += _methods_section(summary)
    parts += [f'<img src="{n}" alt="{n}">' for n in _plots(out, rows, tracks)]
    if localisation:
        parts += _localisation_section(localisation)
    for track in tracks:
        parts += _breakdown_sections(track, summary["breakdowns"][track], several)
    if summary["errors"]:
        head = ["file", "track", "backend", "error"] if several else ["file", "track", "error"]
        parts += [
            "<h2>Errors</h2>",
            _table(head, [[e[k] for k in head] for e in summary["errors"]]),
        ]
    style = "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}"
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>sleuth evaluation</title>"
        f"<style>{style}</style></head><body>{''.join(parts)}</body></html>"
    )
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path


METHOD_COLUMNS = (
    ("track", None),
    ("method", None),
    ("n", "n"),
    ("accuracy", "accuracy"),
    ("balanced acc.", "balanced_accuracy"),
    ("AUROC", "auroc"),
    ("ECE", "ece"),
    ("ECE floor", "ece_floor"),
    ("abstain", "abstain_rate"),
    ("acc. decided", "accuracy_decided"),
    ("confidently wrong", "confidently_wrong"),
    ("coverage at 95%", "coverage_95"),
)
BREAKDOWN_COLUMNS = (
    ("n", "n"),
    ("fakes", "fakes"),
    ("accuracy", "accuracy"),
    ("mean p_ai", "mean_p_ai"),
    ("called", "called"),
    ("acc. called", "accuracy_called"),
    ("confidently wrong", "confidently_wrong"),
)


def _methods_section(summary: dict[str, Any]) -> list[str]:
    """Return the methods table (shipped analyst, baselines, leave-one-source-out rows)."""
    scored = [(t, m, s) for t, ms in summary["methods"].items() for m, s in ms.items()]
    scored += [
        (t, "fusion, leave one source out", s)
        for t, s in summary.get("loso", {}).items()
        if t != "all"
    ]
    head = [name for name, _ in METHOD_COLUMNS] + ["TN FP FN TP"]
    body = [
        [track, method]
        + [s[key] for _, key in METHOD_COLUMNS if key is not None]
        + [" ".join(map(str, s["confusion"]))]
        for track, method, s in scored
    ]
    return [
        "<h2>Methods</h2>",
        _table(head, body),
        "<p>The analyst's figures use the shipped coefficients; when this set is the "
        "one they were fitted on, they are in-sample. The leave-one-source-out rows refit "
        "the fusion's whole procedure once per source, without it, and predict that "
        "source: the honest estimate. <i>abstain</i> is the share of images with p_ai in "
        "the abstain band, <i>acc. decided</i> the accuracy on the rest (selective "
        "accuracy); <i>confidently wrong</i> the share with p_ai >= 0.85 on a real image "
        "or <= 0.15 on an AI image; <i>coverage at 95%</i> the largest share of images "
        "that can be called, most confident first, at 95% accuracy.</p>",
    ] + (
        [
            "<p>Each backend is scored on its own verdicts (<i>analyst (BACKEND)</i>); the "
            "baselines and the leave-one-source-out rows read the survey, which every "
            "backend runs alike, and are computed once.</p>"
        ]
        if len(summary.get("backends", ())) > 1
        else []
    )


def _localisation_section(localisation: dict[str, Any]) -> list[str]:
    """Return the localisation table (IoU of proposed regions on composites)."""
    return [
        "<h2>Localisation</h2>",
        _table(
            ["composites", "kind", "mean best IoU", "mean top-1 IoU", "hit rate (IoU >= 0.5)"],
            [
                [v["n"], k, v["mean_iou"], v["mean_top1_iou"], v["hit_rate"]]
                for k, v in {"all": localisation, **localisation["by_kind"]}.items()
            ],
        ),
    ]


def _breakdown_sections(
    track: str, breakdowns: dict[str, list[dict[str, Any]]], several: bool = False
) -> list[str]:
    """Return one table per breakdown column (source, generator, format, ...) of a track.

    With ``several`` backends each group has one row per backend, after a method column.
    """
    parts = []
    for column, table in breakdowns.items():
        lead = [column, "method"] if several else [column]
        head = lead + [name for name, _ in BREAKDOWN_COLUMNS]
        body = [
            [g["name"]]
            + ([g["method"]] if several else [])
            + [g[key] for _, key in BREAKDOWN_COLUMNS]
            for g in table
        ]
        parts += [f"<h3>{html.escape(track)}: by {html.escape(column)}</h3>", _table(head, body)]
    return parts
