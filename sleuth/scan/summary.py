"""The scan's HTML summary: counts, the p_ai histogram, galleries, errors. One file.

Rows hold text read from files (paths, declared generators); the template escapes all of
it, and the page's Content-Security-Policy allows no script and no request: thumbnails are
``data:`` URLs made here.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import io
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from PIL import Image

from sleuth.scan.rows import shown
from sleuth.scan.sources import ImageRef, read_ref
from sleuth.tools import ImageLimits, SleuthError, load_image

GALLERY = 24
ERRORS_SHOWN = 200
BINS = 20
THUMB_SIDE = 160


@dataclass
class Tally:
    """What the summary shows, gathered one row at a time (the rows are not kept)."""

    total: int = 0
    labels: Counter[str] = field(default_factory=Counter)
    routes: Counter[str] = field(default_factory=Counter)
    histogram: list[int] = field(default_factory=lambda: [0] * BINS)
    suspicious: list[tuple[float, int, dict[str, Any]]] = field(default_factory=list)
    declared: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    error_count: int = 0
    groups: dict[int, int] = field(default_factory=dict)

    def add(self, row: dict[str, Any]) -> None:
        """Count one row."""
        self.total += 1
        self.labels[row.get("label") or "error"] += 1
        self.routes[row["route"]] += 1
        if row["route"] == "error":
            self.error_count += 1
            if len(self.errors) < ERRORS_SHOWN:
                self.errors.append(row)
        if row.get("p_ai") is None:
            return
        self.histogram[min(int(row["p_ai"] * BINS), BINS - 1)] += 1
        if row["route"] == "duplicate":
            return
        entry = (row["p_ai"], -self.total, row)
        if len(self.suspicious) < GALLERY:
            heapq.heappush(self.suspicious, entry)
        else:
            heapq.heappushpop(self.suspicious, entry)
        declares = row.get("declared_generator") or row.get("declared_source")
        if (declares or row.get("c2pa_signer")) and len(self.declared) < GALLERY:
            self.declared.append(row)


def write_summary(tally: Tally, path: Path) -> Path:
    """Write the summary page of a scan to ``path``."""
    suspicious = [row for _, _, row in sorted(tally.suspicious, reverse=True)]
    thumbs = {shown(r): _thumbnail(r) for r in [*suspicious, *tally.declared]}
    sizes = Counter(tally.groups.values())
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("sleuth.scan", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    page = environment.get_template("summary.html").render(
        total=tally.total,
        labels=tally.labels.most_common(),
        routes=tally.routes.most_common(),
        histogram=tally.histogram,
        peak=max(tally.histogram) or 1,
        bins=BINS,
        suspicious=suspicious,
        declared=tally.declared,
        thumbs=thumbs,
        errors=tally.errors,
        error_count=tally.error_count,
        groups=len(sizes),
        grouped=sum(sizes.values()),
        shown=shown,
    )
    temporary = path.with_suffix(".html.part")
    temporary.write_text(page, encoding="utf-8")
    temporary.replace(path)
    return path


def _thumbnail(row: dict[str, Any]) -> str | None:
    """Return a small JPEG data URL of a row's image, or None when it cannot be read now.

    Only bytes whose sha256 is the row's are decoded, and in this process: a worker has
    already decoded those very bytes within the limits (a decoding process per picture,
    as for untrusted input, cost the driver about 0.2 s each). Bytes that changed since
    the scan get no thumbnail.
    """
    try:
        raw = read_ref(ImageRef(row["path"], row.get("member")))
    except OSError:
        return None
    if hashlib.sha256(raw).hexdigest() != row.get("sha256"):
        return None
    try:
        image = load_image(raw, limits=ImageLimits(decode_seconds=0))
    except SleuthError:
        return None
    picture = Image.fromarray(image.full)
    picture.thumbnail((THUMB_SIDE, THUMB_SIDE))
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=75)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
