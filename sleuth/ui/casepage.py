"""The case page, live (pictures fetched from the app) or exported (everything embedded).

The export is the investigator's report: the same page as the workbench shows, in one
self-contained HTML file. Its CSS and script are inlined and allowed by hash in the page's
Content-Security-Policy, which allows nothing else: no other script, no request anywhere,
pictures only as ``data:`` URLs: the photo as JPEG, maps as lossy WebP with alpha, crops and
other figures as JPEG. The pictures are sized to keep the page under :data:`REPORT_BUDGET`
bytes: each :data:`SIZES` step, from the sharpest, is tried until the page fits (the last
one is kept whatever its size).
"""

from __future__ import annotations

import base64
import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass
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

THUMB_SIDE = 240
REPORT_BUDGET = 1_000_000
"""What a report stays under when the smallest pictures allow (a 12 MP photo's: a test)."""


@dataclass(frozen=True)
class Sizes:
    """Longest sides and qualities of an exported report's pictures."""

    photo: int
    photo_quality: int
    overlay: int
    overlay_quality: int
    figure: int
    figure_quality: int


SIZES = (
    Sizes(1600, 75, 480, 50, 640, 80),
    Sizes(1280, 70, 384, 40, 512, 70),
    Sizes(1024, 65, 256, 35, 384, 60),
    Sizes(768, 60, 192, 30, 256, 55),
)


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
    sizes: Sizes = SIZES[0],
) -> dict[str, Any]:
    """Return every picture of the page as a ``data:`` URL, at ``sizes``."""
    photo = Image.fromarray(image.full)
    urls: dict[str, Any] = {
        "image": picture_url(photo, sizes.photo, quality=sizes.photo_quality),
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
            coloured = Image.open(io.BytesIO(coloured_overlay(path, max_side=sizes.overlay)))
            urls["overlays"][name] = picture_url(
                coloured, sizes.overlay, fmt="WEBP", quality=sizes.overlay_quality
            )
        else:
            with Image.open(path, formats=["PNG"]) as figure:
                urls["artifacts"][name] = picture_url(
                    figure, sizes.figure, quality=sizes.figure_quality
                )
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
    inline = inline_parts()
    page = ""
    for sizes in SIZES:
        urls = embedded_urls(
            found["view"],
            found["image"],
            found["metadata"],
            lambda name: session.files.artifact_path(case_id, name),
            sizes,
        )
        page = render_case(templates, found, urls, inline=inline)
        if len(page.encode("utf-8")) < REPORT_BUDGET:
            break
    return page


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
