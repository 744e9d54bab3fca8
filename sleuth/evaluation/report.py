"""The evaluation report: figures per track and method, breakdowns, plots, one HTML page."""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from sleuth.evaluation.metrics import confidently_wrong, reliability, risk_coverage, score

BREAKDOWNS = ("generator", "format", "source_repo")
METHODS = {"analyst": "p_ai", "metadata rule": "metadata_rule", "spectral detector": "spectral"}
"""Methods compared side by side: the result-row column holding each one's p_ai."""


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
    if loso := leave_one_source_out(good):
        summary["loso"] = loso
    return summary


def _breakdown(rows: list[dict[str, Any]], column: str) -> list[dict[str, Any]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(str(r.get(column, "unknown")), []).append(r)
    out = []
    for name, part in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        correct = [(r["p_ai"] > 0.5) == bool(r["y"]) for r in part]
        called = [r for r in part if r.get("verdict", "uncertain") != "uncertain"]
        out.append(
            {
                "name": name,
                "n": len(part),
                "fakes": sum(r["y"] for r in part),
                "accuracy": float(np.mean(correct)),
                "called": len(called),
                "accuracy_called": float(
                    np.mean([(r["p_ai"] > 0.5) == bool(r["y"]) for r in called])
                )
                if called
                else math.nan,
                "confidently_wrong": confidently_wrong(
                    [r["y"] for r in part], [r["p_ai"] for r in part]
                ),
                "mean_p_ai": float(np.mean([r["p_ai"] for r in part])),
            }
        )
    return out


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
    names = []
    for track in tracks:
        part = [r for r in rows if "error" not in r and r["track"] == track]
        if not part:
            continue
        y = np.array([r["y"] for r in part])
        fig, (roc, rel, risk) = plt.subplots(1, 3, figsize=(15, 4.5))
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
        for method, column in METHODS.items():
            curve = risk_coverage(y, [r[column] for r in part])
            risk.plot([c for c, _ in curve], [a for _, a in curve], label=method)
        risk.axhline(0.95, color="grey", lw=0.5)
        risk.set(
            xlabel="share of images called (most confident first)",
            ylabel="accuracy among them",
            xlim=(0, 1),
            ylim=(0.4, 1.01),
            title=f"Risk-coverage ({track})",
        )
        risk.legend(loc="lower left")
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
    parts += _methods_section(summary)
    parts += [f'<img src="{n}" alt="{n}">' for n in _plots(out, rows, tracks)]
    if localisation:
        parts += _localisation_section(localisation)
    for track in tracks:
        parts += _breakdown_sections(track, summary["breakdowns"][track])
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
    ]


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


def _breakdown_sections(track: str, breakdowns: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Return one table per breakdown column (source, generator, format, ...) of a track."""
    parts = []
    for column, table in breakdowns.items():
        head = [column] + [name for name, _ in BREAKDOWN_COLUMNS]
        body = [[g["name"]] + [g[key] for _, key in BREAKDOWN_COLUMNS] for g in table]
        parts += [f"<h3>{html.escape(track)}: by {html.escape(column)}</h3>", _table(head, body)]
    return parts
