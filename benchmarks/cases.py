"""What listing the cases costs as the store grows: checkpoints scanned against list entries.

``sleuth cases list`` reads one small ``case.json`` per case (written after every run).
Before it scanned every checkpoint of every case and kept each thread's latest. This
script fills a SQLite case store with N cases, each with a few checkpoints whose state is
the size of a real case's, and times both ways side by side:

    python benchmarks/cases.py [--cases 1000 10000] [--checkpoints 3]

The first listing of a store without entries writes them (the migration); its time is
printed too.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import time
from pathlib import Path

from langgraph.checkpoint.base import empty_checkpoint

from sleuth.agent.cases import (
    CaseFiles,
    CaseStore,
    CaseSummary,
    latest_checkpoints,
    new_case_id,
    open_checkpointer,
)

STATE_BYTES = 20_000
"""Rough size of a stored case's state (messages, evidence, steps, verdict)."""


def fill(store: CaseStore, cases: int, checkpoints: int) -> None:
    """Write ``cases`` cases of ``checkpoints`` checkpoints each, with a folder per case."""
    padding = "x" * STATE_BYTES
    for _ in range(cases):
        image_id = secrets.token_hex(32)
        case_id = new_case_id(image_id)
        config = {"configurable": {"thread_id": case_id, "checkpoint_ns": ""}}
        for step in range(checkpoints):
            checkpoint = empty_checkpoint()
            checkpoint["channel_values"] = {
                "image_id": image_id,
                "steps": [padding],
                "verdict": {"label": "uncertain", "p_ai": 0.5, "backend": None} if step else None,
            }
            config = store.checkpointer.put(config, checkpoint, {"step": step}, {})
        store.files.open_case(case_id)


def scan(store: CaseStore) -> list[CaseSummary]:
    """The former listing: every checkpoint read, each thread's latest kept."""
    return [
        CaseSummary.of(thread, item.checkpoint["channel_values"], item.checkpoint["ts"])
        for thread, item in latest_checkpoints(store.checkpointer).items()
    ]


def timed(fn, *args) -> tuple[float, int]:  # noqa: ANN001, ANN002
    start = time.perf_counter()
    rows = fn(*args)
    return time.perf_counter() - start, len(rows)


def main() -> None:
    """Print the listing times for each store size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--checkpoints", type=int, default=3)
    args = parser.parse_args()
    print(f"{'cases':>7} {'scan s':>8} {'first list s':>13} {'list s':>8} {'scan/list':>10}")
    for n in args.cases:
        with tempfile.TemporaryDirectory() as folder:
            root = Path(folder)
            with open_checkpointer(root / "cases.sqlite") as saver:
                store = CaseStore(CaseFiles(root), saver)
                fill(store, n, args.checkpoints)
                scanned, a = timed(scan, store)
                migrated, b = timed(store.summaries)
                listed, c = timed(store.summaries)
                if not a == b == c == n:
                    sys.exit(f"listed {a}, {b}, {c} cases of {n}")
                ratio = scanned / listed
                print(f"{n:>7} {scanned:>8.2f} {migrated:>13.2f} {listed:>8.2f} {ratio:>9.1f}x")


if __name__ == "__main__":
    main()
