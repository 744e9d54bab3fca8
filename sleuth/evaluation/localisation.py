"""Localisation track: composites with a known pasted box, and how well the survey finds it."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from sleuth.evaluation.sources import Sample
from sleuth.tools import Box, LoadedImage, SleuthError, ToolRegistry, load_image
from sleuth.tools.survey import run_survey
from sleuth.tools.threads import worker_pool

MIN_SIDE = 256
HIT_IOU = 0.5


@dataclass(frozen=True)
class Composite:
    """A composite image and the box of its pasted region (original pixels)."""

    data: bytes
    box: Box
    kind: str


def _jpeg(pixels: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=quality)
    with Image.open(buf) as img:
        return np.asarray(img.convert("RGB"))


def make_composite(
    host: np.ndarray, donor: np.ndarray | None, *, rng: np.random.Generator
) -> Composite:
    """Paste a region into a real photo and return the JPEG composite and the box.

    With a ``donor`` (an AI-generated image at least as large as the region), a crop of
    it is pasted; without one, the host's own region is downscaled 2x, upsampled back
    (bicubic) and recompressed at JPEG quality 70 before it is put back. The composite
    is saved as a quality-95 JPEG.

    Parameters
    ----------
    host : ndarray of uint8, shape (H, W, 3)
        The real photo; not modified.
    donor : ndarray of uint8, shape (h, w, 3), optional
    rng : numpy Generator
        Picks the region's size (a quarter to a third of each side) and place.
    """
    height, width = host.shape[:2]
    bw = int(width * rng.uniform(0.25, 0.34))
    bh = int(height * rng.uniform(0.25, 0.34))
    x0 = int(rng.integers(0, width - bw + 1))
    y0 = int(rng.integers(0, height - bh + 1))
    out = host.copy()
    if donor is not None and donor.shape[0] >= bh and donor.shape[1] >= bw:
        dy = int(rng.integers(0, donor.shape[0] - bh + 1))
        dx = int(rng.integers(0, donor.shape[1] - bw + 1))
        out[y0 : y0 + bh, x0 : x0 + bw] = donor[dy : dy + bh, dx : dx + bw]
        kind = "generated"
    else:
        patch = Image.fromarray(host[y0 : y0 + bh, x0 : x0 + bw])
        small = patch.resize((max(1, bw // 2), max(1, bh // 2)), Image.Resampling.BICUBIC)
        up = np.asarray(small.resize((bw, bh), Image.Resampling.BICUBIC))
        out[y0 : y0 + bh, x0 : x0 + bw] = _jpeg(up, 70)
        kind = "upsampled"
    buf = io.BytesIO()
    Image.fromarray(out).save(buf, format="JPEG", quality=95)
    return Composite(buf.getvalue(), Box(x0=x0, y0=y0, x1=x0 + bw, y1=y0 + bh), kind)


def _load(sample: Sample) -> LoadedImage | None:
    try:
        image = load_image(sample.path)
    except (SleuthError, OSError):
        return None
    return image if min(image.size) >= MIN_SIDE else None


CompositeTask = tuple[Sample, Sample | None, int]
"""A composite to make: the real host, the AI-generated donor (None: upsample), the seed."""


def composite_tasks(samples: list[Sample], *, count: int, seed: int = 0) -> list[CompositeTask]:
    """Choose ``count`` composites from a set: real hosts, every other one with a fake donor.

    At most one composite per real image; deterministic for a ``seed``.
    """
    rng = np.random.default_rng(seed)
    reals = [s for s in samples if s.label == "real"]
    fakes = [s for s in samples if s.label == "fake"]
    if not reals or count <= 0:
        return []
    hosts = rng.choice(len(reals), size=min(count, len(reals)), replace=False)
    tasks: list[CompositeTask] = []
    for i, h in enumerate(hosts):
        donor = fakes[int(rng.integers(len(fakes)))] if fakes and i % 2 == 0 else None
        tasks.append((reals[int(h)], donor, seed + i))
    return tasks


def build_composite(task: CompositeTask) -> Composite | None:
    """Make a task's composite (None when the host is unreadable or too small)."""
    host_sample, donor_sample, seed = task
    host = _load(host_sample)
    if host is None:
        return None
    donor = _load(donor_sample) if donor_sample is not None else None
    return make_composite(
        host.full, donor.full if donor is not None else None, rng=np.random.default_rng(seed)
    )


def _score(task: CompositeTask) -> dict[str, Any] | None:
    composite = build_composite(task)
    if composite is None:
        return None
    image = load_image(composite.data)
    survey = run_survey(ToolRegistry.discover(), image)
    ious = [c.box.iou(composite.box) for c in survey.candidates]
    return {
        "kind": composite.kind,
        "best_iou": max(ious, default=0.0),
        "top1_iou": ious[0] if ious else 0.0,
        "candidates": len(ious),
    }


def evaluate_localisation(
    samples: list[Sample], *, count: int, jobs: int = 1, seed: int = 0
) -> dict[str, Any]:
    """Build ``count`` composites from the set's real and fake images and score the boxes.

    Half the composites paste a crop of an AI-generated image, half an upsampled and
    recompressed copy of the host's own region. The predicted boxes are the survey's
    candidate regions (at most 5).

    Returns
    -------
    dict
        ``n``, ``mean_iou`` (of the best candidate), ``mean_top1_iou``, ``hit_rate``
        (share with a candidate at IoU >= 0.5), the same per ``kind``, and ``rows``.
    """
    tasks = composite_tasks(samples, count=count, seed=seed)
    if not tasks:
        return {
            "n": 0,
            "mean_iou": float("nan"),
            "mean_top1_iou": float("nan"),
            "hit_rate": float("nan"),
            "by_kind": {},
            "rows": [],
        }
    if jobs > 1:
        with worker_pool(jobs) as pool:
            rows = [r for r in pool.map(_score, tasks) if r is not None]
    else:
        rows = [r for r in map(_score, tasks) if r is not None]
    by_kind = {k: _summary([r for r in rows if r["kind"] == k]) for k in ("generated", "upsampled")}
    return {**_summary(rows), "by_kind": by_kind, "rows": rows}


def _summary(rows: list[dict[str, Any]]) -> dict[str, float]:
    if not rows:
        return {
            "n": 0,
            "mean_iou": float("nan"),
            "mean_top1_iou": float("nan"),
            "hit_rate": float("nan"),
        }
    best = np.array([r["best_iou"] for r in rows])
    return {
        "n": len(rows),
        "mean_iou": float(best.mean()),
        "mean_top1_iou": float(np.mean([r["top1_iou"] for r in rows])),
        "hit_rate": float((best >= HIT_IOU).mean()),
    }
