"""Rendering of tools, findings and surveys for people (rich) and programs (JSON)."""

from __future__ import annotations

import json
from typing import Any

from rich.markup import escape
from rich.table import Table

from sleuth.agent.fusion import FusionWeights
from sleuth.agent.verdict import Step, Verdict
from sleuth.agent.weighing import TOWARDS_WORDS, effects, ranked, recorded
from sleuth.tools import Calibration, Finding, LoadedImage, ToolRegistry, ToolResult
from sleuth.tools.survey import Survey

DIRECTION_STYLE = {"ai": "bold red", "real": "green", "neutral": "dim"}


def tools_table(registry: ToolRegistry) -> Table:
    """Return a table of the registered tools."""
    table = Table(title="forensic tools", show_lines=True)
    table.add_column("name", style="bold")
    table.add_column("cost")
    table.add_column("region")
    table.add_column("survey")
    table.add_column("score counts in p_ai")
    table.add_column("what it does")
    fitted = FusionWeights.load().plugins
    for spec in registry:
        table.add_row(
            spec.name,
            spec.cost,
            "yes" if spec.regional else "no",
            "yes" if spec.survey else "no",
            escape(calibration_text(spec.calibrated, fitted.get(spec.name))),
            spec.summary.split(". ")[0].rstrip(".") + ".",
        )
    return table


def calibration_text(calibrated: Calibration | None, fitted: float | None = None) -> str:
    """Say whether and how far a tool's score counts in ``p_ai`` (see ``Calibration``).

    ``fitted`` is the weight the fusion's coefficients file holds for the tool, if any.
    """
    if calibrated is None:
        return "no"
    weight = f"weight {calibrated.weight:g}" if fitted is None else f"fitted weight {fitted:.3g}"
    return f"calibrated: {weight}, at most ±{calibrated.cap:g} log-odds (on: {calibrated.on})"


def findings_table(findings: list[Finding], *, title: str) -> Table:
    """Return a table with one row per finding."""
    table = Table(title=title, show_lines=True)
    table.add_column("tool", style="bold")
    table.add_column("tool's own score", justify="right")
    table.add_column("tool's own reading")
    table.add_column("finding")
    table.add_column("boxes")
    for f in findings:
        text = escape(f.summary)
        if f.caveats:
            text += "\n[dim]caveat: " + escape("; ".join(f.caveats)) + "[/dim]"
        table.add_row(
            f.tool,
            "-" if f.score is None else f"{f.score:.2f}",
            f"[{DIRECTION_STYLE[f.direction]}]{f.direction}[/]",
            text,
            "\n".join(",".join(map(str, b.as_tuple())) for b in f.boxes),
        )
    return table


def tool_result_json(result: ToolResult) -> str:
    """Return the result as JSON (artifacts by name and path, never pixels)."""
    return result.model_dump_json()


def survey_json(image: LoadedImage, survey: Survey) -> str:
    """Return a survey as JSON: image identity, per-tool results, candidate regions."""
    payload = {
        "image": {
            "sha256": image.sha256,
            "format": image.format,
            "width": image.size[0],
            "height": image.size[1],
            "notes": list(image.notes),
        },
        "results": {name: r.model_dump(mode="json") for name, r in survey.results.items()},
        "candidates": [
            {"box": c.box.model_dump(), "score": round(c.score, 4)} for c in survey.candidates
        ],
        "seconds": {k: round(v, 4) for k, v in survey.seconds.items()},
    }
    return json.dumps(payload)


LABEL_STYLE = {"ai_generated": "bold red", "real": "bold green", "uncertain": "bold yellow"}


def verdict_lines(verdict: Verdict) -> list[str]:
    """Return the verdict as rich-markup lines: label, probability, explanation, evidence."""
    band = "{:.2f}-{:.2f}".format(*verdict.abstain_band)
    backend = f"{verdict.backend.provider}:{verdict.backend.model}"
    if verdict.backend.fallback_from:
        backend += f" (fallback: {escape(verdict.backend.fallback_from)})"
    lines = [
        f"[{LABEL_STYLE[verdict.label]}]{verdict.label}[/]  p_ai = {verdict.p_ai:.2f}"
        f"  [dim](abstain band {band}; stopped: {verdict.stopped}; {backend})[/dim]",
        "",
        escape(verdict.explanation),
    ]
    lines += evidence_lines(verdict)
    if verdict.regions:
        lines += ["", "regions:"]
        lines += [f"  box {i}: {b.as_tuple()}" for i, b in enumerate(verdict.regions, start=1)]
    lines += ["", f'case {verdict.case_id}  (sleuth ask {verdict.case_id} "...")']
    return lines


EFFECT_STYLE = {"ai": "bold red", "real": "green", "none": "dim", "unknown": "yellow"}


def evidence_lines(verdict: Verdict) -> list[str]:
    """Return rich-markup lines for the evidence, largest effect on ``p_ai`` first.

    Each line names an item's effect in words (:mod:`sleuth.agent.weighing`); its
    log-odds and the tool's own score follow, dimmed, as details. Regional re-runs that
    do not move ``p_ai`` share one closing line.
    """
    weights = recorded(verdict)
    order = ranked(verdict.evidence, weights)
    if not order:
        return []
    found = effects(order, weights)
    quiet = [e.id for e in order if e.region is not None and found[e.id].towards == "none"]
    lines = ["", "evidence, by effect on p_ai:"]
    for item in order:
        effect = found[item.id]
        if item.id in quiet:
            continue
        where = f" on {list(item.region.as_tuple())}" if item.region else ""
        details = []
        if effect.contribution:
            details.append(f"log-odds {effect.contribution:+.2f}")
        if item.score is not None:
            details.append(f"tool's own score {item.score:.2f}")
        lines.append(
            f"  {item.id:<4}{escape(item.tool + where)}: "
            f"[{EFFECT_STYLE[effect.towards]}]{effect.words}[/]"
            + (f"  [dim]({'; '.join(details)})[/dim]" if details else "")
        )
    if quiet:
        lines.append(
            f"  {len(quiet)} regional re-run(s), {quiet[0]} to {quiet[-1]}: "
            f"[{EFFECT_STYLE['none']}]{TOWARDS_WORDS['none']}[/]"
        )
    return lines


def step_line(step: Step) -> str:
    """Return one step as a short rich-markup line for live progress."""
    what = step.tool or ""
    style = "red" if step.error else "dim"
    return (
        f"[{style}]{step.index:>2} {step.kind:<6} {escape(what):<11} {escape(step.result[:90])}[/]"
    )


def cases_table(rows: list[Any]) -> Table:
    """Return a table of stored cases: the id whole (to copy into ``sleuth ask``), its file.

    The backend is left to ``cases list --json`` and ``cases show``: at 80 columns the
    id, label, probability, file name and date fit.
    """
    table = Table(title="cases")
    table.add_column("case", no_wrap=True, min_width=25)
    table.add_column("label", no_wrap=True)
    table.add_column("p_ai", no_wrap=True)
    table.add_column("Qs", no_wrap=True)
    table.add_column("updated", no_wrap=True)
    table.add_column("file", overflow="fold")
    for row in rows:
        table.add_row(
            row.case_id,
            row.label or "(interrupted)",
            "-" if row.p_ai is None else f"{row.p_ai:.2f}",
            str(row.questions),
            row.updated[:10],
            escape(row.name or "-"),
        )
    return table
