"""Pictures the pages show: the case's image, its thumbnail, artifacts and their overlays.

Every picture is re-encoded by Pillow from the stored file (never passed through as the
upload's bytes), so the browser only ever receives a PNG or JPEG this app wrote.
"""

from __future__ import annotations

import io

from PIL import Image
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sleuth.agent.cases import UnknownCaseError, check_case_id
from sleuth.agent.session import Session
from sleuth.present.overlay import coloured_overlay
from sleuth.present.report import small_png
from sleuth.servers.mcp.resources import ARTIFACT_FILE
from sleuth.tools import SleuthError
from sleuth.tools.metadata import read_metadata
from sleuth.ui.workbench import Workbench, error

VIEW_MAX_SIDE = 4096
"""Longest side of the image the case page shows (pan, zoom and loupe work on it)."""
THUMB_SIDE = 240


def jpeg(picture: Image.Image, max_side: int, quality: int = 90) -> bytes:
    """Return ``picture`` as RGB JPEG, at most ``max_side`` pixels a side."""
    picture = picture.convert("RGB")
    picture.thumbnail((max_side, max_side))
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def routes(bench: Workbench) -> list[Route]:
    """Return the picture routes."""

    def picture(kind: str, session: Session, case_id: str, name: str | None) -> bytes:
        if kind in ("image", "thumbnail"):
            image = session.image(case_id)
            side = VIEW_MAX_SIDE if kind == "image" else THUMB_SIDE
            return jpeg(Image.fromarray(image.full), side)
        if kind == "exif-thumbnail":
            found = read_metadata(session.image(case_id)).thumbnail
            if found is None:
                raise UnknownCaseError(f"case {case_id}'s image has no embedded thumbnail")
            with Image.open(io.BytesIO(found.jpeg)) as small:
                return jpeg(small, THUMB_SIDE)
        if name is None or not ARTIFACT_FILE.fullmatch(name):
            raise SleuthError("not an artifact name (e.g. ela-heatmap.png)")
        case = session.case(case_id)
        names = {n for e in case.verdict.evidence for n in e.artifacts} if case.verdict else set()
        names |= {n for a in case.answers for e in a.evidence for n in e.artifacts}
        path = session.files.artifact_path(case_id, name)
        if name not in names or not path.is_file():
            raise UnknownCaseError(f"case {case_id} has no artifact {name}")
        return coloured_overlay(path) if kind == "overlay" else small_png(path)

    def handler(kind: str):  # type: ignore[no-untyped-def]
        async def serve(request: Request) -> Response:
            case_id = request.path_params["case_id"]
            name = request.path_params.get("name")
            try:
                check_case_id(case_id)
                data = await bench.read(lambda s: picture(kind, s, case_id, name))
            except SleuthError as err:
                return error(err)
            except (OSError, ValueError, Image.DecompressionBombError):
                return error("the picture is unreadable", 500)
            media = (
                "image/jpeg" if kind in ("image", "thumbnail", "exif-thumbnail") else "image/png"
            )
            return Response(
                data, media_type=media, headers={"cache-control": "private, max-age=3600"}
            )

        return serve

    return [
        Route("/cases/{case_id}/image", handler("image")),
        Route("/cases/{case_id}/thumbnail", handler("thumbnail")),
        Route("/cases/{case_id}/exif-thumbnail", handler("exif-thumbnail")),
        Route("/cases/{case_id}/artifacts/{name}", handler("artifact")),
        Route("/cases/{case_id}/overlays/{name}", handler("overlay")),
    ]
