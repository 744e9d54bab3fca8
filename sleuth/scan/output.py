"""The scan's output folder: ``rows.jsonl`` as rows come, then ``rows.parquet`` and a summary.

``rows.jsonl`` is written one flushed line per image, so it is valid at every moment (a
line cut by a crash is dropped when the folder is opened again) and a rerun resumes from
it: an image whose path already has a row with the same sha256 is skipped. At the end (also
after Ctrl-C) :meth:`ScanOutput.finish` groups near-duplicates by perceptual hash and writes
``rows.parquet`` (with the ``scan`` extra: pyarrow) and ``summary.html``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sleuth.scan.rows import FIELDS, ScanRow
from sleuth.tools import SleuthError

ROWS = "rows.jsonl"
TABLE = "rows.parquet"
SUMMARY = "summary.html"
NEAR_BITS = 8
"""Perceptual hashes at most this many bits apart (of 64) are near-duplicates."""
MAX_GROUPED = 200_000
"""Above this many rows near-duplicates are not grouped (the pairwise pass is quadratic)."""
PAIRS_AT_ONCE = 1 << 20
"""Hash pairs compared in one block: about 10 MB, whatever the number of rows (from
2,048 rows on a block is full; a smaller scan uses less, so the driver's peak memory
rises by up to that much between small and large scans, and no further)."""


class OutputError(SleuthError, OSError):
    """The output folder cannot be written or read."""


@dataclass
class Seen:
    """What earlier runs (and this one) already wrote.

    Attributes
    ----------
    paths : dict
        ``(path, member)`` to the sha256 of its row.
    first : dict of str to int
        sha256 to where, in ``rows.jsonl``, the first analysed row of those bytes starts
        (:meth:`ScanOutput.row_at` reads it): an offset, not the row, so the driver's
        memory grows by a few hundred bytes an image.
    """

    paths: dict[tuple[str, str | None], str | None] = field(default_factory=dict)
    first: dict[str, int] = field(default_factory=dict)

    def add(self, row: dict[str, Any], offset: int) -> None:
        """Remember a row written at ``offset``."""
        self.paths[(row["path"], row.get("member"))] = row.get("sha256")
        sha = row.get("sha256")
        if sha and row["route"] in ("survey", "model") and sha not in self.first:
            self.first[sha] = offset


class ScanOutput:
    """The output folder of a scan.

    Parameters
    ----------
    folder : Path
        Created if missing.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.rows_path = folder / ROWS
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self._drop_cut_line()
        except OSError as err:
            raise OutputError(f"cannot write the output folder {folder}: {err}") from None
        self._handle: Any = None

    def seen(self) -> Seen:
        """Return what the rows already written hold."""
        seen = Seen()
        for offset, row in self._rows_with_offsets():
            seen.add(row, offset)
        return seen

    def rows(self) -> Iterator[dict[str, Any]]:
        """Yield the rows written so far (lines that do not parse are skipped)."""
        for _, row in self._rows_with_offsets():
            yield row

    def row_at(self, offset: int) -> dict[str, Any]:
        """Return the row whose line starts at ``offset`` (from :meth:`append` or :meth:`seen`)."""
        with self.rows_path.open("rb") as handle:
            handle.seek(offset)
            row = _parsed(handle.readline())
        if row is None:
            raise OutputError(f"{self.rows_path} changed while the scan ran (no row at {offset})")
        return row

    def append(self, row: dict[str, Any]) -> int:
        """Write one row and flush it; return where its line starts."""
        if self._handle is None:
            self._handle = self.rows_path.open("ab")
        offset = self._handle.tell()
        self._handle.write((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))
        self._handle.flush()
        return int(offset)

    def _rows_with_offsets(self) -> Iterator[tuple[int, dict[str, Any]]]:
        if not self.rows_path.exists():
            return
        with self.rows_path.open("rb") as handle:
            offset = 0
            for line in handle:
                row = _parsed(line)
                if row is not None:
                    yield offset, row
                offset += len(line)

    def close(self) -> None:
        """Close ``rows.jsonl``."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def finish(self) -> dict[str, Any]:
        """Group near-duplicates and write ``rows.parquet`` and ``summary.html``.

        Two passes over ``rows.jsonl``, neither holding the rows: the first gathers the
        perceptual hashes and the summary's figures, the second writes the table in
        batches. Memory grows only by 16 bytes a row (the hashes).

        Returns
        -------
        dict
            ``parquet`` (its path, or None without pyarrow), ``summary`` (its path),
            ``groups`` (the number of near-duplicate groups).
        """
        from sleuth.scan.summary import Tally, write_summary

        self.close()
        tally = Tally()
        numbers: list[int] = []
        hashes: list[int] = []
        for number, row in enumerate(self.table_rows()):
            tally.add(row)
            if row.get("phash"):
                numbers.append(number)
                hashes.append(int(row["phash"], 16))
        groups = near_groups(np.array(numbers, dtype=np.int64), np.array(hashes, dtype=np.uint64))
        table = write_parquet(self.table_rows(), groups, self.folder / TABLE)
        tally.groups = groups
        summary = write_summary(tally, self.folder / SUMMARY)
        return {"parquet": table, "summary": summary, "groups": len(set(groups.values()))}

    def table_rows(self) -> Iterator[dict[str, Any]]:
        """Yield the written rows with every field of :class:`ScanRow` (invalid ones dropped)."""
        for row in self.rows():
            try:
                yield ScanRow.model_validate(row).model_dump()
            except ValueError:
                continue

    def _drop_cut_line(self) -> None:
        if not self.rows_path.exists() or self.rows_path.stat().st_size == 0:
            return
        with self.rows_path.open("rb+") as handle:
            end = handle.seek(0, os.SEEK_END)
            position = end
            while position > 0:  # back to the last newline, a block at a time
                step = min(65536, position)
                handle.seek(position - step)
                block = handle.read(step)
                cut = block.rfind(b"\n")
                if cut >= 0:
                    position = position - step + cut + 1
                    break
                position -= step
            if position < end:
                handle.truncate(position)


def _parsed(line: bytes) -> dict[str, Any] | None:
    """Return a ``rows.jsonl`` line's row, or None for a line that is not one."""
    try:
        row = json.loads(line)
    except ValueError:
        return None
    return row if isinstance(row, dict) and "path" in row and "route" in row else None


def near_groups(numbers: np.ndarray, hashes: np.ndarray) -> dict[int, int]:
    """Group rows whose perceptual hashes are at most :data:`NEAR_BITS` bits apart.

    Parameters
    ----------
    numbers : ndarray of int64
        The rows' numbers.
    hashes : ndarray of uint64
        Their 64-bit hashes.

    Returns
    -------
    dict of int to int
        Group number (from 1, in order of first row) by row number, for rows with at
        least one near-duplicate; empty above :data:`MAX_GROUPED` rows.
    """
    if len(hashes) < 2 or len(hashes) > MAX_GROUPED:
        return {}
    parent = list(range(len(hashes)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    step = max(1, PAIRS_AT_ONCE // len(hashes))  # memory: about 10 bytes a pair
    for start in range(0, len(hashes), step):
        distance = np.bitwise_count(hashes[start : start + step, None] ^ hashes[None, :])
        for a, b in zip(*np.nonzero(distance <= NEAR_BITS), strict=True):
            i, j = start + int(a), int(b)
            if i < j:
                parent[root(i)] = root(j)
    members: dict[int, list[int]] = {}
    for k in range(len(hashes)):
        members.setdefault(root(k), []).append(k)
    groups = sorted((m for m in members.values() if len(m) > 1), key=min)
    return {int(numbers[k]): number for number, group in enumerate(groups, 1) for k in group}


def write_parquet(
    rows: Iterator[dict[str, Any]], groups: dict[int, int], path: Path, batch: int = 1024
) -> Path | None:
    """Write the rows as a Parquet table with their ``near_group``, in batches.

    A batch of ``batch`` rows is held as Python dicts (a few KB each) while it is written:
    the driver's memory grows with the scan up to that many rows, then stays.

    Returns None, and writes nothing, without pyarrow.
    """
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return None
    schema = pa.schema([(name, _arrow_type(pa, name)) for name in FIELDS])
    temporary = path.with_suffix(".parquet.part")
    with pq.ParquetWriter(temporary, schema) as writer:
        chunk: list[dict[str, Any]] = []
        for number, row in enumerate(rows):
            chunk.append(row | {"near_group": groups.get(number)})
            if len(chunk) == batch:
                writer.write_table(pa.Table.from_pylist(chunk, schema=schema))
                chunk = []
        writer.write_table(pa.Table.from_pylist(chunk, schema=schema))
    temporary.replace(path)
    return path


def _arrow_type(pa: Any, name: str) -> Any:
    kind = ScanRow.model_fields[name].annotation
    text = str(kind)
    if "list" in text:
        return pa.list_(pa.string())
    if "float" in text:
        return pa.float64()
    if "bool" in text:
        return pa.bool_()
    if "int" in text:
        return pa.int64()
    return pa.string()
