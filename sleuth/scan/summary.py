"""The scan's HTML summary: counts, the p_ai histogram, galleries, errors. One file.

Rows hold text read from files (paths, declared generators); the template escapes all of
it, and the page's Content-Security-Policy allows no script and no request: thumbnails are
``data:`` URLs made here.
"""

from __future__ import annotations

import base64
import io
from collections import Counter
from pathlib import Path
from typing import Any

import jinja2
from PIL import Image

from sleuth.scan.rows import shown
from sleuth.scan.sources import ImageRef, read_ref
from sleuth.tools import SleuthError, load_image

GALLERY = 24
ERRORS_SHOWN = 200
BINS = 20
THUMB_SIDE = 160


def write_summary(rows: list[dict[str, Any]], path: Path) -> Path:
    """Write the summary page of ``rows`` to ``path``."""
    analysed = [r for r in rows if r.get("p_ai") is not None]
    suspicious = sorted(
        (r for r in analysed if r["route"] != "duplicate"), key=lambda r: -r["p_ai"]
    )[:GALLERY]
    declared = [
        r
        for r in analysed
        if r["route"] != "duplicate"
        and (r.get("declared_generator") or r.get("declared_source") or r.get("c2pa_signer"))
    ][:GALLERY]
    counts = [0] * BINS
    for r in analysed:
        counts[min(int(r["p_ai"] * BINS), BINS - 1)] += 1
    errors = [r for r in rows if r["route"] == "error"]
    groups = Counter(r["near_group"] for r in rows if r.get("near_group"))
    thumbs = {shown(r): _thumbnail(r) for r in [*suspicious, *declared]}
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("sleuth.scan", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    page = environment.get_template("summary.html").render(
        total=len(rows),
        labels=Counter(r.get("label") or "error" for r in rows).most_common(),
        routes=Counter(r["route"] for r in rows).most_common(),
        histogram=counts,
        peak=max(counts) or 1,
        bins=BINS,
        suspicious=suspicious,
        declared=declared,
        thumbs=thumbs,
        errors=errors[:ERRORS_SHOWN],
        error_count=len(errors),
        groups=len(groups),
        grouped=sum(groups.values()),
        shown=shown,
    )
    temporary = path.with_suffix(".html.part")
    temporary.write_text(page, encoding="utf-8")
    temporary.replace(path)
    return path


def _thumbnail(row: dict[str, Any]) -> str | None:
    """Return a small JPEG data URL of a row's image, or None when it cannot be read now."""
    try:
        image = load_image(read_ref(ImageRef(row["path"], row.get("member"))))
    except (OSError, SleuthError):
        return None
    picture = Image.fromarray(image.full)
    picture.thumbnail((THUMB_SIDE, THUMB_SIDE))
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=75)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
