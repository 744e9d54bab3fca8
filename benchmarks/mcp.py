"""analyze_image over MCP: in-process vs stdio vs streamable HTTP, and throughput under load.

Every call analyses the same photo-like composite (640x480 PNG) with the offline backend,
each call a new case; the image is given by path (as a desktop assistant does) and as
base64. Per-call latency is the median of ``--repeat`` calls per transport, interleaved
round-robin after a warm-up round, all three in one run (analyses in worker processes, the
default); throughput is calls per second over HTTP with 1, 4 and 16 concurrent clients,
each making ``--per-client`` calls, against two servers side by side: analyses in threads
(``--workers threads``) and in worker processes (``--workers processes``), the two
measured alternately ``--rounds`` times (the median is shown), so that drift in the
machine's load hits both alike. Each server runs ``--jobs`` analyses at once (default 2,
one per core here).

    python benchmarks/mcp.py [--repeat 7] [--per-client 4] [--jobs 2] [--rounds 3]

Also printed: the CPU time per call of the server (its process and every worker) and of
the clients (this process), and the throughput target of issue "scan": 16 clients >= 0.8 x
``cores / single-call time``, with the call timed both ways (one call's latency over HTTP,
and the inverse of one client's rate, which includes the client's session set-up).

Targets: stdio and HTTP per call <= 1.2x in-process (issue "MCP server"); the throughput
one above. On an idle 2-core machine, with each worker process on one math thread: a call
takes 0.50-0.56 s in-process, 0.47-0.59 s over stdio or HTTP (0.85-1.08x); threads 1.62 /
1.95 / 1.96 calls/s with 1 / 4 / 16 clients, processes 1.66 / 3.41 / 3.27; the server uses
0.51-0.62 s of CPU per call, the clients 0.01-0.02 s; 16 clients reach 0.82x of
``cores / single-call time`` by the call's latency (2 / 0.50 s) and 0.99x by one client's
rate (2 / 0.60 s). Before the workers were limited to one math thread (each ran numpy's
BLAS pool of one thread per core, whose idle threads spin), one analysis used about 0.9 s
of CPU and 16 clients reached 1.81 calls/s (0.43x), with 2 calls per client.
"""

from __future__ import annotations

import argparse
import base64
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# This file is named like the mcp package: take its folder off the path, put the checkout on it
# (for the tests' image builders).
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))

import anyio  # noqa: E402
from mcp import Client, StdioServerParameters  # noqa: E402

from sleuth.servers.mcp.inputs import InputPolicy  # noqa: E402
from sleuth.servers.mcp.server import create_server  # noqa: E402
from sleuth.settings import Settings  # noqa: E402
from tests.agent.conftest import composite_png  # noqa: E402

BASE64 = {"image_base64": base64.b64encode(composite_png()).decode("ascii")}
IMAGE = {"path": "composite.png"}  # under the server's allowed folder
MODES = ("threads", "processes")
"""Where the two HTTP servers run their analyses (``sleuth serve --workers``)."""
CLIENTS = (1, 4, 16)


async def per_call(
    clients: dict[str, Client], repeat: int, arguments: dict[str, str]
) -> dict[str, float]:
    """Median seconds of one analyze_image call per transport, calls interleaved.

    Round-robin over the connected clients, so that drift in the machine's load hits
    every transport alike.
    """
    times: dict[str, list[float]] = {name: [] for name in clients}
    for round_ in range(repeat + 1):
        for name, client in clients.items():
            start = time.perf_counter()
            result = await client.call_tool("analyze_image", arguments)
            if result.is_error:
                raise SystemExit(f"analyze_image failed: {result.content}")
            if round_:  # the first round warms up
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


async def warm_up(url: str, jobs: int) -> None:
    """Make ``jobs`` calls at once, so that every worker has started and run once."""
    async with Client(url) as client, anyio.create_task_group() as group:
        for _ in range(jobs):
            group.start_soon(client.call_tool, "analyze_image", IMAGE)


async def throughput(url: str, clients: int, per_client: int) -> float:
    """Calls per second with ``clients`` concurrent clients."""

    async def one() -> None:
        async with Client(url) as client:
            for _ in range(per_client):
                result = await client.call_tool("analyze_image", IMAGE)
                if result.is_error:
                    raise SystemExit(f"analyze_image failed: {result.content}")

    start = time.perf_counter()
    async with anyio.create_task_group() as group:
        for _ in range(clients):
            group.start_soon(one)
    return clients * per_client / (time.perf_counter() - start)


def tree_cpu(root: int) -> float:
    """CPU seconds used so far by process ``root`` and its descendants (Linux ``/proc``).

    Each process counts its own time and that of the children it has reaped (a decode's
    short-lived process is reaped by the worker that forked it).
    """
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    used: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        parents[int(entry.name)] = int(fields[1])
        used[int(entry.name)] = sum(int(f) for f in fields[11:15]) / ticks
    tree, grew = {root}, True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    return sum(used.get(pid, 0.0) for pid in tree)


def own_cpu() -> float:
    """CPU seconds of this process (the clients) so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def start_http(
    env: dict[str, str], jobs: int, folder: Path, workers: str
) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "sleuth", "serve", "--transport", "http"]
    command += [
        "--port",
        str(port),
        "--jobs",
        str(jobs),
        "--queue",
        "64",
        "--allow-dir",
        str(folder),
        "--workers",
        workers,
    ]
    process = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return process, f"http://127.0.0.1:{port}/mcp"
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the HTTP server did not start")


async def measure(
    args: argparse.Namespace, env: dict[str, str], settings: Settings, folder: Path
) -> None:
    policy = InputPolicy(allow_dirs=(folder,))
    server = create_server(
        settings=settings, policy=policy, running=args.jobs, waiting=64, processes=True
    )
    stdio = StdioServerParameters(
        command=sys.executable,
        args=["-m", "sleuth", "serve", "--jobs", str(args.jobs), "--allow-dir", str(folder)],
        env=env,
    )
    servers = {mode: start_http(env, args.jobs, folder, mode) for mode in MODES}
    urls = {mode: url for mode, (_, url) in servers.items()}
    try:
        rows = {}
        async with (
            Client(server) as local,
            Client(stdio) as piped,
            Client(urls["processes"]) as http,
        ):
            clients = {"in-process": local, "stdio": piped, "http": http}
            for source, arguments in (("path", IMAGE), ("base64", BASE64)):
                rows[source] = await per_call(clients, args.repeat, arguments)
        print(f"analyze_image per call (median of {args.repeat}, offline backend, 640x480 PNG)")
        print(f"  {'image as':<10}{'transport':<12}{'ms':>9}{'ratio':>8}")
        for source, medians in rows.items():
            for name, seconds in medians.items():
                ratio = seconds / medians["in-process"]
                print(f"  {source:<10}{name:<12}{seconds * 1e3:>9.1f}{ratio:>8.2f}")
        print("  target: stdio and http <= 1.2x in-process")
        for url in urls.values():
            await warm_up(url, args.jobs)
        rates: dict[tuple[int, str], list[float]] = {}
        cpu: dict[tuple[int, str], list[tuple[float, float]]] = {}
        for _ in range(args.rounds):
            for clients_ in CLIENTS:
                for mode, url in urls.items():
                    pid = servers[mode][0].pid
                    server_cpu, client_cpu = tree_cpu(pid), own_cpu()
                    rate = await throughput(url, clients_, args.per_client)
                    calls = clients_ * args.per_client
                    cpu.setdefault((clients_, mode), []).append(
                        ((tree_cpu(pid) - server_cpu) / calls, (own_cpu() - client_cpu) / calls)
                    )
                    rates.setdefault((clients_, mode), []).append(rate)
        print(
            f"throughput over HTTP, calls/s ({args.per_client} calls per client, "
            f"--jobs {args.jobs}, median of {args.rounds} alternating rounds)"
        )
        print(
            f"  {'clients':<10}{'threads':>9}{'processes':>11}{'ratio':>8}"
            f"{'CPU s/call: server':>22}{'clients':>9}"
        )
        for clients_ in CLIENTS:
            threads, processes = (statistics.median(rates[clients_, m]) for m in MODES)
            spent = [statistics.median(c) for c in zip(*cpu[clients_, "processes"], strict=True)]
            print(
                f"  {clients_:<10}{threads:>9.2f}{processes:>11.2f}{processes / threads:>8.2f}"
                f"{spent[0]:>22.2f}{spent[1]:>9.2f}"
            )
        cores = os.cpu_count() or 1
        best = statistics.median(rates[CLIENTS[-1], "processes"])
        for name, single in (
            ("one call over HTTP", rows["path"]["http"]),
            ("1 / one client's rate", 1 / statistics.median(rates[1, "processes"])),
        ):
            print(
                f"  target: {CLIENTS[-1]} clients >= 0.8 x cores / single call, the call "
                f"timed as {name} ({cores} / {single:.2f} s = {cores / single:.2f} calls/s): "
                f"{best / (cores / single):.2f}x"
            )
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--per-client", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "none.toml"
        config.write_text("")
        env = dict(os.environ, SLEUTH_DATA_DIR=str(Path(tmp) / "data"), SLEUTH_CONFIG=str(config))
        settings = Settings(data_dir=Path(tmp) / "data")
        folder = Path(tmp) / "images"
        folder.mkdir()
        (folder / "composite.png").write_bytes(composite_png())
        anyio.run(measure, args, env, settings, folder)


if __name__ == "__main__":
    main()
