"""What a scan reads: folders (recursive), globs, lists of paths, manifest CSVs, archives.

Each image is an :class:`ImageRef`: a file, or a member of a zip or tar archive. Workers
read it themselves (:func:`read_ref`), so only references travel to them.
"""

from __future__ import annotations

import csv
import glob
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sleuth.tools import SleuthError

IMAGE_SUFFIXES = frozenset(
    ".jpg .jpeg .jpe .jfif .png .apng .webp .gif .tif .tiff .bmp .heic .heif .avif .mpo".split()
)
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")
MAX_MEMBER_BYTES = 200 * 1024 * 1024
"""Largest archive member read (the image loader's default byte limit)."""


class SourceError(SleuthError, ValueError):
    """A source that cannot be listed (missing, unreadable, an unknown kind)."""


@dataclass(frozen=True, order=True)
class ImageRef:
    """One image to screen.

    Attributes
    ----------
    path : str
        The file, or the archive holding it.
    member : str or None
        The member inside the archive.
    label : str or None
        The known label, from a manifest's ``label`` column.
    """

    path: str
    member: str | None = None
    label: str | None = None

    @property
    def shown(self) -> str:
        """How rows name the image: the path, or ``archive!member``."""
        return self.path if self.member is None else f"{self.path}!{self.member}"


def is_archive(path: Path) -> bool:
    """Tell whether ``path`` names a zip or tar archive by its suffix."""
    return path.name.lower().endswith(ARCHIVE_SUFFIXES)


def is_image_name(name: str) -> bool:
    """Tell whether a file name has an image suffix."""
    return Path(name).suffix.lower() in IMAGE_SUFFIXES


def list_source(source: str) -> Iterator[ImageRef]:
    """List the images of one source, in a stable order.

    Parameters
    ----------
    source : str
        A folder (recursive), a glob pattern, a ``.txt`` file of paths (one per line,
        relative to the file), a manifest ``.csv`` (column ``file``, relative to the
        manifest; ``label`` kept when present), a zip or tar archive, one image file, or
        a URI pyarrow's filesystems read (``s3://bucket/prefix``, ``gs://...``, a file or
        a prefix, listed recursively; credentials as pyarrow finds them).

    Raises
    ------
    SourceError
        For a source that does not exist or cannot be read.
    """
    if "://" in source:
        yield from _remote(source)
        return
    if any(c in source for c in "*?["):
        matches = sorted(glob.glob(source, recursive=True))
        for match in matches:
            yield from _one_path(Path(match), top=False)
        return
    path = Path(source).expanduser()
    if not path.exists():
        raise SourceError(f"{source}: no such file or folder")
    yield from _one_path(path, top=True)


def _one_path(path: Path, *, top: bool) -> Iterator[ImageRef]:
    if path.is_dir():
        for child in sorted(p for p in path.rglob("*") if p.is_file()):
            if is_image_name(child.name):
                yield ImageRef(str(child))
            elif is_archive(child):
                yield from _archive(child)
        return
    name = path.name.lower()
    if is_archive(path):
        yield from _archive(path)
    elif top and name.endswith(".txt"):
        yield from _path_list(path)
    elif top and name.endswith(".csv"):
        yield from _manifest(path)
    elif is_image_name(name) or top:
        yield ImageRef(str(path))


def remote_filesystem(uri: str) -> tuple[Any, str]:
    """Return pyarrow's filesystem for a URI (``s3://``, ``gs://``, ``hdfs://``, ``file://``).

    Raises
    ------
    SourceError
        Without pyarrow, or for a URI pyarrow cannot open (unknown scheme, no credentials).
    """
    try:
        from pyarrow import fs
    except ImportError:
        raise SourceError(
            f"{uri}: reading URIs needs pyarrow's filesystems: pip install 'sleuth[scan]'"
        ) from None
    try:
        return fs.FileSystem.from_uri(uri)
    except (OSError, ValueError) as err:
        raise SourceError(f"{uri}: cannot open ({err})") from None


def _remote(uri: str) -> Iterator[ImageRef]:
    from pyarrow import fs

    filesystem, path = remote_filesystem(uri)
    scheme = uri.split("://", 1)[0]
    try:
        info = filesystem.get_file_info(path)
        if info.type == fs.FileType.NotFound:
            raise SourceError(f"{uri}: no such file or folder")
        if info.type == fs.FileType.File:
            found = [info]
        else:
            found = filesystem.get_file_info(fs.FileSelector(path, recursive=True))
    except OSError as err:
        raise SourceError(f"{uri}: cannot list ({err})") from None
    names = sorted(i.path for i in found if i.type == fs.FileType.File and is_image_name(i.path))
    for name in names:
        yield ImageRef(f"{scheme}://{name}")


def _path_list(path: Path) -> Iterator[ImageRef]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeError) as err:
        raise SourceError(f"{path}: cannot read the list of paths ({err})") from None
    for line in lines:
        entry = line.strip()
        if entry and not entry.startswith("#"):
            yield ImageRef(str((path.parent / entry).expanduser()))


def _manifest(path: Path) -> Iterator[ImageRef]:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeError, csv.Error) as err:
        raise SourceError(f"{path}: cannot read the manifest ({err})") from None
    if rows and "file" not in rows[0]:
        raise SourceError(f"{path}: a manifest needs a 'file' column (found {list(rows[0])})")
    for row in rows:
        label = (row.get("label") or "").strip() or None
        yield ImageRef(str(path.parent / row["file"]), label=label)


def _archive(path: Path) -> Iterator[ImageRef]:
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                names = [
                    i.filename
                    for i in archive.infolist()
                    if not i.is_dir() and is_image_name(i.filename)
                ]
        else:
            with tarfile.open(path) as archive:
                names = [
                    m.name for m in archive.getmembers() if m.isfile() and is_image_name(m.name)
                ]
    except (OSError, zipfile.BadZipFile, tarfile.TarError, EOFError) as err:
        raise SourceError(f"{path}: cannot read the archive ({err})") from None
    for name in sorted(names):
        yield ImageRef(str(path), member=name)


def read_ref(ref: ImageRef, max_bytes: int = MAX_MEMBER_BYTES) -> bytes:
    """Return the bytes of an image.

    Raises
    ------
    OSError
        When the file or member cannot be read, or is larger than ``max_bytes``.
    """
    if ref.member is None and "://" in ref.path:
        filesystem, path = remote_filesystem(ref.path)
        with filesystem.open_input_file(path) as handle:
            if handle.size() > max_bytes:
                raise OSError(f"larger than {max_bytes} bytes")
            return bytes(handle.read())
    if ref.member is None:
        path = Path(ref.path)
        if path.stat().st_size > max_bytes:
            raise OSError(f"larger than {max_bytes} bytes")
        return path.read_bytes()
    try:
        if zipfile.is_zipfile(ref.path):
            with zipfile.ZipFile(ref.path) as archive:
                if archive.getinfo(ref.member).file_size > max_bytes:
                    raise OSError(f"larger than {max_bytes} bytes")
                return archive.read(ref.member)
        with tarfile.open(ref.path) as archive:
            member = archive.getmember(ref.member)
            if member.size > max_bytes:
                raise OSError(f"larger than {max_bytes} bytes")
            handle = archive.extractfile(member)
            if handle is None:
                raise OSError("not a regular file")
            return handle.read()
    except (KeyError, zipfile.BadZipFile, tarfile.TarError, EOFError) as err:
        raise OSError(f"cannot read the archive member: {err}") from None
