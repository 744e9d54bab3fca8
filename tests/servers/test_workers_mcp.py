"""Analyses in worker processes: concurrent calls, the busy bound, a worker that dies.

The server runs in-process behind the real mcp ``Client``, made with ``processes=True``;
the plugins of :mod:`tests.tools.failing_plugins` are installed as a distribution, which
the worker processes discover as the server does.
"""

import sys
import time

import anyio
import pytest
from mcp import Client

from sleuth.servers.mcp.server import create_server
from sleuth.servers.mcp.untrusted import MarkedAnswer, MarkedCase, MarkedVerdict
from sleuth.settings import Settings
from sleuth.tools import ToolRegistry
from tests.servers.mcp_client import error_text, run
from tests.tools import failing_plugins as plugins

pytestmark = pytest.mark.slow


@pytest.fixture
def site(tmp_path, monkeypatch):
    """Install a failing-plugin scenario where this process and its workers find it."""

    def put(scenario: str):
        root = plugins.install(tmp_path / "site", scenario)
        monkeypatch.syspath_prepend(str(root))
        return root

    yield put
    sys.modules.pop(plugins.MODULE, None)


def test_concurrent_analyses_in_worker_processes_store_readable_cases(settings, image_b64):
    progress: dict[int, list[str]] = {}

    async def body():
        server = create_server(settings=settings, processes=True, running=2, waiting=8)
        async with Client(server) as client:

            async def analyse(i: int):
                progress[i] = []

                async def on_progress(done, total, message):
                    progress[i].append(message)

                return await client.call_tool(
                    "analyze_image", {"image_base64": image_b64}, progress_callback=on_progress
                )

            results = [None] * 5
            async with anyio.create_task_group() as group:
                for i in range(5):

                    async def one(i=i):
                        results[i] = await analyse(i)

                    group.start_soon(one)
            cases = []
            for result in results:
                assert not result.is_error, result.content
                verdict = MarkedVerdict.model_validate(result.structured_content)
                stored = await client.call_tool("get_case", {"case_id": verdict.case_id})
                assert not stored.is_error, stored.content
                cases.append((verdict, MarkedCase.model_validate(stored.structured_content)))
            asked = await client.call_tool(
                "ask_followup", {"case_id": cases[0][0].case_id, "question": "zoom on region 1"}
            )
            return cases, asked

    cases, asked = run(body)
    assert len({verdict.case_id for verdict, _ in cases}) == 5
    for i, (verdict, case) in enumerate(cases):
        assert case.verdict.case_id == verdict.case_id
        assert (case.verdict.label, case.verdict.p_ai) == (verdict.label, verdict.p_ai)
        assert len(progress[i]) == len(verdict.steps)  # the steps came through the pipe
    first = cases[0][0]
    for verdict, _ in cases:  # each process reached the same verdict
        assert (verdict.label, verdict.p_ai) == (first.label, first.p_ai)
        assert verdict.evidence == first.evidence
    assert not asked.is_error, asked.content
    assert MarkedAnswer.model_validate(asked.structured_content).evidence


def test_calls_beyond_the_queue_are_busy_while_a_worker_process_holds_one(
    site, tmp_path, image_b64
):
    root = site("hold")
    settings = Settings(data_dir=tmp_path / "data")
    results = {}

    async def body():
        server = create_server(settings=settings, processes=True, running=1, waiting=0)
        async with Client(server) as client:

            async def hold():
                results["hold"] = await client.call_tool(
                    "analyze_image", {"image_base64": image_b64}
                )

            async with anyio.create_task_group() as group:
                group.start_soon(hold)
                deadline = time.monotonic() + 60
                while not (root / "started").exists() and time.monotonic() < deadline:
                    await anyio.sleep(0.05)
                try:  # the one worker is held: no room to run or wait
                    results["busy"] = await client.call_tool(
                        "analyze_image", {"image_base64": image_b64}
                    )
                    results["tool"] = await client.call_tool(
                        "run_tool", {"tool": "ela", "image_base64": image_b64}
                    )
                finally:
                    (root / "release").touch()
            results["after"] = await client.call_tool("analyze_image", {"image_base64": image_b64})

    run(body)
    for call in ("busy", "tool"):
        assert "the server is busy (1 jobs running, 0 waiting)" in error_text(results[call])
    assert not results["hold"].is_error, results["hold"].content
    assert not results["after"].is_error, results["after"].content


def test_a_worker_process_that_dies_fails_its_call_only(site, tmp_path, image_b64):
    root = site("exit")
    settings = Settings(data_dir=tmp_path / "data")

    async def body():
        server = create_server(settings=settings, processes=True, running=2)
        async with Client(server) as client:
            died = await client.call_tool("analyze_image", {"image_base64": image_b64})
            again = await client.call_tool("analyze_image", {"image_base64": image_b64})
            listed = await client.list_tools()
            return died, again, listed

    died, again, listed = run(body)
    assert (root / "exited").exists()  # the plugin did end its process
    message = error_text(died)
    assert f"the worker process running this call exited with code {plugins.EXIT_CODE}" in message
    assert "try the call again" in message and "\n" not in message
    assert not again.is_error, again.content  # a fresh worker took the next call
    verdict = MarkedVerdict.model_validate(again.structured_content)
    assert "acme_exit" not in verdict.failed_tools
    assert "analyze_image" in {t.name for t in listed.tools}


def test_worker_processes_discover_their_own_tools(settings):
    with pytest.raises(ValueError, match="leave out registry"):
        create_server(ToolRegistry.discover(), settings, processes=True)


def math_threads(bench, progress) -> list[int]:
    """A job: the thread count of every math library loaded in the worker."""
    from threadpoolctl import threadpool_info

    return [pool["num_threads"] for pool in threadpool_info()]


def test_worker_processes_run_one_math_thread_each(settings):
    from threadpoolctl import threadpool_info

    from sleuth.servers.mcp.pool import Processes

    assert any(pool["num_threads"] > 1 for pool in threadpool_info())  # else nothing to show
    pool = Processes(settings, size=1)
    try:
        counts = pool.call(math_threads, (), lambda step: None)
    finally:
        pool.close()
    assert counts and set(counts) == {1}  # numpy's BLAS at least, limited to one thread
