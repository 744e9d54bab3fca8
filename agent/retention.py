"""Retention: remove cases by age, or the least recently used ones to keep a size quota.

A case's age is the time since its last activity: its latest checkpoint, or a run starting
on it (which touches its artifact folder). Removing a case deletes its checkpoints and its
artifact folder, and its image once no remaining case refers to it. Anything used within
:data:`ACTIVE_WINDOW` is never removed to meet a quota, and files no case refers to (left by
killed runs) are removed only once they are that old: they may belong to a run in progress.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver, CheckpointTuple

from sleuth.agent.cases import (
    CASE_ID,
    IMAGE_SUFFIX,
    PRIVATE_FILE,
    CaseFiles,
    CaseStoreError,
    entries,
    folder_bytes,
    latest_checkpoints,
)
from sleuth.agent.sqlite_store import database_bytes, give_back_space

ACTIVE_WINDOW = 3600.0  # seconds: what was used this recently may be in use right now
AGE_CHECK_EVERY = 3600.0  # seconds between automatic removals by age
DAY = 86400.0
MB = 1024 * 1024
AGE_MARK = ".retention"  # in the data folder: its mtime is the last automatic removal by age

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoredCase:
    """A case as retention sees it.

    Parameters
    ----------
    case_id, image_id : str
        The case and its image's sha256.
    active : float
        Last activity, in seconds since the epoch.
    size : int
        Bytes of its artifacts plus its share of the database.
    """

    case_id: str
    image_id: str
    active: float
    size: int


@dataclass
class PruneReport:
    """What a prune removed (or, with ``dry_run``, would remove)."""

    dry_run: bool
    size_before: int
    size_after: int = 0
    cases: list[StoredCase] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    leftovers: list[Path] = field(default_factory=list)
    freed: int = 0
    in_use: int = 0  # cases kept over the size because they were used in the last hour

    def lines(self) -> list[str]:
        """Return the report as lines for a person: one per case, then the totals."""
        verb = "would remove" if self.dry_run else "removed"
        out = [
            f"{verb} case {c.case_id} (last used {_day(c.active)}, {mb(c.size)})"
            for c in self.cases
        ]
        out += [f"{verb} image {i[:16]}... (no other case uses it)" for i in self.images]
        out += [f"{verb} leftover {p.name} (of a run that never finished)" for p in self.leftovers]
        out.append(
            f"{verb} {len(self.cases)} case(s), {len(self.images)} image(s) and "
            f"{len(self.leftovers)} leftover(s): {mb(self.freed)}; the store "
            f"{'would hold' if self.dry_run else 'holds'} {mb(self.size_after)} "
            f"(was {mb(self.size_before)})"
        )
        if self.in_use:
            out.append(f"kept {self.in_use} case(s) used in the last hour over the size asked")
        return out

    def as_json(self) -> dict[str, Any]:
        """Return the report as JSON-ready data."""
        return {
            "dry_run": self.dry_run,
            "cases": [
                {
                    "case_id": c.case_id,
                    "image_id": c.image_id,
                    "last_used": _day(c.active),
                    "bytes": c.size,
                }
                for c in self.cases
            ],
            "images": self.images,
            "leftovers": [str(p) for p in self.leftovers],
            "freed_bytes": self.freed,
            "bytes_before": self.size_before,
            "bytes_after": self.size_after,
            "kept_in_use": self.in_use,
        }


def mb(size: float) -> str:
    """Format bytes for messages: KB below a megabyte, else MB."""
    return f"{size / 1024:.1f} KB" if size < MB else f"{size / MB:.1f} MB"


def store_bytes(files: CaseFiles, checkpointer: BaseCheckpointSaver) -> int:
    """Return the bytes the case store holds: images, artifacts, and SQLite pages in use."""
    return (
        _tree_bytes(files.images_dir) + _tree_bytes(files.cases_dir) + database_bytes(checkpointer)
    )


def stored_cases(
    files: CaseFiles,
    checkpointer: BaseCheckpointSaver,
    latest: dict[str, CheckpointTuple] | None = None,
) -> list[StoredCase]:
    """Return every stored case, least recently active first.

    ``latest`` is :func:`latest_checkpoints` when the caller has it already.
    """
    if latest is None:
        latest = latest_checkpoints(checkpointer)
    threads = {
        thread: item
        for thread, item in latest.items()
        if "image_id" in item.checkpoint["channel_values"] and CASE_ID.match(thread)
    }
    share = database_bytes(checkpointer) // max(len(threads), 1)
    rows = []
    for thread, item in threads.items():
        folder = files.artifact_dir(thread)
        stamp = datetime.fromisoformat(item.checkpoint["ts"]).timestamp()
        rows.append(
            StoredCase(
                case_id=thread,
                image_id=item.checkpoint["channel_values"]["image_id"],
                active=max(stamp, _mtime(folder)),
                size=folder_bytes(folder) + share,
            )
        )
    return sorted(rows, key=lambda c: c.active)


def prune(
    files: CaseFiles,
    checkpointer: BaseCheckpointSaver,
    *,
    older_than_days: float | None = None,
    max_bytes: int | None = None,
    dry_run: bool = False,
    now: float | None = None,
) -> PruneReport:
    """Remove cases older than an age, then the least recently active to fit a size.

    Parameters
    ----------
    files, checkpointer
        The case store.
    older_than_days : float, optional
        Remove every case not active for this many days.
    max_bytes : int, optional
        Then remove the least recently active cases until the store holds at most this
        many bytes; cases active within :data:`ACTIVE_WINDOW` are kept even if it does not.
    dry_run : bool
        Only report what would be removed.
    now : float, optional
        The present, in seconds since the epoch (default: the clock).

    Returns
    -------
    PruneReport
        The cases, images and leftover files removed, and the store's size before and after
        (after: estimated for a dry run).
    """
    now = time.time() if now is None else now
    idle = now - ACTIVE_WINDOW
    latest = latest_checkpoints(checkpointer)
    cases = stored_cases(files, checkpointer, latest)
    report = PruneReport(dry_run=dry_run, size_before=store_bytes(files, checkpointer))
    refs: Counter[str] = Counter(  # every thread's image, also of threads retention leaves alone
        item.checkpoint["channel_values"].get("image_id") or "" for item in latest.values()
    )
    removed: set[str] = set()
    for path in _leftovers(files, set(refs), set(latest), idle):
        report.leftovers.append(path)
        report.freed += _tree_bytes(path) if path.is_dir() else _size(path)

    def drop(case: StoredCase) -> None:
        removed.add(case.case_id)
        report.cases.append(case)
        report.freed += case.size
        refs[case.image_id] -= 1
        image = files.image_path(case.image_id)
        if refs[case.image_id] == 0 and _mtime(image) < idle:
            report.images.append(case.image_id)
            report.freed += _size(image)

    cutoff = None if older_than_days is None else now - older_than_days * DAY
    for case in cases:
        if cutoff is not None and case.active < cutoff:
            drop(case)
    for case in cases:
        if max_bytes is None or report.size_before - report.freed <= max_bytes:
            break
        if case.active >= idle:  # this and every later case are in use, or may be
            report.in_use = len(cases) - len(removed)
            break
        if case.case_id not in removed:
            drop(case)
    if dry_run:
        report.size_after = max(report.size_before - report.freed, 0)
        return report
    _apply(files, checkpointer, report, idle)
    report.size_after = store_bytes(files, checkpointer)
    return report


def make_room(
    files: CaseFiles,
    checkpointer: BaseCheckpointSaver,
    *,
    incoming: int,
    max_mb: float,
    ttl_days: float,
) -> None:
    """Apply the retention settings before a new case is stored (0 turns a limit off).

    Cases older than ``ttl_days`` are removed (checked at most once an hour); then, if the
    store plus ``incoming`` bytes would exceed ``max_mb``, the least recently active cases.

    Raises
    ------
    CaseStoreError
        When the image alone exceeds the quota, or when what remains is all in use.
    """
    if ttl_days and _age_check_due(files):
        _log(prune(files, checkpointer, older_than_days=ttl_days), "case_ttl_days")
    if not max_mb:
        return
    limit = int(max_mb * MB)
    if incoming > limit:
        raise CaseStoreError(
            f"the image ({mb(incoming)}) is larger than the case store's quota "
            f"(max_store_mb = {max_mb:g}); raise max_store_mb to analyse it"
        )
    if store_bytes(files, checkpointer) + incoming <= limit:
        return
    report = prune(files, checkpointer, max_bytes=limit - incoming)
    _log(report, "max_store_mb")
    if report.size_after + incoming > limit:
        raise CaseStoreError(
            f"the case store {files.root} is full: {mb(report.size_after)} of max_store_mb = "
            f"{max_mb:g} MB is held by cases used in the last {ACTIVE_WINDOW / 3600:g} h; "
            "raise max_store_mb or try again later"
        )


def _apply(
    files: CaseFiles, checkpointer: BaseCheckpointSaver, report: PruneReport, idle: float
) -> None:
    """Remove what a report lists: checkpoints first, so a failure leaves only leftovers."""
    for case in report.cases:
        checkpointer.delete_thread(case.case_id)
        files.remove_case(case.case_id)
    for image_id in list(report.images):
        if _mtime(files.image_path(image_id)) < idle:  # not reused since the plan
            files.remove_image(image_id)
        else:
            report.images.remove(image_id)
    for path in report.leftovers:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    if report.cases:
        give_back_space(checkpointer)


def _leftovers(files: CaseFiles, images: set[str], cases: set[str], idle: float) -> list[Path]:
    """Return image files and artifact folders no case refers to, unused since ``idle``."""
    found = []
    for folder in entries(files.images_dir):
        for path in entries(folder):
            image_id = path.name.split(".")[0]
            ours = path.name.endswith((IMAGE_SUFFIX, ".part")) and len(image_id) == 64
            if ours and image_id not in images and _mtime(path) < idle:
                found.append(path)
    for path in entries(files.cases_dir):
        if CASE_ID.match(path.name) and path.name not in cases and _mtime(path) < idle:
            found.append(path)
    return found


def _age_check_due(files: CaseFiles) -> bool:
    """Tell whether the hourly removal by age is due, and mark it done if so."""
    mark = files.root / AGE_MARK
    if time.time() - _mtime(mark) < AGE_CHECK_EVERY:
        return False
    if files.root.is_dir():
        os.close(os.open(mark, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE))
        os.utime(mark)
    return True


def _log(report: PruneReport, setting: str) -> None:
    if report.cases or report.leftovers:
        logger.info(
            "%s: removed %d case(s) and %d leftover file(s), %s freed",
            setting,
            len(report.cases),
            len(report.leftovers),
            mb(report.freed),
        )


def _day(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _tree_bytes(path: Path) -> int:
    total = 0
    for folder, _, names in os.walk(path):
        total += sum(_size(Path(folder) / name) for name in names)
    return total


def _size(path: Path) -> int:
    try:
        return path.lstat().st_size
    except OSError:
        return 0


def _mtime(path: Path) -> float:
    try:
        return path.lstat().st_mtime
    except OSError:
        return 0.0
