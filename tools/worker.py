"""Decoding under a time budget: Pillow runs in a worker process that is killed when it overruns.

A decoder is C code that Python cannot interrupt, so the only sure bound on its cost is a
process. Each decode runs in a child of multiprocessing's *forkserver*: a small process
started once (clean, single-threaded, with this module, Pillow and every accepted format's
plugin imported: :mod:`sleuth.tools.worker_preload`) that forks a child per request.
Forking the caller itself would be cheaper, but the caller is often a multithreaded server,
and a fork taken while another thread holds a native lock (an OpenBLAS matrix product in
another analysis, seen deadlocking) leaves the child, or the parent's fork handlers,
waiting forever.

Every child serves exactly one decode and is never reused. It is started one decode
ahead: while a child decodes, the next one is forked and sets itself up, waiting for its
request, so starting a process is not on the path of the next decode. The child

* waits for its request (the decoder, the limits and the file's bytes); it exits quietly
  when the parent goes away without sending one,
* limits its own CPU time (``ITIMER_PROF``, with ``RLIMIT_CPU`` as a backstop) from the
  moment the request arrives,
* decodes, sends a small header and then the pixels through a pipe, which the parent
  reads straight into the image's array (one copy, no temporary).

The parent waits for at most the same number of seconds of wall-clock time, then kills
the child; a child that replied is killed too, so nothing it does after its reply
outlives the decode. A decoder that crashes (a signal) only kills the child. Where the
forkserver does not exist (Windows), or with a budget of 0, decoding runs in-process
without a time bound.
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

try:
    import fcntl
except ImportError:  # Windows: no pipes to widen
    fcntl = None  # type: ignore[assignment]

import numpy as np
from PIL import Image

from sleuth.tools.decode import decode_pixels
from sleuth.tools.errors import ImageLoadError
from sleuth.tools.formats import accepted_formats

Decoder = Callable[..., tuple[dict[str, Any], np.ndarray]]
"""What runs in the child: :func:`~sleuth.tools.decode.decode_pixels` (tests pass others;
it must be a module-level function, as the child imports it by name)."""


@functools.cache
def forkserver_context() -> Any:
    """Return multiprocessing's forkserver context, this module preloaded in the server."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__, f"{__package__}.worker_preload"])
    return context


def _forget_the_parents_forkserver() -> None:
    """In a child made by a plain fork, drop the parent's forkserver and spare worker.

    multiprocessing keeps one forkserver per process in a module global; a child forked
    from a process that started one (a ``ProcessPoolExecutor`` worker, say) inherits its
    pid and checks it with ``waitpid``, which fails with ``ChildProcessError`` because
    the forkserver is not its child. The fields are private, so each is checked first.
    The parent's spare worker (:class:`_Worker`) stays the parent's: the child forgets it
    without stopping it and closes its copies of the worker's pipes.
    """
    global _spare, _SPARE_LOCK
    _SPARE_LOCK = threading.Lock()  # another thread may have held it at the fork
    spare, _spare = _spare, None
    if spare is not None:
        spare.forget()
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


class _Worker:
    """A worker process for one decode: started, then waiting for its request.

    ``requests`` carries the request to the child, ``replies`` the header and pixels back.
    """

    def __init__(self) -> None:
        context = forkserver_context()
        child_requests, self.requests = context.Pipe(duplex=False)
        self.replies, child_replies = context.Pipe(duplex=False)
        _widen(child_replies)
        _widen(self.requests)
        self.process = context.Process(
            target=_serve, args=(child_requests, child_replies), daemon=True
        )
        try:
            with without_main_module():
                self.process.start()
        except BaseException:
            for end in (self.requests, self.replies):
                end.close()
            raise
        finally:
            child_requests.close()
            child_replies.close()

    def send(self, decoder: Decoder, raw: bytes, kwargs: dict[str, Any], seconds: float) -> None:
        """Send the request: the decoder, its arguments and budget, then the file's bytes."""
        self.requests.send((decoder, kwargs, seconds))
        self.requests.send_bytes(raw)

    def finish(self, *, wait: bool) -> None:
        """Close the pipes and kill the child; ``wait`` for it to be gone."""
        self.requests.close()
        self.replies.close()
        if self.process.is_alive():
            self.process.kill()
        if wait:
            self.process.join()

    def forget(self) -> None:
        """In a forked copy of the parent: close the pipes, leave the process alone."""
        for end in (self.requests, self.replies):
            with contextlib.suppress(OSError):
                end.close()
        children = getattr(multiprocessing.process, "_children", None)
        if isinstance(children, set):
            children.discard(self.process)


PIPE_BYTES = 1 << 20
"""Buffer asked for the reply pipe (Linux's default limit for a user): the pixels cross
in a few large writes instead of many 64 KiB ones, each a switch between the processes."""


def _widen(end: Connection) -> None:
    """Enlarge a pipe's buffer to :data:`PIPE_BYTES` where the system allows it."""
    setsize = getattr(fcntl, "F_SETPIPE_SZ", None) if fcntl is not None else None
    if setsize is not None:
        with contextlib.suppress(OSError):
            fcntl.fcntl(end.fileno(), setsize, PIPE_BYTES)


_spare: _Worker | None = None
"""The worker started for the next decode, if any."""
_SPARE_LOCK = threading.Lock()


def _take_spare() -> _Worker | None:
    """Return the spare worker (None when there is none or it died waiting)."""
    global _spare
    with _SPARE_LOCK:
        spare, _spare = _spare, None
    if spare is not None and not spare.process.is_alive():
        spare.finish(wait=True)
        return None
    return spare


def _start_spare() -> None:
    """Start the next decode's worker, unless one is waiting already."""
    global _spare
    with _SPARE_LOCK:
        if _spare is not None:
            return
    try:
        spare = _Worker()
    except Exception:  # the next decode starts its own worker and reports any error
        return
    with _SPARE_LOCK:
        if _spare is None:
            _spare = spare
            return
    spare.finish(wait=True)  # another thread was quicker


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
    worker = _take_spare()
    if worker is not None:
        try:
            worker.send(decoder, raw, kwargs, seconds)
        except OSError:  # it died before reading its request: not this file's doing
            worker.finish(wait=True)
            worker = None
    if worker is None:
        worker = _Worker()
        try:
            worker.send(decoder, raw, kwargs, seconds)
        except BaseException:
            worker.finish(wait=True)
            raise
    deadline = time.monotonic() + seconds
    replied = False
    try:
        _start_spare()  # forked while this worker decodes
        header, rgb = _receive(worker.process, worker.replies, deadline, seconds, max_pixels)
        replied = True
        return header, rgb
    finally:
        worker.finish(wait=not replied)


_STARTING = threading.Lock()


@contextlib.contextmanager
def without_main_module() -> Iterator[None]:
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


def _serve(requests: Connection, replies: Connection) -> None:
    """In the worker: set up, wait for the one request, decode it and reply."""
    faulthandler.disable()  # a decoder crash here is reported by the parent, not dumped
    for sig in (signal.SIGPROF, signal.SIGXCPU, signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)  # the parent's handlers must not outlive the fork
    Image.MAX_IMAGE_PIXELS = None  # this process's own copy: the limit is max_pixels
    accepted_formats()  # the same plugins as the parent (pillow-heif registers lazily)
    _warm_heap()
    try:
        decoder, kwargs, seconds = requests.recv()
        raw = requests.recv_bytes()
    except EOFError:  # the parent exited, or stopped, without needing this worker
        return
    _limit_cpu(seconds)
    _child(decoder, raw, kwargs, replies)


WARM_HEAP_BYTES = 32 << 20
"""Memory a waiting worker touches and keeps: a decode of up to about 2 MP then allocates
from pages already mapped instead of faulting in fresh ones (a third of its time)."""


def _warm_heap() -> None:
    """Map :data:`WARM_HEAP_BYTES` of heap and keep it for the decode (glibc only).

    A fresh process gets every page it allocates from the kernel, zeroed, on first touch.
    Raising glibc's mmap and trim thresholds keeps large blocks on the heap after they
    are freed, so touching one block while waiting leaves those pages mapped for the
    decoder's buffers.
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc: nothing to tune
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    if not (
        mallopt(m_mmap_threshold, WARM_HEAP_BYTES)
        and mallopt(m_trim_threshold, 2 * WARM_HEAP_BYTES)
    ):
        return
    block = np.ones(WARM_HEAP_BYTES - (1 << 20), np.uint8)  # touched, then freed to the heap
    del block


def _child(decoder: Decoder, raw: bytes, kwargs: dict[str, Any], sender: Connection) -> None:
    """Decode in the worker and send the header, then the pixels."""
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
    """Allow this process ``seconds`` more CPU time (all threads), from now."""
    signal.setitimer(signal.ITIMER_PROF, seconds)
    import resource  # POSIX only, like fork

    used = resource.getrusage(resource.RUSAGE_SELF)
    soft = math.ceil(used.ru_utime + used.ru_stime + seconds) + 1
    try:
        resource.setrlimit(resource.RLIMIT_CPU, (soft, soft + 1))
    except (ValueError, OSError):  # a lower hard limit is already in place
        pass


def _receive(
    child: Any, receiver: Connection, deadline: float, seconds: float, max_pixels: int
) -> tuple[dict[str, Any], np.ndarray]:
    """Read the worker's reply by ``deadline``, or turn its fate into an error."""
    try:
        if not receiver.poll(max(0.0, deadline - time.monotonic())):
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
