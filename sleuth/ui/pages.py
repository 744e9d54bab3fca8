"""The pages: the case list, a case, and the exported report."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sleuth.agent.cases import check_case_id
from sleuth.agent.session import Session
from sleuth.present.overlay import COLOUR_MAP, legend_stops
from sleuth.present.report import render_report
from sleuth.tools import SleuthError
from sleuth.tools.metadata import read_metadata
from sleuth.ui.views import case_view
from sleuth.ui.workbench import Workbench, status_of


def routes(bench: Workbench) -> list[Route]:
    """Return the page routes."""

    async def case_list(request: Request) -> Response:
        try:
            summaries = await bench.read(lambda session: session.cases())
        except SleuthError as err:
            return bench.page("problem.html", status_of(err), message=str(err))
        rows = [
            {
                "case_id": s.case_id,
                "name": s.name or "(no file name)",
                "label": s.label or "interrupted",
                "p_ai": s.p_ai,
                "updated": s.updated[:16].replace("T", " "),
                "questions": s.questions,
            }
            for s in summaries
        ]
        folders = [str(root) for root in bench.policy.roots]
        limit = f"{bench.max_upload_bytes / 1024 / 1024:g}"
        return bench.page("cases.html", rows=rows, folders=folders, upload_mb=limit)

    def read_case(session: Session, case_id: str) -> dict[str, Any]:
        case = session.case(case_id)
        image = session.image(case_id)
        view = case_view(
            case,
            (image.width, image.height),
            lambda name: session.files.artifact_path(case_id, name),
            session.earlier_cases(case_id),
        )
        return {"view": view, "metadata": read_metadata(image)}

    async def case_page(request: Request) -> Response:
        case_id = request.path_params["case_id"]
        try:
            check_case_id(case_id)
            found = await bench.read(lambda session: read_case(session, case_id))
        except SleuthError as err:
            return bench.page("problem.html", status_of(err), message=str(err))
        return bench.page(
            "case.html",
            view=found["view"],
            metadata=found["metadata"],
            colour_map=COLOUR_MAP,
            legend=legend_stops(),
        )

    def report(session: Session, case_id: str) -> str:
        return render_report(
            session.case(case_id),
            session.image(case_id),
            lambda name: session.files.artifact_path(case_id, name),
        )

    async def export(request: Request) -> Response:
        case_id = request.path_params["case_id"]
        try:
            check_case_id(case_id)
            html = await bench.read(lambda session: report(session, case_id))
        except SleuthError as err:
            return bench.page("problem.html", status_of(err), message=str(err))
        disposition = f'attachment; filename="sleuth-{case_id}.html"'
        return Response(
            html,
            media_type="text/html; charset=utf-8",
            headers={"content-disposition": disposition},
        )

    return [
        Route("/", case_list),
        Route("/cases/{case_id}", case_page),
        Route("/cases/{case_id}/report", export),
    ]
