"""Cost of decoding in a worker process (the time budget) against decoding in-process.

    python benchmarks/decode.py [--repeat 15] [--megapixels 12] [--ballast-mb 0,1024]
                                [--image-module FILE]

A camera-like JPEG of ``--megapixels`` is loaded alternately through the decode worker
(``decode_seconds`` > 0, the default) and in-process (``decode_seconds = 0``), and, with
``--image-module``, through another version of ``tools/image.py`` (e.g.
``git show REV:tools/image.py > old_image.py``). The worker is a fork of the calling
process, whose cost grows with that process's memory: ``--ballast-mb`` repeats the run
with that much touched memory held by the caller, as a server holding models would.
Reported: the median and best of each, in ms, and the worker's median overhead.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import statistics
import sys
import time

import numpy as np
from PIL import Image


def camera_jpeg(megapixels: float) -> bytes:
    """A smooth photo-like JPEG (gradients plus sensor noise) at quality 92."""
    width = int(round((megapixels * 1e6 * 4 / 3) ** 0.5))
    height = int(megapixels * 1e6 // width)
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = 128 + 60 * np.sin(x / 180) * np.cos(y / 130)
    pixels = base[:, :, None] + np.array([0, 20, -20], np.float32)
    pixels += rng.normal(0, 3, pixels.shape).astype(np.float32)
    buf = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=92)
    return buf.getvalue()


def loaders(image_module: str | None) -> dict:
    """Return the ways of loading to compare, by name."""
    from sleuth.tools import ImageLimits, load_image

    ways = {
        "worker": lambda data: load_image(data),
        "in-process": lambda data: load_image(data, limits=ImageLimits(decode_seconds=0)),
    }
    if image_module:
        spec = importlib.util.spec_from_file_location("other_image", image_module)
        module = sys.modules["other_image"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        ways["module"] = module.load_image
    return ways


def measure(data: bytes, ways: dict, repeat: int) -> dict[str, list[float]]:
    """Time each way ``repeat`` times, interleaved, after one warm-up call each."""
    times: dict[str, list[float]] = {name: [] for name in ways}
    for load in ways.values():
        load(data)
    for _ in range(repeat):
        for name, load in ways.items():
            started = time.perf_counter()
            load(data)
            times[name].append(time.perf_counter() - started)
    return times


def main() -> None:
    """Parse arguments, run and print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--megapixels", type=float, default=12.0)
    parser.add_argument("--ballast-mb", default="0,1024", help="memory held by the caller")
    parser.add_argument("--image-module", help="another tools/image.py to compare with")
    args = parser.parse_args()
    data = camera_jpeg(args.megapixels)
    ways = loaders(args.image_module)
    print(f"{args.megapixels:g} MP JPEG, {len(data) / 1e6:.1f} MB; ms, median (best)")
    for ballast_mb in (int(b) for b in args.ballast_mb.split(",")):
        ballast = np.ones(ballast_mb << 20, np.uint8)  # touched: resident in this process
        times = measure(data, ways, args.repeat)
        cells = [
            f"{name} {statistics.median(t) * 1e3:.0f} ({min(t) * 1e3:.0f})"
            for name, t in times.items()
        ]
        overhead = statistics.median(times["worker"]) - statistics.median(times["in-process"])
        ratio = statistics.median(times["worker"]) / statistics.median(times["in-process"])
        print(f"caller holding {ballast_mb} MB: " + ", ".join(cells), end="")
        print(f"; worker overhead {overhead * 1e3:+.0f} ms ({ratio:.2f}x)")
        del ballast


if __name__ == "__main__":
    main()
