"""One report from earlier ``sleuth eval`` runs: their backends side by side, nothing re-run."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sleuth.tools import SleuthError

TRACK_ORDER = ("native", "laundered", "web")
RESULTS = "results.jsonl"


class RunError(SleuthError, ValueError):
    """An earlier run cannot be read (no results.jsonl, a line that is not a result row)."""


def results_file(run: Path) -> Path:
    """Return the ``results.jsonl`` of a run: the folder's own, or the file itself."""
    path = run / RESULTS if run.is_dir() else run
    if not path.is_file():
        raise RunError(f"{run}: no {RESULTS} there; give a `sleuth eval --out` folder")
    return path


def read_run(run: Path) -> list[dict[str, Any]]:
    """Return the result rows of one earlier run.

    Raises
    ------
    RunError
        When the run has no results file or a line is not a result row.
    """
    path = results_file(run)
    rows = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise RunError(f"{path}, line {number}: not JSON ({err.msg})") from None
            if not isinstance(row, dict) or not {"file", "track", "y"} <= row.keys():
                raise RunError(f"{path}, line {number}: not a result row of sleuth eval")
            rows.append(row)
    if not rows:
        raise RunError(f"{path} holds no rows")
    return rows


def combine_runs(runs: Sequence[Path]) -> list[dict[str, Any]]:
    """Read earlier runs into one list of rows, each naming its backend uniquely.

    A row keeps the backend its run recorded; a backend found in more than one run (two
    runs of ``offline`` with different settings, say) becomes ``BACKEND, RUN``, and rows
    from before results named their backend take the run's name.

    Raises
    ------
    RunError
        For a run given twice or one that cannot be read.
    """
    seen: set[Path] = set()
    per_run: list[tuple[str, list[dict[str, Any]]]] = []
    for run in runs:
        resolved = results_file(run).resolve()
        if resolved in seen:
            raise RunError(f"{run} is given twice")
        seen.add(resolved)
        per_run.append((str(run), read_run(run)))
    found: dict[str, int] = {}
    for name, rows in per_run:
        for backend in {r.get("backend") or name for r in rows}:
            found[backend] = found.get(backend, 0) + 1
    combined = []
    for name, rows in per_run:
        for row in rows:
            backend = row.get("backend") or name
            label = f"{backend}, {name}" if found[backend] > 1 else backend
            combined.append({**row, "backend": label})
    return combined


def tracks_of(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Return the tracks present in ``rows``: native, laundered, web first, then any other."""
    present = list(dict.fromkeys(r["track"] for r in rows))
    return [t for t in TRACK_ORDER if t in present] + [t for t in present if t not in TRACK_ORDER]


def compare_runs(runs: Sequence[Path], *, out: Path) -> list[str]:
    """Write one report (and the combined rows) comparing earlier runs' backends.

    Every backend of every run is a method row (per track, source, generator and format);
    the baselines and the leave-one-source-out refit are computed once, from the first run
    that analysed each image. The localisation track is not in ``results.jsonl`` and is
    left out.

    Parameters
    ----------
    runs : sequence of Path
        ``sleuth eval --out`` folders (or their ``results.jsonl`` files).
    out : Path
        Folder for ``results.jsonl`` (the combined, relabelled rows) and ``report.html``;
        not one of ``runs``.

    Returns
    -------
    list of str
        Summary lines (one per track and method) for the terminal.

    Raises
    ------
    RunError
        For a run that cannot be read, given twice, or an ``out`` that is one of them.
    """
    from sleuth.evaluation.report import summarise, write_report
    from sleuth.evaluation.run import summary_lines

    target = (out / RESULTS).resolve()
    if any(results_file(run).resolve() == target for run in runs):
        raise RunError(f"--out {out} is one of the runs; write the comparison elsewhere")
    rows = combine_runs(runs)
    summary = summarise(rows, tracks_of(rows))
    out.mkdir(parents=True, exist_ok=True)
    with open(out / RESULTS, "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(row) + "\n" for row in rows)
    write_report(
        out, rows, summary, localisation=None, seconds=None, source=", ".join(map(str, runs))
    )
    backends = summary["backends"]
    lines = [f"{len(rows)} analyses of {len(runs)} run(s); backends: {'; '.join(backends)}"]
    if summary.get("note"):
        lines.append(summary["note"])
    return lines + summary_lines(summary)
