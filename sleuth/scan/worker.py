"""Screen one image into a result row; the same function under every engine."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

import imagehash
from PIL import Image

from sleuth.agent.context import AgentContext
from sleuth.agent.screening import Screening, screen
from sleuth.agent.verdict import Evidence
from sleuth.agent.weighing import ranked
from sleuth.scan.rows import ScanRow, error_row
from sleuth.scan.sources import ImageRef, read_ref
from sleuth.tools import ImageLimits, SleuthError, ToolRegistry, load_image

TOP_EVIDENCE = 3
SUMMARY_CHARS = 160


@dataclass(frozen=True)
class WorkerConfig:
    """What every worker needs to screen images the same way (picklable)."""

    context: AgentContext
    limits: ImageLimits
    tools_enabled: tuple[str, ...] | None = None
    tools_blocked: tuple[str, ...] = ()
    tool_seconds: float = 120.0

    def registry(self) -> ToolRegistry:
        """Discover the tools this config allows."""
        return ToolRegistry.discover(
            enabled=None if self.tools_enabled is None else list(self.tools_enabled),
            blocked=list(self.tools_blocked),
            tool_seconds=self.tool_seconds,
        )


class Screener:
    """Screens images; holds the tools, so a worker builds one and keeps it."""

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.registry = config.registry()

    def __call__(self, ref: ImageRef) -> dict[str, Any]:
        """Return the result row of one image (see :meth:`row`)."""
        return self.row(ref)

    def row(self, ref: ImageRef) -> dict[str, Any]:
        """Return the result row of one image (an error row when it cannot be screened)."""
        start = time.perf_counter()
        try:
            data = read_ref(ref, self.config.limits.max_bytes)
        except OSError as err:
            return error_row(ref.path, ref.member, f"unreadable: {err}", label_true=ref.label)
        known: dict[str, Any] = {
            "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data),
            "label_true": ref.label,
        }
        try:
            image = load_image(data, limits=self.config.limits, name=ref.shown)
            found = screen(self.registry, image, self.config.context)
        except SleuthError as err:
            return error_row(ref.path, ref.member, str(err), **known)
        row = ScanRow(
            path=ref.path,
            member=ref.member,
            **known,
            format=image.format,
            width=image.width,
            height=image.height,
            route="survey",
            phash=str(imagehash.phash(Image.fromarray(image.full))),
            seconds=round(time.perf_counter() - start, 4),
            **screening_fields(found),
        )
        return row.model_dump()


def screening_fields(found: Screening) -> dict[str, Any]:
    """Return a row's verdict fields from a screening."""
    top = ranked(found.evidence, found.contributions)[:TOP_EVIDENCE]
    top = [e for e in top if abs(found.contributions.get(e.id, 0.0)) > 0] or top[:1]
    return {
        "label": found.label,
        "p_ai": found.p_ai,
        "stable": None if found.stability is None else found.stability.stable,
        "evidence_ids": [e.id for e in top],
        "evidence": [_line(e, found.contributions.get(e.id)) for e in top],
        "failed_tools": sorted(found.failed),
        **provenance_fields(found.evidence),
    }


def provenance_fields(evidence: list[Evidence]) -> dict[str, str | None]:
    """Return what the file declares about its origin: C2PA signer and state, generator."""
    metrics: dict[str, Any] = {}
    for item in evidence:
        if item.tool == "provenance" and item.region is None:
            metrics.update(item.metrics)

    def text(*names: str) -> str | None:
        for name in names:
            value = metrics.get(name)
            if value not in (None, ""):
                return str(value)[:SUMMARY_CHARS]
        return None

    state = text("c2pa_validation_state")
    failures = text("c2pa_validation_failures")
    return {
        "c2pa_signer": text("c2pa_issuer"),
        "c2pa_state": f"{state} ({failures})" if state and failures else state,
        "declared_generator": text("generator", "c2pa_software_agents"),
        "declared_source": text("c2pa_digital_source_type", "iptc_digital_source_type"),
    }


def _line(item: Evidence, contribution: float | None) -> str:
    weight = "" if contribution is None else f" {contribution:+.2f}"
    summary = item.summary if len(item.summary) <= SUMMARY_CHARS else item.summary[:159] + "…"
    return f"{item.id} {item.tool}{weight}: {summary}"


_SCREENER: Screener | None = None


def start_worker(config: WorkerConfig) -> None:
    """Process-pool initializer: build this process's screener once."""
    global _SCREENER
    _SCREENER = Screener(config)


def screen_in_worker(ref: ImageRef) -> dict[str, Any]:
    """Process-pool task: screen one image with this process's screener."""
    if _SCREENER is None:
        raise RuntimeError("start_worker was not called in this process")
    return _SCREENER.row(ref)
