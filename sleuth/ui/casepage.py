"""The case page, live (pictures fetched from the app) or exported (everything embedded).

The export is the investigator's report: the same page as the workbench shows, in one
self-contained HTML file. Its CSS and script are inlined and allowed by hash in the page's
Content-Security-Policy, which allows nothing else: no other script, no request anywhere,
pictures only as ``data:`` URLs. Pictures are made small enough that a 12 MP photo's report
stays under :data:`REPORT_BUDGET` bytes: the photo as JPEG at most :data:`PHOTO_SIDE` pixels a
side, maps as lossy WebP with alpha at most :data:`OVERLAY_SIDE`, crops and other figures as
JPEG.
"""

from __future__ import annotations

import base64
import hashlib
import io
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from PIL import Image

from sleuth import __version__
from sleuth.agent.session import Session
from sleuth.present.overlay import COLOUR_MAP, coloured_overlay, legend_stops
from sleuth.tools import LoadedImage
from sleuth.tools.metadata import ImageMetadata, read_metadata
from sleuth.ui.views import case_view

PHOTO_SIDE = 1600
OVERLAY_SIDE = 480
FIGURE_SIDE = 640
THUMB_SIDE = 240
REPORT_BUDGET = 1_000_000
"""What a report of a 12 MP photo stays under (a test holds it)."""


def live_urls(view: dict[str, Any]) -> dict[str, Any]:
    """Return where the live page fetches its pictures from the app."""
    base = f"/cases/{view['case_id']}"
    names = layer_names(view)
    return {
        "image": f"{base}/image",
        "thumbnail": f"{base}/thumbnail",
        "exif_thumbnail": f"{base}/exif-thumbnail",
        "artifacts": {n: f"{base}/artifacts/{n}" for n in names},
        "overlays": {n: f"{base}/overlays/{n}" for n in names},
    }


def layer_names(view: dict[str, Any]) -> list[str]:
    """Return the names of every artifact the page shows (present files only)."""
    cards = [*view["evidence"], *(e for a in view["answers"] for e in a["evidence"])]
    return [layer["name"] for c in cards for layer in c["layers"] if not layer["missing"]]


def data_url(data: bytes, media: str) -> str:
    """Return ``data`` as a ``data:`` URL."""
    return f"data:{media};base64,{base64.b64encode(data).decode('ascii')}"


def picture_url(picture: Image.Image, side: int, *, fmt: str = "JPEG", quality: int = 80) -> str:
    """Return a picture as a ``data:`` URL, at most ``side`` pixels a side.

    WebP keeps an alpha channel, compressed lossily too (Pillow's default keeps it lossless,
    which for a noisy map costs more than the colours).
    """
    picture = picture.copy()
    picture.thumbnail((side, side))
    if fmt == "JPEG":
        picture = picture.convert("RGB")
    buffer = io.BytesIO()
    extra = {"alpha_quality": quality, "method": 4} if fmt == "WEBP" else {}
    picture.save(buffer, format=fmt, quality=quality, **extra)
    return data_url(buffer.getvalue(), f"image/{fmt.lower()}")


def embedded_urls(
    view: dict[str, Any],
    image: LoadedImage,
    metadata: ImageMetadata,
    artifact: Callable[[str], Path],
) -> dict[str, Any]:
    """Return every picture of the page as a ``data:`` URL, sized for a small report."""
    photo = Image.fromarray(image.full)
    urls: dict[str, Any] = {
        "image": picture_url(photo, PHOTO_SIDE, quality=75),
        "thumbnail": picture_url(photo, THUMB_SIDE),
        "exif_thumbnail": "",
        "artifacts": {},
        "overlays": {},
    }
    if metadata.thumbnail is not None:
        with Image.open(io.BytesIO(metadata.thumbnail.jpeg)) as small:
            urls["exif_thumbnail"] = picture_url(small, THUMB_SIDE)
    placed = {
        layer["name"]
        for c in [*view["evidence"], *(e for a in view["answers"] for e in a["evidence"])]
        for layer in c["layers"]
        if layer["placement"]
    }
    for name in layer_names(view):
        path = artifact(name)
        if name in placed:
            coloured = Image.open(io.BytesIO(coloured_overlay(path, max_side=OVERLAY_SIDE)))
            urls["overlays"][name] = picture_url(coloured, OVERLAY_SIDE, fmt="WEBP", quality=50)
        else:
            with Image.open(path, formats=["PNG"]) as figure:
                urls["artifacts"][name] = picture_url(figure, FIGURE_SIDE, quality=80)
    return urls


def read_case(session: Session, case_id: str) -> dict[str, Any]:
    """Return what the case page needs: the view, the metadata and the image."""
    case = session.case(case_id)
    image = session.image(case_id)
    view = case_view(
        case,
        (image.width, image.height),
        lambda name: session.files.artifact_path(case_id, name),
        session.earlier_cases(case_id),
    )
    return {"view": view, "metadata": read_metadata(image), "image": image}


def render_case(
    templates: jinja2.Environment,
    found: dict[str, Any],
    urls: dict[str, Any],
    inline: dict[str, str] | None = None,
) -> str:
    """Render the case page (``inline``: the CSS, script and CSP of an exported report)."""
    return templates.get_template("case.html").render(
        view=found["view"],
        metadata=found["metadata"],
        urls=urls,
        inline=inline,
        colour_map=COLOUR_MAP,
        legend=legend_stops(),
        version=__version__,
    )


def export_report(templates: jinja2.Environment, session: Session, case_id: str) -> str:
    """Return a stored case as one self-contained HTML report.

    Parameters
    ----------
    templates : jinja2.Environment
        :func:`sleuth.ui.workbench.templates`.
    session : Session
        An open session over the case store.
    case_id : str
        The case.

    Returns
    -------
    str
        The page: the workbench's case view with its pictures embedded, its script and
        styles inline and allowed by hash, no follow-up box, nothing fetched.
    """
    found = read_case(session, case_id)
    urls = embedded_urls(
        found["view"],
        found["image"],
        found["metadata"],
        lambda name: session.files.artifact_path(case_id, name),
    )
    return render_case(templates, found, urls, inline=inline_parts())


def inline_parts() -> dict[str, str]:
    """Return the page's CSS and script, and a CSP that allows exactly them."""
    static = resources.files("sleuth.ui") / "static"
    css = (static / "ui.css").read_text(encoding="utf-8")
    js = (static / "case.js").read_text(encoding="utf-8")
    csp = (
        "default-src 'none'; img-src data:; "
        f"style-src '{_hash(css)}'; script-src '{_hash(js)}'; "
        "base-uri 'none'; form-action 'none'"
    )
    return {"css": css, "js": js, "csp": csp}


def _hash(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "sha256-" + base64.b64encode(digest).decode("ascii")
