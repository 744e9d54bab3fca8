"""Where a server's images come from: a file under an allowed folder, base64, or a URL.

Everything here treats the caller as untrusted. Paths are resolved (symlinks included),
must stay under an allowed root, and are then opened from the root without following links
(no check-then-read race); base64 has a size cap; URLs are refused unless enabled, and then
only http(s) to public addresses, with a size cap and one deadline for the whole download,
every redirect checked again. Every refusal is one line naming the input.
"""

from __future__ import annotations

import base64
import binascii
import errno
import ipaddress
import os
import socket
import stat
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sleuth.servers.mcp.deadline import Deadline
from sleuth.tools import SleuthError

MAX_REDIRECTS = 3
MAX_PATH_CHARS = 4096


class InputRefused(SleuthError, ValueError):
    """An image source the server will not read (outside the roots, too big, a private URL)."""


@dataclass(frozen=True, kw_only=True)
class InputPolicy:
    """What a server may read.

    Attributes
    ----------
    allow_dirs : tuple of Path
        Roots under which files may be read; none means no paths at all.
    max_file_bytes : int
        Largest file read from a root (the image loader's own byte limit).
    max_base64_bytes : int
        Largest decoded base64 image.
    allow_urls : bool
        Whether http(s) URLs may be fetched.
    url_max_bytes : int
        Largest download.
    url_timeout : float
        Seconds for the whole download.
    """

    allow_dirs: tuple[Path, ...] = ()
    max_file_bytes: int = 200 * 1024 * 1024
    max_base64_bytes: int = 20 * 1024 * 1024
    allow_urls: bool = False
    url_max_bytes: int = 20 * 1024 * 1024
    url_timeout: float = 10.0
    _roots: tuple[Path, ...] = field(init=False, repr=False, default=())

    def __post_init__(self) -> None:
        roots = tuple(Path(d).expanduser().resolve(strict=False) for d in self.allow_dirs)
        object.__setattr__(self, "_roots", roots)

    @property
    def roots(self) -> tuple[Path, ...]:
        """The allowed roots, resolved."""
        return self._roots


def read_path(text: str, policy: InputPolicy) -> bytes:
    """Read a file that resolves (symlinks followed) to a place under an allowed root.

    The resolved path is then opened without following links, one component at a time
    from the root (:func:`open_beneath`), and what was opened is read: a link swapped in
    after the check cannot lead outside.

    Raises
    ------
    InputRefused
        Without roots, for a path outside them, or for a missing, unreadable, oversized or
        non-regular file (each a one-line message naming the path).
    """
    if not policy.roots:
        raise InputRefused(
            "this server reads no files (no folder is allowed); send the image as image_base64"
        )
    if not isinstance(text, str) or not text or "\x00" in text:
        raise InputRefused("path must be a non-empty string")
    shown = repr(text) if len(text) <= 120 else f"{text[:100]!r}..."
    if len(text) > MAX_PATH_CHARS:
        raise InputRefused(f"the path {shown} is longer than {MAX_PATH_CHARS} characters")
    try:
        given = Path(text).expanduser()
    except RuntimeError:  # ~name of an unknown user, or no home directory
        raise InputRefused(f"cannot expand {shown}: no such user or home directory") from None
    candidates = [given] if given.is_absolute() else [root / given for root in policy.roots]
    for candidate in candidates:
        try:
            resolved = candidate.resolve(strict=False)
        except (OSError, RuntimeError) as err:  # a symlink loop (RuntimeError before 3.13)
            if isinstance(err, OSError) and err.errno == errno.EINVAL:  # a link, then not
                raise InputRefused(f"{shown} changed while it was resolved; refused") from None
            raise InputRefused(f"cannot resolve {shown}: {_reason(err)}") from None
        root = next((r for r in policy.roots if resolved.is_relative_to(r)), None)
        if root is not None:
            return _read_beneath(root, resolved, shown, policy)
    roots = ", ".join(str(r) for r in policy.roots)
    raise InputRefused(f"{shown} is outside the allowed folders ({roots})")


def _read_beneath(root: Path, resolved: Path, shown: str, policy: InputPolicy) -> bytes:
    try:
        fd = open_beneath(root, resolved.relative_to(root).parts)
    except OSError as err:
        if err.errno in (errno.ENOENT, errno.ENOTDIR):
            raise InputRefused(f"no file at {shown} under the allowed folders") from None
        if err.errno in (errno.ELOOP, errno.EMLINK):
            raise InputRefused(
                f"{shown} turned into a symbolic link while it was opened; refused"
            ) from None
        raise InputRefused(f"cannot read {shown}: {_reason(err)}") from None
    limit = policy.max_file_bytes
    try:
        opened = _opened_path(fd)
        if opened is not None and not any(opened.is_relative_to(r) for r in policy.roots):
            raise InputRefused(f"{shown} is outside the allowed folders (it moved); refused")
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InputRefused(f"{shown} is not a regular file")
        if info.st_size > limit:
            raise InputRefused(f"{shown} is {info.st_size} bytes; the limit is {limit}")
        with os.fdopen(fd, "rb", closefd=False) as file:
            data = file.read(limit + 1)
    except OSError as err:
        raise InputRefused(f"cannot read {shown}: {_reason(err)}") from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise InputRefused(f"{shown} is over the {limit}-byte limit")
    return data


def open_beneath(root: Path, parts: tuple[str, ...]) -> int:
    """Open ``root/parts...`` for reading without following any link below ``root``.

    Each directory is opened relative to the one before with ``O_NOFOLLOW``, so a
    component swapped for a symlink fails (``ELOOP``) instead of leading elsewhere; a FIFO
    does not block (``O_NONBLOCK``). Where the platform lacks ``dir_fd``, the path is
    opened whole and the descriptor compared with the path.

    Returns
    -------
    int
        The open file descriptor (the caller closes it).

    Raises
    ------
    OSError
        As ``os.open`` does, e.g. ``ELOOP`` for a link, ``ENOENT`` for nothing there.
    """
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
    nofollow = getattr(os, "O_NOFOLLOW", 0)
    if not nofollow or os.open not in os.supports_dir_fd:
        path = root.joinpath(*parts)
        fd = os.open(path, flags)
        if not os.path.samestat(os.fstat(fd), os.lstat(path)):
            os.close(fd)
            raise OSError(errno.ELOOP, "changed while being opened", str(path))
        return fd
    directory = getattr(os, "O_DIRECTORY", 0)
    current = os.open(root, os.O_RDONLY | directory | getattr(os, "O_CLOEXEC", 0))
    try:
        for part in parts[:-1]:
            following = os.open(part, flags | directory | nofollow, dir_fd=current)
            os.close(current)
            current = following
        return os.open(parts[-1] if parts else ".", flags | nofollow, dir_fd=current)
    finally:
        os.close(current)


def _opened_path(fd: int) -> Path | None:
    """Return the path the kernel has for an open descriptor (Linux), or None."""
    try:
        return Path(os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:
        return None


def _reason(err: BaseException) -> str:
    """Return one line for an OS error, without the path (the caller names it)."""
    if isinstance(err, OSError) and err.errno == errno.ELOOP:  # a loop, from Python 3.13
        return "a symbolic link loop"
    if isinstance(err, OSError) and err.strerror:
        return err.strerror.lower()
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    return "a symbolic link loop" if "loop" in text.lower() else text


def decode_base64(text: str, policy: InputPolicy) -> bytes:
    """Decode base64 (optionally a ``data:`` URL) within the size cap.

    Raises
    ------
    InputRefused
        For text that is not base64, or decodes to more than ``max_base64_bytes``.
    """
    if not isinstance(text, str) or not text:
        raise InputRefused("image_base64 must be a non-empty string")
    if text.startswith("data:"):
        _, _, text = text.partition(",")
    limit = policy.max_base64_bytes
    if len(text) > (limit + 2) // 3 * 4 + 4:
        raise InputRefused(f"image_base64 decodes to more than the {limit}-byte limit")
    try:
        data = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as err:
        raise InputRefused(f"image_base64 is not valid base64: {err}") from None
    if len(data) > limit:
        raise InputRefused(f"image_base64 decodes to {len(data)} bytes; the limit is {limit}")
    return data


def check_public_url(url: str) -> urllib.parse.SplitResult:
    """Refuse anything but http(s) to a host whose every address is public.

    Raises
    ------
    InputRefused
        For an invalid URL (e.g. a port above 65535), another scheme, credentials in the
        URL, or a loopback, private, link-local, reserved or multicast address (checked on
        what the name resolves to).
    """
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port  # raises for a port out of range or not a number
    except ValueError as err:
        raise InputRefused(f"{url[:80]!r} is not a valid URL: {err}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputRefused(f"only http(s) URLs with a host are fetched, not {url[:80]!r}")
    if parts.username or parts.password:
        raise InputRefused("URLs with credentials are refused")
    try:
        infos = socket.getaddrinfo(parts.hostname, port or 443, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as err:
        raise InputRefused(f"cannot resolve {parts.hostname!r}: {err}") from None
    for info in infos:
        address = _address(info[4][0])
        if not _public(address):
            raise InputRefused(
                f"{parts.hostname!r} resolves to {address}, a non-public address; refused"
            )
    return parts


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(str(text).split("%")[0])  # without an IPv6 zone


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return address.is_global and not address.is_multicast


def _check_peer(response: Any, url: str) -> None:
    """Refuse a response from a non-public address, whatever the name resolved to before.

    The connection resolves the host name again after :func:`check_public_url`; a name that
    answers with a public address first and a private one next (DNS rebinding) is caught
    here, before any of the body is read.
    """
    stream = response.extensions.get("network_stream")
    peer = stream.get_extra_info("server_addr") if stream is not None else None
    if not peer:
        raise InputRefused(f"cannot tell which address {url[:80]!r} connected to; refused")
    address = _address(peer[0])
    if not _public(address):
        raise InputRefused(f"{url[:80]!r} connected to {address}, a non-public address; refused")


def fetch_url(url: str, policy: InputPolicy) -> bytes:
    """Download an image from a public http(s) URL within the size and time caps.

    ``url_timeout`` bounds the whole download, redirects included: at the deadline the
    connection is shut down whatever it is waiting for (:class:`Deadline`), so a server
    trickling a byte at a time cannot hold it longer.

    Raises
    ------
    InputRefused
        When URLs are not enabled, for a refused target (see :func:`check_public_url`;
        the address actually connected to is checked again), an HTTP error, a download
        over ``url_max_bytes`` or one slower than ``url_timeout``.
    """
    if not policy.allow_urls:
        raise InputRefused(
            "this server does not fetch URLs; send the image as image_base64, or a path if a "
            "folder is allowed"
        )
    import httpx

    shown = repr(url[:80])
    deadline = Deadline(policy.url_timeout)
    try:
        # no proxies from the environment: the peer check needs the image host's own address
        with deadline, httpx.Client(follow_redirects=False, trust_env=False) as client:
            for _ in range(MAX_REDIRECTS + 1):
                check_public_url(url)
                shown = repr(url[:80])
                with client.stream(
                    "GET", url, timeout=deadline.remaining(), extensions=deadline.extensions
                ) as response:
                    _check_peer(response, url)
                    if response.is_redirect:
                        url = str(response.url.join(response.headers.get("location", "")))
                        continue
                    if response.status_code != 200:
                        raise InputRefused(f"{shown} answered HTTP {response.status_code}")
                    body = _read_body(response, shown, policy.url_max_bytes)
                    deadline.check()  # a body cut short by the deadline is no image
                    return body
            raise InputRefused(f"more than {MAX_REDIRECTS} redirects")
    except (httpx.HTTPError, httpx.InvalidURL, TimeoutError) as err:
        if deadline.expired:
            raise InputRefused(
                f"{shown} took longer than {policy.url_timeout:g} s to download; refused"
            ) from None
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InputRefused(f"cannot fetch {shown}: {reason}") from None


def _read_body(response: Any, shown: str, limit: int) -> bytes:
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > limit:
            raise InputRefused(f"{shown} is larger than {limit} bytes")
    return bytes(body)


def read_source(
    policy: InputPolicy,
    *,
    path: str | None = None,
    image_base64: str | None = None,
    url: str | None = None,
) -> bytes:
    """Return the bytes of exactly one given source.

    Raises
    ------
    InputRefused
        When none or several are given, or the one given is refused.
    """
    given = {k: v for k, v in (("path", path), ("image_base64", image_base64), ("url", url)) if v}
    if len(given) != 1:
        raise InputRefused(
            "give exactly one of path, image_base64 or url"
            + (f" (got {', '.join(given)})" if given else "")
        )
    if path:
        return read_path(path, policy)
    if image_base64:
        return decode_base64(image_base64, policy)
    return fetch_url(url or "", policy)
