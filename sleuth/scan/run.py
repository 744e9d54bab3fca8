"""A scan from sources to output: listing, duplicates, the engine, the cascade, the files.

The driver lists every source (:func:`~sleuth.scan.sources.list_source`), reads each image
once to hash it, and sends an engine only images it has not seen: an image whose path
already has a row with the same sha256 (an earlier run) is skipped, and one whose bytes were
analysed under another path gets a ``duplicate`` row that copies that verdict. With
``escalate``, an image the survey leaves ``uncertain`` goes to the configured model backend
(a vLLM server, say), whose verdict replaces the survey's (route ``model``). Rows are
appended as they come; :meth:`ScanOutput.finish` runs at the end, after Ctrl-C too.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sleuth.scan.engines import local_rows, ray_rows
from sleuth.scan.output import ScanOutput, Seen
from sleuth.scan.rows import error_row, shown
from sleuth.scan.sources import ImageRef, list_source, read_ref
from sleuth.scan.worker import WorkerConfig
from sleuth.settings import Settings
from sleuth.tools import SleuthError

Progress = Callable[[int, int, dict[str, Any] | None], None]
"""Called with (images done, images in all, the row just written or None)."""
VERDICT_FIELDS = (
    "format width height label p_ai stable evidence_ids evidence c2pa_signer c2pa_state "
    "declared_generator declared_source phash failed_tools"
).split()


@dataclass(frozen=True)
class ScanOptions:
    """How a scan runs.

    Attributes
    ----------
    sources : tuple of str
        Folders, globs, lists of paths, manifests, archives, files.
    out : Path
        The output folder (created; a rerun resumes it).
    jobs : int
        Worker processes (or Ray CPUs).
    engine : {"local", "ray"}
    address : str or None
        A Ray cluster to join (``--engine ray``).
    escalate : bool
        Send what the survey leaves uncertain to the configured model backend.
    keep_cases : bool
        Store the escalated images' cases in the configured case store.
    """

    sources: tuple[str, ...]
    out: Path
    jobs: int = 2
    engine: Literal["local", "ray"] = "local"
    address: str | None = None
    escalate: bool = False
    keep_cases: bool = False


@dataclass
class ScanReport:
    """What a scan did."""

    total: int = 0
    skipped: int = 0
    analysed: int = 0
    duplicates: int = 0
    errors: int = 0
    escalated: int = 0
    interrupted: bool = False
    outputs: dict[str, Any] = field(default_factory=dict)


def run_scan(
    options: ScanOptions, settings: Settings, progress: Progress | None = None
) -> ScanReport:
    """Scan the sources into the output folder.

    Raises
    ------
    SourceError
        For a source that cannot be listed (nothing is written then).
    KeyboardInterrupt
        After the outputs are written, when the scan was stopped.
    """
    refs = [ref for source in options.sources for ref in list_source(source)]
    output = ScanOutput(options.out)
    report = ScanReport(total=len(refs))
    scan = _Scan(options, settings, output, report, progress or (lambda *_: None))
    try:
        scan.run(refs)
    except KeyboardInterrupt:
        report.interrupted = True
        raise
    finally:
        scan.close()
        report.outputs = output.finish()
    return report


class _Scan:
    def __init__(
        self,
        options: ScanOptions,
        settings: Settings,
        output: ScanOutput,
        report: ScanReport,
        progress: Progress,
    ) -> None:
        self.options = options
        self.settings = settings
        self.output = output
        self.report = report
        self.progress = progress
        self.seen: Seen = output.seen()
        self.waiting: dict[str, list[ImageRef]] = {}
        self.done = 0
        self._escalation: Any = None
        self._throwaway: Path | None = None

    def run(self, refs: list[ImageRef]) -> None:
        config = self.settings.session_config()
        worker = WorkerConfig(
            context=config.context,
            limits=config.image_limits,
            tools_enabled=config.tools_enabled,
            tools_blocked=config.tools_blocked,
            tool_seconds=config.tool_seconds,
        )
        o = self.options
        todo = self._new_images(refs)
        if o.engine == "ray":
            rows = ray_rows(todo, worker, o.jobs, o.address)
        else:
            rows = local_rows(todo, worker, o.jobs)
        for row in rows:
            self._write(self._escalated(row))
            for ref in self.waiting.pop(row.get("sha256") or "", []):
                self._write(duplicate_row(ref, row))

    def close(self) -> None:
        for refs in self.waiting.values():  # originals that never came back
            for ref in refs:
                self._write(error_row(ref.path, ref.member, "not analysed: the scan stopped"))
        self.waiting.clear()
        if self._escalation is not None:
            self._escalation.__exit__(None, None, None)
        if self._throwaway is not None:
            shutil.rmtree(self._throwaway, ignore_errors=True)

    def _new_images(self, refs: list[ImageRef]) -> Iterator[ImageRef]:
        """Yield the images an engine must screen; write skips, duplicates and errors."""
        for ref in refs:
            try:
                sha = hashlib.sha256(read_ref(ref, self.settings.max_image_bytes)).hexdigest()
            except OSError as err:
                self._write(
                    error_row(ref.path, ref.member, f"unreadable: {err}", label_true=ref.label)
                )
                continue
            if self.seen.paths.get((ref.path, ref.member)) == sha:
                self.report.skipped += 1
                self._tick(None)
                continue
            if sha in self.seen.first:
                self._write(duplicate_row(ref, self.output.row_at(self.seen.first[sha])))
            elif sha in self.waiting:
                self.waiting[sha].append(ref)
            else:
                self.waiting[sha] = []
                yield ref

    def _escalated(self, row: dict[str, Any]) -> dict[str, Any]:
        if not (self.options.escalate and row["route"] == "survey" and row["label"] == "uncertain"):
            return row
        session = self._session()
        try:
            data = read_ref(ImageRef(row["path"], row.get("member")), self.settings.max_image_bytes)
            verdict = session.analyze(data, name=shown(row))
        except (SleuthError, OSError) as err:
            return row | {"error": f"the model backend failed, the survey's verdict stands: {err}"}
        self.report.escalated += 1
        return row | {
            "route": "model",
            "label": verdict.label,
            "p_ai": verdict.p_ai,
            "case_id": verdict.case_id if self.options.keep_cases else None,
        }

    def _session(self) -> Any:
        if self._escalation is None:
            from sleuth.agent.session import Session

            settings = self.settings
            if not self.options.keep_cases:
                self._throwaway = Path(tempfile.mkdtemp(prefix="sleuth-scan-"))
                settings = settings.model_copy(
                    update={"data_dir": self._throwaway, "case_store": None}
                )
            self._escalation = Session(settings.session_config()).__enter__()
        return self._escalation

    def _write(self, row: dict[str, Any]) -> None:
        self.seen.add(row, self.output.append(row))
        route = row["route"]
        self.report.errors += route == "error"
        self.report.duplicates += route == "duplicate"
        self.report.analysed += route in ("survey", "model")
        self._tick(row)

    def _tick(self, row: dict[str, Any] | None) -> None:
        self.done += 1
        self.progress(self.done, self.report.total, row)


def duplicate_row(ref: ImageRef, original: dict[str, Any]) -> dict[str, Any]:
    """Return the row of an image with the same bytes as ``original``'s."""
    if original["route"] == "error":
        return error_row(ref.path, ref.member, original["error"], label_true=ref.label)
    copied = {name: original.get(name) for name in VERDICT_FIELDS}
    return {
        **error_row(ref.path, ref.member, "", label_true=ref.label),
        **copied,
        "sha256": original.get("sha256"),
        "bytes": original.get("bytes"),
        "route": "duplicate",
        "duplicate_of": shown(original),
        "error": None,
        "seconds": 0.0,
    }
