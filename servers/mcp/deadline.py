"""One deadline for a whole download, however slowly the peer sends.

httpx's timeouts apply to each read, so a server sending a byte every few seconds can hold
a download for ever; :class:`Deadline` shuts the connection down when the time is up.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any


class Deadline:
    """One deadline for a whole download, enforced on the sockets it opens.

    Pass :attr:`extensions` to each httpx request: every new connection is noted (a
    duplicate of its socket), and when the time is up a timer shuts them all down, which
    wakes any read in progress, however slowly the peer sends.

    Parameters
    ----------
    seconds : float
        Time allowed from entering the ``with`` block.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._end = 0.0
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> Deadline:
        self._end = time.monotonic() + self.seconds
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        with self._lock:
            for sock in self._sockets:
                sock.close()
            self._sockets.clear()

    @property
    def extensions(self) -> dict[str, Any]:
        """Return the request extensions (for httpx) reporting new connections here."""
        return {"trace": self._trace}

    def remaining(self) -> float:
        """Return the seconds left.

        Raises
        ------
        TimeoutError
            When none are.
        """
        left = self._end - time.monotonic()
        if left <= 0:
            self.expired = True
            raise TimeoutError("the deadline passed")
        return left

    def check(self) -> None:
        """Raise ``TimeoutError`` if the deadline has passed."""
        if self.expired:
            raise TimeoutError("the deadline passed")
        self.remaining()

    def _trace(self, event: str, info: dict[str, Any]) -> None:
        if event != "connection.connect_tcp.complete":
            return
        sock = info["return_value"].get_extra_info("socket")
        if sock is None:
            return
        with self._lock:
            watched = sock.dup()  # shutdown through a duplicate reaches the same connection
            self._sockets.append(watched)
            if self.expired:
                _shut(watched)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shut(sock)


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed by the peer
