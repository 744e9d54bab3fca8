"""The cases: written, read and listed here only.

Case state (messages, evidence, steps, verdict) lives in a checkpointer keyed by the case
id (the LangGraph thread id): SQLite in the user data directory by default, Postgres when
the setting is a ``postgres://`` URL. Images are kept once per sha256 beside it, and each
case's artifacts (heatmaps, crops) in a folder named after the case, so a follow-up in
a new process finds everything again. Each case folder also holds ``case.json``, the
case's line in the case list, rewritten after every run: listing reads those small files
instead of every checkpoint. Folders sleuth creates are private (0700), files too (0600).
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, cast

from langgraph.checkpoint.base import BaseCheckpointSaver, CheckpointTuple
from pydantic import BaseModel, ConfigDict, ValidationError

from sleuth.agent.state import CaseState
from sleuth.agent.verdict import Answer, Case
from sleuth.agent.view import CaseView
from sleuth.tools import ImageLimits, LoadedImage, SleuthError, load_image

logger = logging.getLogger(__name__)

CASE_ID = re.compile(r"^[0-9a-f]{16}-[0-9a-f]{8}\Z")
SHA256 = re.compile(r"^[0-9a-f]{64}\Z")
ARTIFACT_FILE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,127}\.png\Z")
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
IMAGE_SUFFIX = ".img"
SUMMARY_FILE = "case.json"


class UnknownCaseError(SleuthError, KeyError):
    """No stored case has this id (or the id is malformed)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown case"


class CaseStoreError(SleuthError, RuntimeError):
    """The case store cannot be used: unreadable, full, or over its quota.

    The message names the file or setting and says what to do.
    """


def new_case_id(image_id: str) -> str:
    """Return a fresh case id: the image's sha256 prefix plus a random nonce."""
    return f"{image_id[:16]}-{secrets.token_hex(4)}"


def check_case_id(case_id: str) -> str:
    """Return ``case_id`` if well-formed, else raise :class:`UnknownCaseError`."""
    if not isinstance(case_id, str) or not CASE_ID.match(case_id):
        raise UnknownCaseError(
            f"{case_id!r} is not a case id (expected 16 hex digits, a dash, 8 hex digits; "
            "as analyze returns it)"
        )
    return case_id


def private_dir(path: Path) -> Path:
    """Create ``path`` and any missing parents as private folders (0700); return it."""
    path = Path(path)
    if not path.is_dir():
        if not path.parent.is_dir():
            private_dir(path.parent)
        try:
            os.mkdir(path, PRIVATE_DIR)
        except FileExistsError:
            pass
    return path


def tighten(path: Path, mode: int) -> None:
    """Set ``mode`` on an existing file or folder of ours that is open to others."""
    try:
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            path.chmod(mode)
    except OSError:  # missing, or someone else's: leave it
        pass


class CaseFiles:
    """Images and artifacts of cases, under one root folder.

    Parameters
    ----------
    root : Path
        Created (0700) on first write.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @property
    def images_dir(self) -> Path:
        """The folder of stored images (``images/<2 hex>/<sha256>.img``)."""
        return self.root / "images"

    @property
    def cases_dir(self) -> Path:
        """The folder of the cases' artifact folders."""
        return self.root / "cases"

    def save_image(self, image: LoadedImage) -> None:
        """Keep the image's bytes (once per sha256); an image already kept is marked used."""
        path = self.image_path(image.sha256)
        try:
            os.utime(path)  # in use again: retention spares recently used files
            return
        except FileNotFoundError:
            pass
        private_dir(path.parent)
        partial = path.with_suffix(f".{secrets.token_hex(4)}.part")
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
        with os.fdopen(descriptor, "wb") as out:
            out.write(image.raw)
        os.replace(partial, path)

    def has_image(self, image_id: str) -> bool:
        """Tell whether an image with this sha256 is stored."""
        return bool(SHA256.match(image_id or "")) and self.image_path(image_id).is_file()

    def load_image(self, image_id: str, limits: ImageLimits | None = None) -> LoadedImage:
        """Load a stored image by sha256.

        Raises
        ------
        UnknownCaseError
            When no image with that sha256 is stored.
        """
        if not SHA256.match(image_id or ""):
            raise UnknownCaseError(f"{image_id!r} is not an image id (a sha256 in hex)")
        path = self.image_path(image_id)
        if not path.is_file():
            raise UnknownCaseError(f"image {image_id[:16]}... is not in the case store {self.root}")
        return load_image(path.read_bytes(), limits=limits)

    def image_path(self, image_id: str) -> Path:
        """Return where the image with this sha256 is (or would be) kept."""
        return self.images_dir / image_id[:2] / f"{image_id}{IMAGE_SUFFIX}"

    def artifact_dir(self, case_id: str) -> Path:
        """Return the folder for a case's artifacts."""
        return self.cases_dir / check_case_id(case_id)

    def artifact_path(self, case_id: str, name: str) -> Path:
        """Return the path of an artifact file of a case; reject names that could escape."""
        if not ARTIFACT_FILE.match(name):
            raise UnknownCaseError(f"{name!r} is not an artifact file name")
        return self.artifact_dir(case_id) / name

    def open_case(self, case_id: str) -> None:
        """Create a case's artifact folder (0700) and mark the case as in use now."""
        folder = private_dir(self.artifact_dir(case_id))
        os.utime(folder)

    def seal_case(self, case_id: str) -> None:
        """Make every artifact file of a case private (0600) once a run has written them."""
        for path in entries(self.artifact_dir(case_id), "file"):
            tighten(path, PRIVATE_FILE)

    def tighten(self) -> None:
        """Make the image and artifact folders private, also when made by an older sleuth."""
        for folder in (self.images_dir, self.cases_dir):
            tighten(folder, PRIVATE_DIR)

    def remove_case(self, case_id: str) -> None:
        """Delete a case's artifact folder (nothing else)."""
        shutil.rmtree(self.artifact_dir(case_id), ignore_errors=True)

    def remove_image(self, image_id: str) -> None:
        """Delete a stored image (callers check that no case refers to it)."""
        self.image_path(image_id).unlink(missing_ok=True)


def folder_bytes(path: Path) -> int:
    """Return the bytes of the files directly inside ``path`` (0 when it is missing)."""
    total = 0
    for entry in entries(path, "file"):
        try:
            total += entry.stat().st_size
        except OSError:  # removed meanwhile
            pass
    return total


def entries(path: Path, kind: Literal["file", "dir"] | None = None) -> list[Path]:
    """Return what is directly inside ``path``; nothing when it is missing or unreadable.

    ``kind`` keeps only files or only folders (symlinks not followed).
    """
    try:
        found = list(os.scandir(path))
    except OSError:
        return []
    if kind == "file":
        found = [e for e in found if e.is_file(follow_symlinks=False)]
    elif kind == "dir":
        found = [e for e in found if e.is_dir(follow_symlinks=False)]
    return [Path(e.path) for e in found]


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

    Raises
    ------
    CaseStoreError
        When the SQLite file is not a database, is damaged, or cannot be read or written,
        also while it is in use: one line naming the file and what to do.
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
    from sleuth.agent.sqlite_store import open_sqlite

    with open_sqlite(Path(text).expanduser()) as saver:
        yield saver


def latest_checkpoints(checkpointer: BaseCheckpointSaver) -> dict[str, CheckpointTuple]:
    """Return the latest top-level checkpoint of every thread (case) in the store."""
    latest: dict[str, Any] = {}
    for item in checkpointer.list(None):
        thread = item.config["configurable"].get("thread_id")
        if thread and item.config["configurable"].get("checkpoint_ns", "") == "":
            if thread not in latest or item.checkpoint["ts"] > latest[thread].checkpoint["ts"]:
                latest[thread] = item
    return latest


class CaseSummary(BaseModel):
    """One row of the case list."""

    model_config = ConfigDict(extra="forbid")

    case_id: str
    image_id: str
    name: str | None = None
    label: str | None
    p_ai: float | None
    backend: str | None
    questions: int
    updated: str

    @classmethod
    def of(cls, case_id: str, values: dict[str, Any], updated: str) -> CaseSummary:
        """Summarise a case's state (its checkpoint's channel values)."""
        verdict = values.get("verdict") or {}
        backend = verdict.get("backend") or {}
        return cls(
            case_id=case_id,
            image_id=values["image_id"],
            name=values.get("name"),
            label=verdict.get("label"),
            p_ai=verdict.get("p_ai"),
            backend=f"{backend['provider']}:{backend['model']}" if backend else None,
            questions=len(values.get("answers", [])),
            updated=updated,
        )


class CaseStore:
    """The stored cases: state in a LangGraph checkpointer, images and artifacts in files.

    Parameters
    ----------
    files : CaseFiles
        Images, artifact folders and each case's list entry.
    checkpointer : BaseCheckpointSaver
        Where the investigation graph keeps each case's state (thread id = case id).
    """

    def __init__(self, files: CaseFiles, checkpointer: BaseCheckpointSaver) -> None:
        self.files = files
        self.checkpointer = checkpointer

    def state(self, case_id: str) -> dict[str, Any]:
        """Return a case's latest state.

        Raises
        ------
        UnknownCaseError
            For a malformed id, or one with no case in the store.
        """
        item = self._latest(check_case_id(case_id))
        if item is None:
            raise UnknownCaseError(f"no case {case_id} in the case store")
        return dict(item.checkpoint["channel_values"])

    def case(self, case_id: str) -> Case:
        """Return a stored case: its verdict and follow-up answers."""
        state = self.state(case_id)
        view = CaseView(cast(CaseState, state))
        by_id = {e.id: e for e in view.evidence}
        answers = [
            Answer(
                question=a["question"],
                answer=a["answer"],
                evidence=[by_id[i] for i in a["evidence"] if i in by_id],
                backend=a["backend"],
                understood=a.get("understood", True),
            )
            for a in state.get("answers", [])
        ]
        return Case(
            case_id=case_id,
            image_id=state["image_id"],
            name=state.get("name"),
            status="concluded" if view.verdict else "interrupted",
            verdict=view.verdict,
            answers=answers,
        )

    def record(self, case_id: str) -> None:
        """Rewrite a case's list entry from its latest state (after every run)."""
        item = self._latest(case_id)
        if item is None:
            return
        try:
            self._write_summary(case_id, item)
        except OSError as err:  # the list entry is rebuilt from the checkpoint when read
            logger.warning("could not write the list entry of case %s: %s", case_id, err)

    def summaries(self) -> list[CaseSummary]:
        """Return every stored case's list entry, most recently updated first.

        Entries come from the case folders' ``case.json``; a case without one (stored by
        an older sleuth, or by a run killed before it ended) gets it written from its
        checkpoint, once.
        """
        rows = []
        for folder in entries(self.files.cases_dir, "dir"):
            if not CASE_ID.match(folder.name):
                continue
            summary = self._read_summary(folder) or self._summarise(folder.name)
            if summary is not None:
                rows.append(summary)
        return sorted(rows, key=lambda r: r.updated, reverse=True)

    def _latest(self, case_id: str) -> CheckpointTuple | None:
        item = self.checkpointer.get_tuple(
            {"configurable": {"thread_id": case_id, "checkpoint_ns": ""}}
        )
        if item is None or "image_id" not in item.checkpoint["channel_values"]:
            return None
        return item

    def _summarise(self, case_id: str) -> CaseSummary | None:
        item = self._latest(case_id)
        return None if item is None else self._write_summary(case_id, item)

    def _write_summary(self, case_id: str, item: CheckpointTuple) -> CaseSummary:
        summary = CaseSummary.of(case_id, item.checkpoint["channel_values"], item.checkpoint["ts"])
        folder = private_dir(self.files.artifact_dir(case_id))
        partial = folder / f".{SUMMARY_FILE}.{secrets.token_hex(4)}"
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
        with os.fdopen(descriptor, "w") as out:
            out.write(summary.model_dump_json())
        os.replace(partial, folder / SUMMARY_FILE)
        return summary

    @staticmethod
    def _read_summary(folder: Path) -> CaseSummary | None:
        try:
            return CaseSummary.model_validate(json.loads((folder / SUMMARY_FILE).read_bytes()))
        except (OSError, ValueError, ValidationError):
            return None
