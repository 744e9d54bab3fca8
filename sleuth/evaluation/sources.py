"""Evaluation sets: a folder with ``real/`` and ``fake/`` subfolders, or a manifest CSV."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from sleuth.tools import SleuthError

LABELS = ("real", "fake")
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".heic", ".heif", ".avif", ".mpo"}
)
OPTIONAL_COLUMNS = ("generator", "format", "source_repo")
"""Manifest columns used for breakdowns (and ``source_repo`` for grouped CV); never features."""


class EvalSourceError(SleuthError, ValueError):
    """The evaluation source is missing, malformed or empty."""


@dataclass(frozen=True)
class Sample:
    """One labelled image of an evaluation set.

    Attributes
    ----------
    path : Path
        The file.
    key : str
        Its name relative to the set's root (used in result rows, never as a feature).
    label : {'real', 'fake'}
    meta : dict of str to str
        Breakdown columns: ``generator``, ``format``, ``source_repo`` ("unknown" if absent).
    """

    path: Path
    key: str
    label: str
    meta: dict[str, str] = field(default_factory=dict)

    @property
    def y(self) -> int:
        """1 for fake (AI-generated), 0 for real."""
        return int(self.label == "fake")


def read_source(source: Path) -> list[Sample]:
    """Read an evaluation set from a manifest CSV or a ``real/`` + ``fake/`` folder.

    Parameters
    ----------
    source : Path
        A CSV with columns ``file,label`` (paths relative to the CSV's folder) plus
        optional ``generator``, ``format``, ``source_repo``; or a folder holding
        ``real/`` and ``fake/`` (searched recursively for image files; the top-level
        subfolder below ``real/``/``fake/`` stands in for ``source_repo``).

    Returns
    -------
    list of Sample
        In a stable order.

    Raises
    ------
    EvalSourceError
        When the source is missing, a row is malformed, or no image is found.
    """
    if source.is_file():
        samples = _read_manifest(source)
    elif source.is_dir():
        samples = _read_folder(source)
    else:
        raise EvalSourceError(f"{source} is neither a manifest CSV nor a folder")
    if not samples:
        raise EvalSourceError(f"no labelled images found in {source}")
    return samples


def read_sources(sources: Sequence[Path]) -> list[Sample]:
    """Read several evaluation sets as one (see :func:`read_source`).

    Keys are prefixed with the set's folder name when more than one set is given, so
    that they stay unique; a file listed twice (same resolved path) is kept once.

    Raises
    ------
    EvalSourceError
        When any source is missing, malformed or empty, or none is given.
    """
    if not sources:
        raise EvalSourceError("no evaluation source given")
    if len(sources) == 1:
        return read_source(sources[0])
    samples: list[Sample] = []
    seen: set[Path] = set()
    for source in sources:
        prefix = (source.parent if source.is_file() else source).name
        for sample in read_source(source):
            resolved = sample.path.resolve()
            if resolved in seen:
                continue
            seen.add(resolved)
            samples.append(replace(sample, key=f"{prefix}/{sample.key}"))
    return samples


def _read_manifest(path: Path) -> list[Sample]:
    root = path.parent
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = {"file", "label"} - set(reader.fieldnames or ())
        if missing:
            raise EvalSourceError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
        samples = []
        for line, row in enumerate(reader, start=2):
            label = (row.get("label") or "").strip().lower()
            if label not in LABELS:
                raise EvalSourceError(f"{path}:{line}: label must be real or fake, not {label!r}")
            name = (row.get("file") or "").strip()
            if not name:
                raise EvalSourceError(f"{path}:{line}: empty file name")
            meta = {c: (row.get(c) or "").strip() or "unknown" for c in OPTIONAL_COLUMNS}
            if meta["format"] == "unknown":
                meta["format"] = _suffix_format(name)
            samples.append(Sample(path=root / name, key=name, label=label, meta=meta))
    return samples


def _read_folder(root: Path) -> list[Sample]:
    if not any((root / label).is_dir() for label in LABELS):
        raise EvalSourceError(f"{root} has neither a real/ nor a fake/ subfolder")
    samples = []
    for label in LABELS:
        base = root / label
        if not base.is_dir():
            continue
        for path in sorted(p for p in base.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
            rel = path.relative_to(base)
            group = rel.parts[0] if len(rel.parts) > 1 else label
            meta = {
                "generator": "unknown",
                "format": _suffix_format(path.name),
                "source_repo": group,
            }
            key = path.relative_to(root).as_posix()
            samples.append(Sample(path=path, key=key, label=label, meta=meta))
    return samples


def _suffix_format(name: str) -> str:
    suffix = Path(name).suffix.lower().lstrip(".")
    return {"jpg": "JPEG", "jpeg": "JPEG", "tif": "TIFF"}.get(suffix, suffix.upper() or "unknown")
