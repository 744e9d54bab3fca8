"""The SQLite case store: a private file, WAL mode, and one-line errors for a bad file.

A file that is not a database, is damaged or cut short, cannot be opened or written, or
fills the disk gives a :class:`CaseStoreError` naming the file and what to do, whether it
shows when the store is opened or while it is in use.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite import SqliteSaver

from sleuth.agent.cases import PRIVATE_FILE, CaseStoreError, private_dir, tighten

SQLITE_WAIT = 30.0  # seconds a connection waits for another writer
HEADER = b"SQLite format 3\x00"

# SQLite result codes (the primary code, the low byte of an extended one) and what they mean
# for the person running sleuth.
NOT_READABLE = "is not a readable SQLite database ({err}): move it aside or delete it (a new, "
NOT_READABLE += "empty store is made in its place; its cases cannot be read by sleuth)"
SQLITE_FAULTS = {
    11: NOT_READABLE,  # SQLITE_CORRUPT
    26: NOT_READABLE,  # SQLITE_NOTADB
    13: "cannot grow, the disk is full ({err}): free space or run `sleuth cases prune`",
    3: "cannot be opened ({err}): check its permissions",  # SQLITE_PERM
    8: "cannot be written ({err}): check its permissions",  # SQLITE_READONLY
    14: "cannot be opened ({err}): check the file and its folder",  # SQLITE_CANTOPEN
    10: "could not be read or written ({err}): check the disk",  # SQLITE_IOERR
}


@contextmanager
def open_sqlite(path: Path) -> Iterator[SqliteSaver]:
    """Open (creating it 0600 if new) a SQLite case store.

    Parameters
    ----------
    path : Path
        The database file; its folder is created 0700 if missing.

    Yields
    ------
    SqliteSaver
        Set up (tables created) and closed on exit.

    Raises
    ------
    CaseStoreError
        When the file is not a database, is damaged or cut short, or cannot be read or
        written, also while it is in use: one line naming the file and what to do.
    """
    try:
        new = _private_database(path)
        short = None if new else _cut_short(path)
        connection = sqlite3.connect(path, check_same_thread=False, timeout=SQLITE_WAIT)
    except (OSError, sqlite3.Error) as err:
        raise CaseStoreError(f"the case store {path} cannot be opened: {err}") from None
    if short:
        connection.close()
        raise CaseStoreError(f"the case store {path} " + NOT_READABLE.format(err=short))
    try:
        if new:  # freed pages can be given back after pruning (only before any table exists)
            connection.execute("PRAGMA auto_vacuum=INCREMENTAL")
        _use_wal(connection, path)
        # WAL + NORMAL: no fsync per checkpoint; an application crash loses nothing, a power
        # cut at most the last steps (the case stays resumable from an earlier checkpoint).
        connection.execute("PRAGMA synchronous=NORMAL")
        saver = SqliteSaver(connection)
        saver.setup()
        yield saver
    except sqlite3.DatabaseError as err:
        fault = store_error(path, err)
        if fault is None:
            raise
        raise fault from None
    finally:
        connection.close()


def store_error(path: Path, err: sqlite3.DatabaseError) -> CaseStoreError | None:
    """Return the one-line :class:`CaseStoreError` for a SQLite failure about the file.

    Damaged, not a database, unreadable or disk full; None for anything else (a bug).
    """
    code = (getattr(err, "sqlite_errorcode", None) or 0) & 0xFF
    if code not in SQLITE_FAULTS:
        return None
    return CaseStoreError(f"the case store {path} " + SQLITE_FAULTS[code].format(err=err))


def _private_database(path: Path) -> bool:
    """Create the SQLite file 0600, or tighten an existing one; tell whether it is new.

    SQLite gives its -wal and -shm files the database file's mode.
    """
    private_dir(path.parent)
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
        return True
    except FileExistsError:
        for suffix in ("", "-wal", "-shm"):
            tighten(Path(f"{path}{suffix}"), PRIVATE_FILE)
        return path.stat().st_size == 0


def _cut_short(path: Path) -> str | None:
    """Return how an existing database file lost its end, or None.

    The header records the page size and count; SQLite reads pages missing from a shorter
    file as zeros, so a cut file can pass its checks and then fail to decode. Skipped while
    the write-ahead log has content: its pages may not be in the file yet.
    """
    wal = Path(f"{path}-wal")
    if wal.is_file() and wal.stat().st_size:
        return None
    with open(path, "rb") as db:
        head = db.read(100)
    if len(head) < 100 or not head.startswith(HEADER):
        return None  # SQLite says what is wrong with these itself
    page = int.from_bytes(head[16:18], "big")
    expected = (65536 if page == 1 else page) * int.from_bytes(head[28:32], "big")
    size = path.stat().st_size
    if head[24:28] == head[92:96] and size < expected:  # the recorded count is current
        return f"cut short: {size} of {expected} bytes"
    return None


def _use_wal(connection: sqlite3.Connection, path: Path) -> None:
    """Put the database in WAL mode, waiting out other connections doing the same.

    Switching the journal mode does not wait on SQLite's busy handler: two processes
    opening a new store at once would otherwise see "database is locked" at once.
    """
    deadline = time.monotonic() + SQLITE_WAIT
    while True:
        mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
        if mode.lower() == "wal":
            return
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() > deadline:
                raise CaseStoreError(f"the case store {path} could not be opened: {err}") from err
            time.sleep(0.05)


def database_bytes(checkpointer: BaseCheckpointSaver) -> int:
    """Return the bytes a SQLite store holds in use (free pages not counted); 0 for others."""
    if not isinstance(checkpointer, SqliteSaver):
        return 0
    with checkpointer.lock:
        conn = checkpointer.conn
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
    return int((pages - free) * size)


def give_back_space(checkpointer: BaseCheckpointSaver) -> None:
    """Return a SQLite store's free pages to the file system.

    Only stores made with incremental auto-vacuum can; older files keep them for reuse.
    """
    if isinstance(checkpointer, SqliteSaver):
        with checkpointer.lock:
            checkpointer.conn.execute("PRAGMA incremental_vacuum").fetchall()
            checkpointer.conn.commit()
