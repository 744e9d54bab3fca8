"""The localisation track alone, on a chosen seed and half of the host photos.

``sleuth eval`` runs the track after every analysis (seed 0, all real photos as hosts).
This script runs only the track, so candidate regions can be developed on one part of the
set and judged on another:

    python benchmarks/localisation.py MANIFEST... [--count N] [--seed S] [--hosts HALF]

``--hosts dev`` keeps the real photos whose file key hashes to an even number, ``held``
the odd ones, ``all`` every one (as ``sleuth eval``). Each host half also keeps only the
AI images of the same hash parity as donors, so no pasted content is shared either. Prints
the mean IoU of the best and of the first candidate, and the hit rate at IoU >= 0.5,
overall and per kind of pasted region.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

from sleuth.evaluation.localisation import evaluate_localisation  # noqa: E402
from sleuth.evaluation.sources import Sample, read_sources  # noqa: E402


def host_half(sample: Sample) -> str:
    """``"dev"`` or ``"held"``: the parity of the first byte of the key's sha256."""
    digest = hashlib.sha256(sample.key.encode("utf-8")).digest()
    return "dev" if digest[0] % 2 == 0 else "held"


def main(argv: list[str] | None = None) -> int:
    """Run the track and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", nargs="+", type=Path)
    parser.add_argument("--count", type=int, default=40, help="composites")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hosts", choices=("all", "dev", "held"), default="all")
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args(argv)
    samples = read_sources(args.sources)
    if args.hosts != "all":
        samples = [s for s in samples if host_half(s) == args.hosts]
    start = time.perf_counter()
    loc = evaluate_localisation(samples, count=args.count, jobs=args.jobs, seed=args.seed)
    seconds = time.perf_counter() - start
    print(f"hosts {args.hosts}, seed {args.seed}, {loc['n']} composites, {seconds:.0f} s")
    for name, s in {"all": loc, **loc["by_kind"]}.items():
        print(
            f"{name:10s} n {s['n']:3d}  best IoU {s['mean_iou']:.3f}  "
            f"first IoU {s['mean_top1_iou']:.3f}  hit rate {s['hit_rate']:.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
