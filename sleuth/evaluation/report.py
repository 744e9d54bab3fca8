"""The evaluation report: figures per track and method, breakdowns, plots, one HTML page."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from sleuth.evaluation.metrics import reliability, score

BREAKDOWNS = ("generator", "format", "source_repo")
METHODS = {"analyst": "p_ai", "metadata rule": "metadata_rule", "spectral detector": "spectral"}
"""Methods compared side by side: the result-row column holding each one's p_ai."""
CV_REPEATS = 5
"""Distinct fold assignments the report repeats the grouped CV over."""


def summarise(rows: Sequence[dict[str, Any]], tracks: Sequence[str]) -> dict[str, Any]:
    """Return figures per track and method, breakdowns, errors and grouped-CV figures."""
    good = [r for r in rows if "error" not in r]
    methods: dict[str, dict[str, Any]] = {}
    breakdowns: dict[str, dict[str, Any]] = {}
    for track in tracks:
        part = [r for r in good if r["track"] == track]
        y = [r["y"] for r in part]
        methods[track] = {m: asdict(score(y, [r[c] for r in part])) for m, c in METHODS.items()}
        breakdowns[track] = {b: _breakdown(part, b) for b in BREAKDOWNS}
    summary: dict[str, Any] = {
        "methods": methods,
        "breakdowns": breakdowns,
        "errors": [
            {"file": r["file"], "track": r["track"], "error": r["error"]}
            for r in rows
            if "error" in r
        ],
    }
    cv, spread = grouped_cv(good)
    if cv:
        summary["cv"], summary["cv_repeated"] = cv, spread
    return summary


def _breakdown(rows: list[dict[str, Any]], column: str) -> list[dict[str, Any]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(str(r.get(column, "unknown")), []).append(r)
    out = []
    for name, part in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        correct = [(r["p_ai"] > 0.5) == bool(r["y"]) for r in part]
        out.append(
            {
                "name": name,
                "n": len(part),
                "fakes": sum(r["y"] for r in part),
                "accuracy": float(np.mean(correct)),
                "mean_p_ai": float(np.mean([r["p_ai"] for r in part])),
            }
        )
    return out


def grouped_cv(
    rows: Sequence[dict[str, Any]], repeats: int = CV_REPEATS
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Cross-validate the shipped model's feature set on these rows, grouped by source.

    Returns
    -------
    cv : dict
        Scores per track for the fold assignment of seed 0.
    spread : dict
        Mean and range of AUROC and ECE per track over ``repeats`` distinct fold
        assignments (see :func:`sleuth.evaluation.training.spread_by_track`).

    Both are empty when scikit-learn is missing or there are fewer than two groups per
    class.
    """
    try:
        from sleuth.agent.fusion import FusionWeights
        from sleuth.evaluation.features import FeatureRow
        from sleuth.evaluation.training import (
            TrainingData,
            repeated_cross_validate,
            scores_by_track,
            spread_by_track,
        )
    except ImportError:
        return {}, {}
    model = FusionWeights.load().model
    if model is None:
        return {}, {}
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
    data = TrainingData.from_rows(feature_rows, model.features)
    for label in (0, 1):
        if len(set(data.groups[data.y == label])) < 2:
            return {}, {}
    try:
        runs = repeated_cross_validate(data, repeats=repeats)
    except ImportError:
        return {}, {}
    cv = {t: asdict(s) for t, s in scores_by_track(data, runs[0][1]).items()}
    return cv, spread_by_track(data, runs)


def _spread_table(summary: dict[str, Any]) -> str:
    head = ["track", "fold assignments (seeds)", "AUROC mean", "range", "ECE mean", "range"]
    body = [
        [
            track,
            ", ".join(map(str, s["seeds"])),
            s["auroc"]["mean"],
            f"{s['auroc']['min']:.3f}-{s['auroc']['max']:.3f}",
            s["ece"]["mean"],
            f"{s['ece']['min']:.3f}-{s['ece']['max']:.3f}",
        ]
        for track, s in summary["cv_repeated"].items()
    ]
    return _table(head, body)


def _plots(out: Path, rows: list[dict[str, Any]], tracks: Sequence[str]) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    names = []
    for track in tracks:
        part = [r for r in rows if "error" not in r and r["track"] == track]
        if not part:
            continue
        y = np.array([r["y"] for r in part])
        fig, (roc, rel) = plt.subplots(1, 2, figsize=(10, 4.5))
        for method, column in METHODS.items():
            p = np.array([r[column] for r in part])
            fpr, tpr = _roc(y, p)
            roc.plot(fpr, tpr, label=method)
        roc.plot([0, 1], [0, 1], color="grey", lw=0.5)
        roc.set(xlabel="false positive rate", ylabel="true positive rate", title=f"ROC ({track})")
        roc.legend(loc="lower right")
        bins = reliability(y, [r["p_ai"] for r in part])
        rel.plot([0, 1], [0, 1], color="grey", lw=0.5)
        rel.plot([b[0] for b in bins], [b[1] for b in bins], "o-", label="analyst")
        for mean_p, share, count in bins:
            rel.annotate(str(count), (mean_p, share), fontsize=7)
        rel.set(
            xlabel="mean p_ai in bin",
            ylabel="share of fakes",
            xlim=(0, 1),
            ylim=(0, 1),
            title=f"Reliability ({track})",
        )
        name = f"plots-{track}.png"
        fig.tight_layout()
        fig.savefig(out / name, dpi=90)
        plt.close(fig)
        names.append(name)
    return names


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
    seconds: float,
    source: str,
) -> Path:
    """Write ``report.html`` (and its PNG plots) into ``out``; return its path."""
    tracks = list(summary["methods"])
    parts = [
        f"<h1>sleuth evaluation: {html.escape(source)}</h1>",
        f"<p>{len(rows)} analyses in {seconds:.0f} s; {len(summary['errors'])} error(s).</p>",
    ]
    head = [
        "track",
        "method",
        "n",
        "accuracy",
        "balanced acc.",
        "AUROC",
        "ECE",
        "ECE floor",
        "abstain",
        "acc. decided",
        "TN FP FN TP",
    ]
    scored = [(t, m, s) for t, ms in summary["methods"].items() for m, s in ms.items()]
    scored += [(t, "fusion, grouped CV", s) for t, s in summary.get("cv", {}).items()]
    body = [
        [
            track,
            method,
            s["n"],
            s["accuracy"],
            s["balanced_accuracy"],
            s["auroc"],
            s["ece"],
            s["ece_floor"],
            s["abstain_rate"],
            s["accuracy_decided"],
            " ".join(map(str, s["confusion"])),
        ]
        for track, method, s in scored
    ]
    parts += ["<h2>Methods</h2>", _table(head, body)]
    parts.append(
        "<p>The analyst's figures use the shipped coefficients; when this set is the "
        "one they were fitted on, they are in-sample. The grouped-CV rows refit the "
        "fusion with folds grouped by source_repo: the honest estimate.</p>"
    )
    if summary.get("cv_repeated"):
        parts += ["<h3>Grouped CV over several fold assignments</h3>", _spread_table(summary)]
    parts += [f'<img src="{n}" alt="{n}">' for n in _plots(out, rows, tracks)]
    if localisation:
        parts += [
            "<h2>Localisation</h2>",
            _table(
                ["composites", "kind", "mean best IoU", "mean top-1 IoU", "hit rate (IoU >= 0.5)"],
                [
                    [v["n"], k, v["mean_iou"], v["mean_top1_iou"], v["hit_rate"]]
                    for k, v in {"all": localisation, **localisation["by_kind"]}.items()
                ],
            ),
        ]
    for track in tracks:
        for column, table in summary["breakdowns"][track].items():
            parts += [
                f"<h3>{html.escape(track)}: by {html.escape(column)}</h3>",
                _table(
                    [column, "n", "fakes", "accuracy", "mean p_ai"],
                    [[g["name"], g["n"], g["fakes"], g["accuracy"], g["mean_p_ai"]] for g in table],
                ),
            ]
    if summary["errors"]:
        parts += [
            "<h2>Errors</h2>",
            _table(
                ["file", "track", "error"],
                [[e["file"], e["track"], e["error"]] for e in summary["errors"]],
            ),
        ]
    style = "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}"
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>sleuth evaluation</title>"
        f"<style>{style}</style></head><body>{''.join(parts)}</body></html>"
    )
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
