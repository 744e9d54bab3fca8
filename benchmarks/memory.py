"""Peak memory of loading an image at the pixel cap (then surveying or analysing it), per process.

    python benchmarks/memory.py [--megapixels 80] [--stage load|survey|analyze]
                                [--image-module FILE]
                                [--modes worker,in-process,module] [--bits 8,16]

Cases: an 8-bit RGB PNG and a 16-bit grey PNG of ``--megapixels`` (the default cap), loaded
through the decode worker (the default) and in-process (``decode_seconds = 0``), then
optionally surveyed (every survey tool) or analysed (the offline analysis, case store
in a temporary folder). With
``--image-module`` the same cases also run through another version of
``tools/image.py`` (e.g. ``git show REV:tools/image.py > old_image.py``), side by side.

Each case runs in a new Python process. Reported, in MB:

* ``main``: the process's peak RSS (``ru_maxrss``), imports included;
* ``worker``: the decode worker's peak RSS (it shares the main process's pages, so
  the two do not add up);
* ``total``: the peak of the summed proportional set size (PSS) of the process and its
  worker, sampled every 10 ms from ``/proc`` (Linux; shared pages counted once);
* ``base``: the main process's RSS after imports, before loading.

Target (issue "Hardening"): the load at the 80 MP cap under 1.2 GB.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402

ASPECT = (5, 4)
ROWS_PER_CHUNK = 256


def write_png(path: Path, megapixels: float, bits: int) -> None:
    """Write a smooth, noisy PNG (RGB 8-bit or grey 16-bit) row band by row band."""
    width = int(round((megapixels * 1e6 * ASPECT[0] / ASPECT[1]) ** 0.5))
    height = int(megapixels * 1e6 // width)
    channels, dtype = (3, ">u1") if bits == 8 else (1, ">u2")
    colour = 2 if channels == 3 else 0
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 1, width, dtype=np.float32)
    packer = zlib.compressobj(1)
    with path.open("wb") as out:
        out.write(b"\x89PNG\r\n\x1a\n")
        _chunk(out, b"IHDR", _ihdr(width, height, bits, colour))
        for top in range(0, height, ROWS_PER_CHUNK):
            rows = min(ROWS_PER_CHUNK, height - top)
            level = ramp[None, :] + np.arange(top, top + rows, dtype=np.float32)[:, None] / height
            level = level[:, :, None] * (0.5 * ((1 << bits) - 1))
            noisy = level + rng.normal(0, 2 << (bits - 8), (rows, width, channels))
            pixels = np.clip(noisy, 0, (1 << bits) - 1).astype(dtype)
            lines = np.concatenate(
                [np.zeros((rows, 1), np.uint8), pixels.view(np.uint8).reshape(rows, -1)], 1
            )
            _chunk(out, b"IDAT", packer.compress(lines.tobytes()))
        _chunk(out, b"IDAT", packer.flush())
        _chunk(out, b"IEND", b"")


def _ihdr(width: int, height: int, bits: int, colour: int) -> bytes:
    return width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([bits, colour, 0, 0, 0])


def _chunk(out, kind: bytes, data: bytes) -> None:
    out.write(len(data).to_bytes(4, "big") + kind + data)
    out.write(zlib.crc32(kind + data).to_bytes(4, "big"))


def child(path: str, mode: str, stage: str, image_module: str | None) -> None:
    """Load one file (and survey or analyse it); print peak figures as JSON."""
    from sleuth.tools import ImageLimits, ToolRegistry
    from sleuth.tools.survey import run_survey

    if mode == "module" and stage == "analyze":
        raise SystemExit("the analysis takes only the installed code's images")
    if mode == "module":
        spec = importlib.util.spec_from_file_location("other_image", image_module)
        module = sys.modules["other_image"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        load = module.load_image
        limits = module.ImageLimits()
    else:
        from sleuth.tools import load_image as load

        limits = ImageLimits(decode_seconds=0 if mode == "in-process" else 60)
    registry = ToolRegistry.discover() if stage == "survey" else None
    base = _rss_now()
    started = time.perf_counter()
    image = load(path, limits=limits)
    loaded = time.perf_counter() - started
    if registry is not None:
        run_survey(registry, image)
    if stage == "analyze":
        _analyze(image)
    print(json.dumps({
        "base": base,
        "main": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "worker": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "load_s": loaded,
        "seconds": time.perf_counter() - started,
    }))  # fmt: skip


def _analyze(image) -> None:
    """The offline analysis, as ``sleuth analyze`` runs it, with a throw-away case store."""
    from sleuth.api import open_session
    from sleuth.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), max_image_pixels=image.width * image.height)
        with open_session(settings) as investigator:
            investigator.analyze(image)


def _rss_now() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _pss(pid: int) -> float:
    """PSS in MB of ``pid`` and its children (0 once gone)."""
    total = 0.0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            total += next(int(line.split()[1]) for line in fh if line.startswith("Pss:")) / 1024
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            kids = [int(k) for k in fh.read().split()]
    except (OSError, StopIteration, ValueError):
        return total
    return total + sum(_pss(kid) for kid in kids)


def run_case(path: Path, mode: str, stage: str, image_module: str | None) -> dict:
    """Run one case in a new process, sampling its PSS; return its figures."""
    args = [sys.executable, __file__, "--child", str(path), mode, "--stage", stage]
    args += ["--image-module", image_module] if image_module else []
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, _pss(proc.pid))
        time.sleep(0.01)
    out, _ = proc.communicate()
    if proc.returncode != 0:
        return {"error": f"failed (exit {proc.returncode}), see stderr"}
    return json.loads(out.strip().splitlines()[-1]) | {"total": peak}


def main() -> None:
    """Parse arguments; as the parent, run and print every case."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megapixels", type=float, default=80.0)
    parser.add_argument(
        "--stage", choices=("load", "survey", "analyze"), default="load", help="what to run"
    )
    parser.add_argument("--image-module", help="another tools/image.py to compare with")
    parser.add_argument("--modes", default="worker,in-process,module", help="modes to run")
    parser.add_argument("--bits", default="8,16", help="PNG sample depths to run")
    parser.add_argument("--child", nargs=2, metavar=("FILE", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child, args.stage, args.image_module)
        return
    modes = [m for m in args.modes.split(",") if m != "module" or args.image_module]
    print(f"{'case':<8} {'mode':<11} {'base':>6} {'main':>6} {'worker':>7} {'total':>6} "
          f"{'load s':>7} {'all s':>6}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for bits in (int(b) for b in args.bits.split(",")):
            path = Path(tmp) / f"cap{bits}.png"
            write_png(path, args.megapixels, bits)
            for mode in modes:
                r = run_case(path, mode, args.stage, args.image_module)
                if "error" in r:
                    print(f"png{bits:<5} {mode:<11} {r['error']}")
                    continue
                print(f"png{bits:<5} {mode:<11} {r['base']:6.0f} {r['main']:6.0f} "
                      f"{r['worker']:7.0f} {r['total']:6.0f} {r['load_s']:7.2f} "
                      f"{r['seconds']:6.1f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
