"""Throughput and memory of ``sleuth scan``, its engines side by side in one run.

    python benchmarks/scan.py [--images 150] [--memory 500,5000] [--skip-ray]

Throughput: ``--images`` images spread over the shared set's manifests (``../shared/data``
or ``$SLEUTH_SHARED_DATA``), each scanned by ``--engine local`` with 1 and 2 jobs and by
``--engine ray`` on a local Ray instance with 2 CPUs, into fresh output folders; images/s
counts the run from start to finish (worker start-up and the summary included, as a user
sees a small run). Each engine also scans twice as many images (the same ones and as many
between them): the difference of the two runs' times gives the *marginal* rate, what a long
scan sees once the workers are up. Printed ratios, both ways: 2 jobs to 1 (target >= 1.8x
on 2 cores) and Ray's per-image cost to the pool's with the same 2 workers (target <=
1.15x). Also printed: the time a worker spends per image (the rows' ``seconds``), with one
worker and with two at once; two processes on two cores slow each other (shared memory
bandwidth and caches, the driver, the decoding processes), and that ratio bounds what 2
jobs can gain over 1 on the machine.

Memory: peak RSS of the driver and, separately, of its largest worker process at
each ``--memory`` size, on synthetic copies (one small photo re-encoded at a few qualities
and sizes, so every file differs and is analysed): memory must not grow with the number of
images. Each measurement runs in a fresh subprocess.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def shared_images(count: int) -> list[str]:
    """Return the first ``count`` images listed by the shared set's manifests."""
    root = Path(os.environ.get("SLEUTH_SHARED_DATA", Path(__file__).parents[2] / "shared" / "data"))
    paths: list[str] = []
    for manifest in (root / "manifest.csv", root / "extra" / "manifest.csv"):
        if manifest.exists():
            with manifest.open(newline="") as handle:
                paths += [str(manifest.parent / r["file"]) for r in csv.DictReader(handle)]
    if not paths:
        sys.exit(f"no shared image set at {root}; set SLEUTH_SHARED_DATA")
    return paths[:: max(1, len(paths) // count)][:count]


def synthetic_images(folder: Path, count: int) -> None:
    """Write ``count`` distinct small JPEGs (one photo, other sizes and qualities)."""
    from PIL import Image
    from skimage import data

    base = Image.fromarray(data.astronaut())
    for i in range(count):
        side = 160 + (i % 97)
        picture = base.resize((side, side))
        picture.paste((i % 256, i // 256 % 256, 0), (0, 0, 8, 8))  # no two files alike
        buffer = io.BytesIO()
        picture.save(buffer, format="JPEG", quality=60 + i % 37)
        (folder / f"{i:05d}.jpg").write_bytes(buffer.getvalue())


def watch_workers(peak: dict[int, int], every: float = 0.2) -> None:
    """Record in ``peak`` the peak RSS (kB, ``VmHWM``) of every process below this one.

    The pool's workers are the forkserver's children, not the driver's, so
    ``RUSAGE_CHILDREN`` never sees them; ``/proc`` does (Linux only). Runs until exit.
    """
    import time

    me = os.getpid()
    while True:
        table: dict[int, tuple[int, int]] = {}  # pid: (parent, peak kB)
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            hwm = int(fields.get("VmHWM", "0 kB").split()[0])
            table[int(entry.name)] = (int(fields.get("PPid", "0")), hwm)
        below = {me}
        for _ in range(4):  # driver -> forkserver -> workers -> their decoders
            below |= {pid for pid, (parent, _) in table.items() if parent in below}
        for pid in below - {me}:
            if pid in table:
                peak[pid] = max(peak.get(pid, 0), table[pid][1])
        time.sleep(every)


def measure(args: list[str]) -> dict[str, float]:
    """Run one scan in a subprocess; return its seconds and peak RSS (driver, workers)."""
    code = (
        "import json, resource, sys, threading, time\n"
        "sys.path.insert(0, sys.argv[2])\n"
        "from scan import watch_workers\n"
        "from sleuth.cli import main\n"
        "peak = {}\n"
        "threading.Thread(target=watch_workers, args=(peak,), daemon=True).start()\n"
        "start = time.perf_counter()\n"
        "sys.argv = ['sleuth', 'scan', *json.loads(sys.argv[1])]\n"
        "try:\n    main()\nexcept SystemExit as done:\n    code = done.code\n"
        "print(json.dumps({'seconds': time.perf_counter() - start,"
        " 'driver_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,"
        " 'worker_mb': max(peak.values(), default=0) / 1024}))\n"
    )
    env = {**os.environ, "SLEUTH_DATA_DIR": tempfile.mkdtemp(prefix="sleuth-bench-")}
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(args), str(Path(__file__).parent)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"scan failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def worker_seconds(out: Path) -> float:
    """Sum of the rows' ``seconds``: the time workers spent on the images of a scan."""
    with (out / "rows.jsonl").open() as rows:
        return sum(json.loads(line).get("seconds") or 0.0 for line in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=150)
    parser.add_argument("--memory", default="500,5000")
    parser.add_argument("--skip-ray", action="store_true")
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sleuth-scan-bench-"))
    both = shared_images(2 * options.images)
    listings = {}
    for count, paths in ((len(both[::2]), both[::2]), (len(both), both)):
        listings[count] = work / f"images-{count}.txt"
        listings[count].write_text("\n".join(paths) + "\n")
    small, large = sorted(listings)
    runs = [("local, 1 job", ["--jobs", "1"]), ("local, 2 jobs", ["--jobs", "2"])]
    if not options.skip_ray:
        runs.append(("ray, 2 CPUs", ["--jobs", "2", "--engine", "ray"]))
    rates: dict[str, float] = {}
    marginal: dict[str, float] = {}
    per_image: dict[str, float] = {}
    print(
        f"throughput on {small} shared images (2 cores); 'marginal': the {large - small} "
        f"more images of a {large}-image run, start-up and summary left out"
    )
    for name, extra in runs:
        seconds = {}
        for count, listing in listings.items():
            out = work / f"{name.replace(' ', '').replace(',', '')}-{count}"
            seconds[count] = measure([str(listing), "--out", str(out), *extra])["seconds"]
        per_image[name] = worker_seconds(out) / large
        rates[name] = small / seconds[small]
        marginal[name] = (large - small) / max(seconds[large] - seconds[small], 1e-9)
        print(
            f"  {name:<14} {rates[name]:6.2f} images/s ({seconds[small]:.1f} s)   "
            f"marginal {marginal[name]:6.2f} images/s   "
            f"{per_image[name] * 1000:4.0f} ms per image in a worker"
        )
    for label, figures in (("wall clock", rates), ("marginal", marginal)):
        speedup = figures["local, 2 jobs"] / figures["local, 1 job"]
        line = f"  {label:<10} 2 jobs / 1 job: {speedup:.2f}x (target >= 1.8x)"
        if "ray, 2 CPUs" in figures:
            cost = figures["local, 2 jobs"] / figures["ray, 2 CPUs"]
            line += f"; Ray per-image cost / pool's: {cost:.2f}x (target <= 1.15x)"
        print(line)
    ceiling = 2 * per_image["local, 1 job"] / per_image["local, 2 jobs"]
    print(
        f"  two workers at once take {per_image['local, 2 jobs'] / per_image['local, 1 job']:.2f}x "
        f"the time per image of one: 2 jobs can reach at most {ceiling:.2f}x of 1 job here"
    )
    if "ray, 2 CPUs" in per_image:
        print(
            "  a Ray actor's time per image / a pool worker's: "
            f"{per_image['ray, 2 CPUs'] / per_image['local, 2 jobs']:.2f}x (target <= 1.15x)"
        )
    print("peak RSS, local engine with 2 jobs, synthetic copies")
    for size in (int(n) for n in options.memory.split(",")):
        folder = work / f"copies-{size}"
        folder.mkdir()
        synthetic_images(folder, size)
        found = measure([str(folder), "--out", str(work / f"out-{size}"), "--jobs", "2"])
        print(
            f"  {size:>6} images: driver {found['driver_mb']:.0f} MB, largest worker "
            f"{found['worker_mb']:.0f} MB, {size / found['seconds']:.1f} images/s"
        )


if __name__ == "__main__":
    main()
