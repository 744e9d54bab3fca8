"""The pages: the case list, a case, and the exported report."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sleuth.agent.cases import check_case_id
from sleuth.tools import SleuthError
from sleuth.ui.casepage import export_report, live_urls, read_case, render_case
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

    async def case_page(request: Request) -> Response:
        case_id = request.path_params["case_id"]
        try:
            check_case_id(case_id)
            found = await bench.read(lambda session: read_case(session, case_id))
        except SleuthError as err:
            return bench.page("problem.html", status_of(err), message=str(err))
        html = render_case(bench.templates, found, live_urls(found["view"]))
        return Response(html, media_type="text/html; charset=utf-8")

    async def export(request: Request) -> Response:
        case_id = request.path_params["case_id"]
        try:
            check_case_id(case_id)
            html = await bench.read(
                lambda session: export_report(bench.templates, session, case_id)
            )
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
