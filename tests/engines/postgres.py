"""A throw-away PostgreSQL server on loopback, from the system's own binaries.

``initdb`` makes a cluster in a temporary directory, ``pg_ctl`` starts it on a free port
(TCP on 127.0.0.1 only, its socket inside that directory) and stops it again; nothing is
left behind. PostgreSQL refuses to run as root, so under root the commands run as the
``postgres`` system user, which Debian's package creates.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.engines.vllm_server import EngineMissing

SYSTEM_BIN_GLOB = "/usr/lib/postgresql/*/bin"


def postgres_bin() -> Path:
    """Return the folder holding ``initdb`` and ``pg_ctl``; raise EngineMissing without them."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    for folder in sorted(glob.glob(SYSTEM_BIN_GLOB), reverse=True):
        if (Path(folder) / "initdb").is_file():
            return Path(folder)
    raise EngineMissing(
        "PostgreSQL server binaries not found (initdb, pg_ctl); "
        "install Debian's postgresql package (.ci/run does)"
    )


def _as_server_user(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise EngineMissing("running as root and there is no 'postgres' user") from None
    return ["runuser", "-u", "postgres", "--", *command]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start a fresh cluster; yield its URL (``postgresql://sleuth@127.0.0.1:PORT/postgres``)."""
    binaries = postgres_bin()
    root = Path(tempfile.mkdtemp(prefix="sleuth-pg-"))
    data, log = root / "data", root / "server.log"
    if os.geteuid() == 0:
        shutil.chown(root, user="postgres")
        root.chmod(0o700)
    port = _free_port()

    def run(*args: str) -> None:
        done = subprocess.run(
            _as_server_user([str(binaries / args[0]), *args[1:]]),
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0:
            detail = log.read_text() if log.is_file() else ""
            raise RuntimeError(f"{args[0]} failed: {done.stderr}{done.stdout}{detail}")

    try:
        run("initdb", "-D", str(data), "-A", "trust", "-U", "sleuth", "--no-sync")
        options = f"-p {port} -k {root} -h 127.0.0.1 -c fsync=off"
        run("pg_ctl", "-D", str(data), "-l", str(log), "-o", options, "-w", "start")
        try:
            yield f"postgresql://sleuth@127.0.0.1:{port}/postgres"
        finally:
            run("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(root, ignore_errors=True)
