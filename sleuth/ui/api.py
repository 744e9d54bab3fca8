"""The page's calls: start an analysis (upload or allowed path), poll a job, ask a question."""

from __future__ import annotations

import unicodedata
from pathlib import PurePath

import anyio.to_thread
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sleuth.agent.cases import check_case_id
from sleuth.servers.mcp.inputs import read_path
from sleuth.tools import SleuthError
from sleuth.ui.workbench import Workbench, error

MAX_QUESTION = 2000
MAX_NAME = 200
FORM_OVERHEAD = 64 * 1024
"""Bytes a multipart form may add around the file."""


def routes(bench: Workbench) -> list[Route]:
    """Return the API routes."""

    async def start_analysis(request: Request) -> Response:
        length = request.headers.get("content-length")
        if length is None or not length.isdigit():
            return error("send the upload with a Content-Length", 411)
        if int(length) > bench.max_upload_bytes + FORM_OVERHEAD:
            limit = bench.max_upload_bytes / 1024 / 1024
            return error(f"the upload is larger than the {limit:g} MB this workbench takes", 413)
        try:
            async with request.form(max_files=1, max_fields=4) as form:
                upload, path = form.get("image"), form.get("path")
                if isinstance(upload, UploadFile):
                    data = await upload.read()
                    name = clean_name(form_file_name(upload.filename or "upload"))
                elif isinstance(path, str) and path.strip():
                    data = await anyio.to_thread.run_sync(read_path, path.strip(), bench.policy)
                    name = clean_name(PurePath(path.strip()).name)
                else:
                    return error("choose an image file, or give a path under an allowed folder")
            if not data:
                return error("the file is empty")
            job = bench.jobs.analyse(data, name)
        except SleuthError as err:
            return error(err)
        return JSONResponse(job.public(), status_code=202)

    async def job_status(request: Request) -> Response:
        job = bench.jobs.get(request.path_params["job_id"])
        if job is None:
            return error("no such job (it may have finished long ago)", 404)
        return JSONResponse(job.public())

    async def ask(request: Request) -> Response:
        case_id = request.path_params["case_id"]
        try:
            check_case_id(case_id)
            payload = await request.json()
        except SleuthError as err:
            return error(err)
        except ValueError:
            return error('send JSON: {"question": "..."}')
        question = payload.get("question") if isinstance(payload, dict) else None
        if not isinstance(question, str) or not question.strip():
            return error("the question is empty; ask something about the case")
        if len(question) > MAX_QUESTION:
            return error(f"the question is longer than {MAX_QUESTION} characters")
        try:
            await bench.read(lambda session: session.case(case_id))  # unknown case: 404 now
            job = bench.jobs.ask(case_id, question.strip())
        except SleuthError as err:
            return error(err)
        return JSONResponse(job.public(), status_code=202)

    return [
        Route("/api/analyses", start_analysis, methods=["POST"]),
        Route("/api/jobs/{job_id}", job_status),
        Route("/api/cases/{case_id}/questions", ask, methods=["POST"]),
    ]


def form_file_name(name: str) -> str:
    """Undo the escaping browsers apply to a multipart file name (``"`` is sent as ``%22``).

    Examples
    --------
    >>> form_file_name('say %22cheese%22.jpg')
    'say "cheese".jpg'
    """
    return name.replace("%22", '"').replace("%0D", "").replace("%0A", "")


def clean_name(name: str) -> str:
    """Return a file name fit to show: its last part, printable, at most :data:`MAX_NAME`.

    Examples
    --------
    >>> clean_name("../x/<b>.png"), clean_name("")
    ('<b>.png', 'upload')
    """
    last = name.replace("\\", "/").rsplit("/", 1)[-1]
    printable = "".join(c for c in last if unicodedata.category(c)[0] != "C")
    return printable[:MAX_NAME] or "upload"
