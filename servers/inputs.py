"""Where a server's images come from: a file under an allowed folder, base64, or a URL.

Everything here treats the caller as untrusted. Paths are resolved (symlinks included)
and must stay under an allowed root; base64 has a size cap; URLs are refused unless
enabled, and then only http(s) to public addresses, with size and time caps, every
redirect checked again.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import socket
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sleuth.tools import SleuthError

MAX_REDIRECTS = 3


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

    Raises
    ------
    InputRefused
        Without roots, for a path outside them, or for a missing or unreadable file.
    """
    if not policy.roots:
        raise InputRefused(
            "this server reads no files (start it with --allow-dir DIR); send image_base64"
        )
    if not isinstance(text, str) or not text or "\x00" in text:
        raise InputRefused("path must be a non-empty string")
    given = Path(text).expanduser()
    candidates = [given] if given.is_absolute() else [root / given for root in policy.roots]
    for candidate in candidates:
        resolved = candidate.resolve(strict=False)
        if any(resolved.is_relative_to(root) for root in policy.roots):
            if not resolved.is_file():
                raise InputRefused(f"no file at {text!r} under the allowed folders")
            size = resolved.stat().st_size
            if size > policy.max_file_bytes:
                raise InputRefused(
                    f"{text!r} is {size} bytes; the limit is {policy.max_file_bytes}"
                )
            return resolved.read_bytes()
    roots = ", ".join(str(r) for r in policy.roots)
    raise InputRefused(f"{text!r} is outside the allowed folders ({roots})")


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
        For another scheme, credentials in the URL, or a loopback, private, link-local,
        reserved or multicast address (checked on what the name resolves to).
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputRefused(f"only http(s) URLs with a host are fetched, not {url[:80]!r}")
    if parts.username or parts.password:
        raise InputRefused("URLs with credentials are refused")
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
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

    Raises
    ------
    InputRefused
        When URLs are not enabled, for a refused target (see :func:`check_public_url`;
        the address actually connected to is checked again), an HTTP error, a download
        over ``url_max_bytes`` or one slower than ``url_timeout``.
    """
    if not policy.allow_urls:
        raise InputRefused("this server does not fetch URLs (start it with --allow-urls)")
    import httpx

    limit = policy.url_max_bytes
    try:
        # no proxies from the environment: the peer check needs the image host's own address
        with httpx.Client(
            timeout=policy.url_timeout, follow_redirects=False, trust_env=False
        ) as client:
            for _ in range(MAX_REDIRECTS + 1):
                check_public_url(url)
                with client.stream("GET", url) as response:
                    _check_peer(response, url)
                    if response.is_redirect:
                        url = str(response.url.join(response.headers.get("location", "")))
                        continue
                    if response.status_code != 200:
                        raise InputRefused(f"{url[:80]!r} answered HTTP {response.status_code}")
                    body = bytearray()
                    for chunk in response.iter_bytes():
                        body += chunk
                        if len(body) > limit:
                            raise InputRefused(f"{url[:80]!r} is larger than {limit} bytes")
                    return bytes(body)
            raise InputRefused(f"more than {MAX_REDIRECTS} redirects")
    except httpx.HTTPError as err:
        raise InputRefused(f"cannot fetch {url[:80]!r}: {err}") from None


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
