"""The case store: LangGraph's checkpointer for case state, plus the files cases refer to.

Case state (messages, evidence, steps, verdict) lives in a checkpointer keyed by the case
id (the LangGraph thread id): SQLite in the user data directory by default, Postgres when
the setting is a ``postgres://`` URL. Images are kept once per sha256 beside it, and each
case's artifacts (heatmaps, crops) in a folder named after the case, so a follow-up in
a new process finds everything again.
"""

from __future__ import annotations

import os
import re
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite import SqliteSaver

from sleuth.tools import ImageLimits, LoadedImage, SleuthError, load_image

CASE_ID = re.compile(r"^[0-9a-f]{16}-[0-9a-f]{8}$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
SQLITE_WAIT = 30.0  # seconds a connection waits for another writer
ARTIFACT_FILE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,127}\.png$")


class UnknownCaseError(SleuthError, KeyError):
    """No stored case has this id (or the id is malformed)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown case"


def new_case_id(image_id: str) -> str:
    """Return a fresh case id: the image's sha256 prefix plus a random nonce."""
    return f"{image_id[:16]}-{secrets.token_hex(4)}"


def check_case_id(case_id: str) -> str:
    """Return ``case_id`` if well-formed, else raise :class:`UnknownCaseError`."""
    if not isinstance(case_id, str) or not CASE_ID.match(case_id):
        raise UnknownCaseError(
            f"{case_id!r} is not a case id (expected 16 hex digits, a dash, 8 hex digits; "
            "see `sleuth cases list`)"
        )
    return case_id


class CaseFiles:
    """Images and artifacts of cases, under one root folder.

    Parameters
    ----------
    root : Path
        Created on first write.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def save_image(self, image: LoadedImage) -> None:
        """Keep the image's bytes (once per sha256)."""
        path = self._image_path(image.sha256)
        if path.exists():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{secrets.token_hex(4)}.part")
        partial.write_bytes(image.raw)
        os.replace(partial, path)

    def load_image(self, image_id: str, limits: ImageLimits | None = None) -> LoadedImage:
        """Load a stored image by sha256.

        Raises
        ------
        UnknownCaseError
            When no image with that sha256 is stored.
        """
        if not SHA256.match(image_id or ""):
            raise UnknownCaseError(f"{image_id!r} is not an image id (a sha256 in hex)")
        path = self._image_path(image_id)
        if not path.is_file():
            raise UnknownCaseError(f"image {image_id[:16]}... is not in the case store {self.root}")
        return load_image(path.read_bytes(), limits=limits)

    def artifact_dir(self, case_id: str) -> Path:
        """Return the folder for a case's artifacts."""
        return self.root / "cases" / check_case_id(case_id)

    def artifact_path(self, case_id: str, name: str) -> Path:
        """Return the path of an artifact file of a case; reject names that could escape."""
        if not ARTIFACT_FILE.match(name):
            raise UnknownCaseError(f"{name!r} is not an artifact file name")
        return self.artifact_dir(case_id) / name

    def _image_path(self, image_id: str) -> Path:
        return self.root / "images" / image_id[:2] / f"{image_id}.img"


def is_postgres(url: str) -> bool:
    """Tell whether a case-store setting names a Postgres database."""
    return url.startswith(("postgres://", "postgresql://"))


@contextmanager
def open_checkpointer(target: str | Path) -> Iterator[BaseCheckpointSaver]:
    """Open the checkpointer for a case-store setting.

    Parameters
    ----------
    target : str or Path
        A SQLite file path, or a ``postgres://`` / ``postgresql://`` URL (needs the
        ``postgres`` extra: ``pip install 'sleuth[postgres]'``).

    Yields
    ------
    BaseCheckpointSaver
        Set up (tables created) and closed on exit.
    """
    text = str(target)
    if is_postgres(text):
        try:
            from langgraph.checkpoint.postgres import PostgresSaver
        except ImportError:
            raise SleuthError(
                "a postgres case store needs the postgres extra: pip install 'sleuth[postgres]'"
            ) from None
        with PostgresSaver.from_conn_string(text) as saver:
            saver.setup()
            yield saver
        return
    path = Path(text).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, check_same_thread=False, timeout=SQLITE_WAIT)
    try:
        _use_wal(connection)
        # WAL + NORMAL: no fsync per checkpoint; an application crash loses nothing, a power
        # cut at most the last steps (the case stays resumable from an earlier checkpoint).
        connection.execute("PRAGMA synchronous=NORMAL")
        saver = SqliteSaver(connection)
        saver.setup()
        yield saver
    finally:
        connection.close()


def _use_wal(connection: sqlite3.Connection) -> None:
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
                raise SleuthError(f"the case store could not be opened: {err}") from err
            time.sleep(0.05)
