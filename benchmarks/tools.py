"""Time every tool and the default survey beside the floor, on a 1 MP and a 12 MP photo.

The floor is what any analysis of the file must pay: decoding it plus one JPEG re-encode
of the same pixels. Ratios are measured side by side in one run, on one core:

    python benchmarks/tools.py [--repeat N] [--sizes 1,12]

Targets: whole survey <= 5x the floor on 12 MP, peak RSS <= 1.5 GB (issue "Foundation");
whole survey <= 5x the floor on 1 MP too (web-sized images). Each size runs in a fresh
subprocess so its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import time

# One core, as the targets say; set before numpy/scipy load their thread pools.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

SIZES = {1: (1152, 864), 12: (4000, 3000)}


def make_photo(width: int, height: int) -> bytes:
    """A camera-like JPEG: a scikit-image photo mirrored to size, with sensor noise."""
    from skimage import data

    base = data.chelsea()
    reps = (-(-height // base.shape[0]), -(-width // base.shape[1]))
    rows = []
    for i in range(reps[0]):
        tile = base[::-1] if i % 2 else base
        rows.append(np.concatenate([tile[:, ::-1] if j % 2 else tile for j in range(reps[1])], 1))
    pixels = np.concatenate(rows, 0)[:height, :width].astype(np.float32)
    rng = np.random.default_rng(0)
    pixels += rng.normal(0, 2.5, pixels.shape).astype(np.float32)
    buf = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=92)
    return buf.getvalue()


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(megapixels: int, repeat: int) -> dict:
    from sleuth.tools import ToolRegistry, load_image
    from sleuth.tools.survey import run_survey, survey_tools

    data = make_photo(*SIZES[megapixels])
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def floor() -> None:
        pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        Image.fromarray(pixels).save(io.BytesIO(), "JPEG", quality=90)

    registry = ToolRegistry.discover()
    image = load_image(data)
    out = {
        "megapixels": round(image.size[0] * image.size[1] / 1e6, 1),
        "floor": best_of(repeat, floor),
        "load": best_of(repeat, lambda: load_image(data)),
        "tools": {
            s.name: best_of(repeat, lambda n=s.name: registry.run(n, image)) for s in registry
        },
        "survey_tools": survey_tools(registry),
    }
    out["survey"] = best_of(repeat, lambda: run_survey(registry, load_image(data)))
    out["rss_start_mb"] = rss_before / 1024
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def report(result: dict) -> None:
    floor = result["floor"]
    print(f"\n{result['megapixels']} MP   floor (decode + JPEG re-encode): {floor * 1000:.0f} ms")
    print(f"  {'step':<12}{'ms':>9}{'x floor':>10}")
    rows = [("load", result["load"])] + sorted(result["tools"].items())
    for name, secs in rows + [("SURVEY", result["survey"])]:
        print(f"  {name:<12}{secs * 1000:>9.0f}{secs / floor:>10.2f}")
    print(f"  survey = load + {', '.join(result['survey_tools'])}")
    print(
        f"  peak RSS {result['peak_rss_mb']:.0f} MB (interpreter and imports: "
        f"{result['rss_start_mb']:.0f} MB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sizes", default="1,12", help="megapixel sizes: 1 and/or 12")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.repeat)))
        return
    for size in (int(s) for s in args.sizes.split(",")):
        run = subprocess.run(
            [sys.executable, __file__, "--child", str(size), "--repeat", str(args.repeat)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        result = json.loads(run.stdout)
        report(result)
        ratio = result["survey"] / result["floor"]
        if size == 12:
            print(
                f"  targets: survey {ratio:.2f}x floor (<= 5), "
                f"peak RSS {result['peak_rss_mb']:.0f} MB (<= 1536)"
            )
        else:
            print(f"  target: survey {ratio:.2f}x floor (<= 5)")


if __name__ == "__main__":
    main()
