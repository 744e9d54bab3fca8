"""Decoding under a time budget: Pillow runs in a worker process that is killed when it overruns.

A decoder is C code that Python cannot interrupt, so the only sure bound on its cost is a
process. Each decode runs in a child of multiprocessing's *forkserver*: a small process
started once (clean, single-threaded, with this module and Pillow imported) that forks a
child per request. Forking the caller itself would be cheaper, but the caller is often a
multithreaded server, and a fork taken while another thread holds a native lock (an
OpenBLAS matrix product in another analysis, seen deadlocking) leaves the child, or the
parent's fork handlers, waiting forever. The child

* limits its own CPU time (``ITIMER_PROF``, with ``RLIMIT_CPU`` as a backstop),
* decodes, sends a small header and then the pixels through a pipe, which the parent
  reads straight into the image's array (one copy, no temporary).

The parent waits for at most the same number of seconds of wall-clock time, then kills
the child. A decoder that crashes (a signal) only kills the child. Where the forkserver
does not exist (Windows), or with a budget of 0, decoding runs in-process without a time
bound.
"""

from __future__ import annotations

import contextlib
import faulthandler
import functools
import math
import multiprocessing
import os
import signal
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from typing import Any

import numpy as np
from PIL import Image

from sleuth.tools.decode import decode_pixels
from sleuth.tools.errors import ImageLoadError
from sleuth.tools.formats import accepted_formats

Decoder = Callable[..., tuple[dict[str, Any], np.ndarray]]
"""What runs in the child: :func:`~sleuth.tools.decode.decode_pixels` (tests pass others;
it must be a module-level function, as the child imports it by name)."""


@functools.cache
def _context() -> Any:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context


def _forget_the_parents_forkserver() -> None:
    """In a child made by a plain fork, drop the parent's forkserver: start our own.

    multiprocessing keeps one forkserver per process in a module global; a child forked
    from a process that started one (a ``ProcessPoolExecutor`` worker, say) inherits its
    pid and checks it with ``waitpid``, which fails with ``ChildProcessError`` because
    the forkserver is not its child. The fields are private, so each is checked first.
    """
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    if server is None or getattr(server, "_forkserver_pid", None) is None:
        return
    alive = getattr(server, "_forkserver_alive_fd", None)
    if alive is not None:
        try:
            os.close(alive)  # our copy; the parent keeps its own
        except OSError:
            pass
    server._forkserver_alive_fd = None
    server._forkserver_pid = None
    server._forkserver_address = None
    server._lock = threading.Lock()  # another thread may have held it at the fork


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_the_parents_forkserver)


def decode_budgeted(
    raw: bytes,
    *,
    accepted: tuple[str, ...],
    max_pixels: int,
    pages: int | None,
    seconds: float,
    decoder: Decoder = decode_pixels,
) -> tuple[dict[str, Any], np.ndarray]:
    """Decode ``raw`` like :func:`~sleuth.tools.decode.decode_pixels`, within ``seconds``.

    Parameters
    ----------
    raw : bytes
        The file.
    accepted : tuple of str
        Pillow format ids to try.
    max_pixels : int
        Largest canvas.
    pages : int, optional
        Page count of a TIFF.
    seconds : float
        CPU and wall-clock budget of the decode; 0 decodes in-process, unbounded.
    decoder : callable
        The decoding function run in the worker (a module-level function).

    Returns
    -------
    header : dict
        As :func:`~sleuth.tools.decode.decode_pixels`.
    rgb : ndarray of uint8, shape (H, W, 3)
        Writable.

    Raises
    ------
    ImageLoadError
        ``too_slow`` past the budget, ``unreadable`` when the decoder crashed, and
        whatever :func:`~sleuth.tools.decode.decode_pixels` raises.
    RuntimeError
        When the worker failed for a reason that is not the file's (a bug).
    """
    kwargs = {"accepted": accepted, "max_pixels": max_pixels, "pages": pages}
    if seconds <= 0 or "forkserver" not in multiprocessing.get_all_start_methods():
        return decoder(raw, allocate=_empty, **kwargs)
    context = _context()
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(
        target=_child, args=(decoder, raw, kwargs, seconds, sender), daemon=True
    )
    try:
        with _without_main_module():
            child.start()
    except BaseException:
        receiver.close()
        sender.close()
        raise
    try:
        sender.close()
        return _receive(child, receiver, seconds, max_pixels)
    finally:
        receiver.close()
        if child.is_alive():
            child.kill()
        child.join()


_STARTING = threading.Lock()


@contextlib.contextmanager
def _without_main_module() -> Iterator[None]:
    """Start a worker without it running the caller's main script again.

    multiprocessing prepares a forkserver child as it prepares a spawned one: the child
    imports the parent's ``__main__`` first, so a user's script that calls
    ``sleuth.analyze`` at top level, without an ``if __name__ == "__main__":`` guard,
    would run again in every worker and fail there. The worker needs nothing from
    ``__main__`` (its target and arguments live in importable modules), so while the
    process starts (its preparation data is taken then) ``__main__`` is a bare module.
    """
    with _STARTING:
        main = sys.modules.get("__main__")
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            yield
        finally:
            if main is not None:
                sys.modules["__main__"] = main


def _empty(shape: tuple[int, int, int]) -> np.ndarray:
    return np.empty(shape, np.uint8)


def _child(
    decoder: Decoder, raw: bytes, kwargs: dict[str, Any], seconds: float, sender: Connection
) -> None:
    """Decode in the worker and send the header, then the pixels."""
    _limit_cpu(seconds)
    Image.MAX_IMAGE_PIXELS = None  # this process's own copy: the limit is max_pixels
    accepted_formats()  # the same plugins as the parent (pillow-heif registers lazily)
    try:
        header, rgb = decoder(raw, allocate=_empty, **kwargs)
    except ImageLoadError as err:
        sender.send({"ok": False, "reason": err.reason, "message": str(err)})
        return
    except Exception as err:  # a bug: reported, and raised in the parent
        sender.send({"ok": False, "bug": f"{type(err).__name__}: {err}"[:500]})
        return
    sender.send({"ok": True, "shape": list(rgb.shape), **header})
    sender.send_bytes(np.ascontiguousarray(rgb).data.cast("B"))


def _limit_cpu(seconds: float) -> None:
    faulthandler.disable()  # a decoder crash here is reported by the parent, not dumped
    for sig in (signal.SIGPROF, signal.SIGXCPU, signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)  # the parent's handlers must not outlive the fork
    signal.setitimer(signal.ITIMER_PROF, seconds)  # process CPU time, all threads
    import resource  # POSIX only, like fork

    soft = math.ceil(seconds) + 1
    try:
        resource.setrlimit(resource.RLIMIT_CPU, (soft, soft + 1))
    except (ValueError, OSError):  # a lower hard limit is already in place
        pass


def _receive(
    child: Any, receiver: Connection, seconds: float, max_pixels: int
) -> tuple[dict[str, Any], np.ndarray]:
    """Read the worker's reply within ``seconds``, or turn its fate into an error."""
    deadline = time.monotonic() + seconds
    try:
        if not receiver.poll(seconds):
            _stop(child)
            raise _too_slow(seconds, "wall-clock")
        reply = receiver.recv()
    except EOFError:  # the worker died before replying
        child.join(max(0.0, deadline - time.monotonic()) + 1.0)
        raise _died(child.exitcode, seconds) from None
    if "bug" in reply:
        raise RuntimeError(f"the image decoding worker failed: {reply['bug']}")
    if not reply.pop("ok"):
        raise ImageLoadError(reply["message"], reason=reply["reason"])
    shape = tuple(int(n) for n in reply.pop("shape"))
    if len(shape) != 3 or shape[2] != 3 or not 0 < math.prod(shape) <= 3 * max_pixels:
        raise RuntimeError(f"the image decoding worker replied with a bad shape {shape}")
    rgb = np.empty(shape, np.uint8)
    if not receiver.poll(max(0.0, deadline - time.monotonic()) + 5.0):
        _stop(child)
        raise _too_slow(seconds, "wall-clock")
    try:
        receiver.recv_bytes_into(rgb.data.cast("B"))
    except EOFError:
        child.join(1.0)
        raise _died(child.exitcode, seconds) from None
    return reply, rgb


def _stop(child: Any) -> None:
    child.kill()
    child.join()


def _too_slow(seconds: float, clock: str) -> ImageLoadError:
    return ImageLoadError(
        f"decoding was stopped after {seconds:g} s of {clock} time (setting "
        "decode_seconds): the file costs more to decode than any image sleuth accepts",
        reason="too_slow",
    )


def _died(code: int | None, seconds: float) -> Exception:
    if code in (-signal.SIGPROF, -signal.SIGXCPU):
        return _too_slow(seconds, "CPU")
    if code is not None and code < 0:
        return ImageLoadError(_fate(-code), reason="unreadable")
    return RuntimeError(f"the image decoding worker exited with code {code} and no reply")


def _fate(signum: int) -> str:
    if signum == signal.SIGKILL:  # not ours: the deadline is handled above
        return "the decoding worker was killed by the system (out of memory?)"
    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = f"signal {signum}"
    return f"the decoder crashed on this file ({name})"
