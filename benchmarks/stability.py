"""What the stability check costs: the survey alone against the survey plus its copies.

For each image the survey (every survey tool on the whole image) and the survey followed
by the stability check (the pixel tools again on web-style copies, each fused) run side by
side, alternating, the best of ``--repeat`` runs each, on one core:

    python benchmarks/stability.py [--repeat N] [--variants N] [--shared N]

Images: scikit-image photos saved as JPEG, a synthetic 1024x1024 PNG, and ``--shared``
images of the shared image set (``$SLEUTH_SHARED_DATA`` or ``shared/data`` beside the
checkout) when it is there.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

# One core, as the other benchmarks; set before numpy/scipy load their thread pools.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from sleuth.agent import stability  # noqa: E402
from sleuth.agent.context import AgentContext  # noqa: E402
from sleuth.agent.evidence import to_evidence  # noqa: E402
from sleuth.agent.verdict import Evidence, Stability  # noqa: E402
from sleuth.agent.view import CaseView  # noqa: E402
from sleuth.tools import LoadedImage, ToolRegistry, load_image  # noqa: E402
from sleuth.tools.survey import run_survey  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def skimage_photos() -> list[tuple[str, bytes]]:
    """scikit-image photographs, saved as JPEG q90 like a camera would."""
    from skimage import data

    out = []
    for name in ("astronaut", "chelsea", "coffee", "rocket"):
        buf = io.BytesIO()
        Image.fromarray(getattr(data, name)()).save(buf, "JPEG", quality=90)
        out.append((f"skimage {name}", buf.getvalue()))
    return out


def synthetic(size: int = 1024) -> tuple[str, bytes]:
    """A smooth seeded field at a generator's size, as a PNG."""
    rng = np.random.default_rng(0)
    small = Image.fromarray(rng.integers(0, 256, (size // 16, size // 16, 3), np.uint8))
    big = np.asarray(small.resize((size, size), Image.Resampling.BICUBIC), np.float32)
    big += rng.normal(0.0, 1.5, big.shape).astype(np.float32)
    buf = io.BytesIO()
    Image.fromarray(np.clip(big, 0, 255).astype(np.uint8)).save(buf, "PNG")
    return f"synthetic {size}x{size} PNG", buf.getvalue()


def shared_images(count: int) -> list[tuple[str, bytes]]:
    """``count`` images spread evenly over the shared set's manifest; none when absent."""
    root = Path(os.environ.get("SLEUTH_SHARED_DATA", REPO.parent / "shared" / "data"))
    if count <= 0 or not (root / "manifest.csv").is_file():
        print("shared image set not found; skipped", file=sys.stderr)
        return []
    with open(root / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    picked = rows[:: max(1, len(rows) // count)][:count]
    return [(f"shared {r['label']} {r['format']}", (root / r["file"]).read_bytes()) for r in picked]


def survey_evidence(registry: ToolRegistry, image: LoadedImage) -> list[Evidence]:
    """The survey as the agent's survey node runs it, as evidence."""
    done = run_survey(registry, image)
    view, found = CaseView({}), []
    for result in done.results.values():
        found += to_evidence(result, view, offset=len(found), region=None, step=0)
    return found


def best_of(repeat: int, runs: list[Callable[[], object]]) -> list[float]:
    """Run each callable ``repeat`` times, alternating; the best time of each."""
    best = [float("inf")] * len(runs)
    for _ in range(repeat):
        for i, run in enumerate(runs):
            start = time.perf_counter()
            run()
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def main() -> None:
    """Print the survey's seconds without and with the stability check, per image."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    parser.add_argument("--variants", type=int, default=AgentContext.stability_variants)
    parser.add_argument("--shared", type=int, default=10, help="images of the shared set")
    args = parser.parse_args()
    registry = ToolRegistry.discover()
    band = AgentContext().band
    images = [*skimage_photos(), synthetic(), *shared_images(args.shared)]
    checks: list[Stability] = []

    def plain(data: bytes) -> None:
        survey_evidence(registry, load_image(data))  # loaded afresh: no cached planes

    def checked(data: bytes) -> None:
        image = load_image(data)
        evidence = survey_evidence(registry, image)
        checks.append(stability.check(registry, image, evidence, count=args.variants, band=band))

    print(f"survey without and with {args.variants} stability copies, best of {args.repeat}")
    print(f"{'image':28} {'size':>11} {'survey s':>9} {'with s':>8} {'ratio':>6}  p_ai: copies")
    totals, ratios = [0.0, 0.0], []
    for name, data in images:
        image = load_image(data)
        without, with_check = best_of(args.repeat, [partial(plain, data), partial(checked, data)])
        totals[0] += without
        totals[1] += with_check
        ratios.append(with_check / without)
        last = checks[-1]
        copies = ", ".join(f"{c.p_ai:.2f}" for c in last.variants)
        flag = "" if last.stable else "  UNSTABLE"
        print(
            f"{name:28} {image.width:>5}x{image.height:<5} {without:9.3f} {with_check:8.3f} "
            f"{with_check / without:6.2f}  {last.p_original:.2f}: {copies}{flag}"
        )
    print(
        f"{'all':28} {'':11} {totals[0]:9.3f} {totals[1]:8.3f} {totals[1] / totals[0]:6.2f}"
        f"  (median ratio {statistics.median(ratios):.2f})"
    )


if __name__ == "__main__":
    main()
