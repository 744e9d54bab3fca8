"""`sleuth serve` in its own process: over stdio and over streamable HTTP, with the real Client."""

import subprocess
import sys

import anyio
import httpx
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from sleuth.servers.mcp.untrusted import MarkedAnswer, MarkedVerdict
from tests.servers.mcp_client import error_text, http_server, run

pytestmark = pytest.mark.slow

QUESTION = "what did the noise tool show in box 1?"


def test_stdio_analysis_then_a_follow_up_from_a_second_process(env, allowed):
    def params():
        return StdioServerParameters(
            command=sys.executable,
            args=["-m", "sleuth", "serve", "--allow-dir", str(allowed), "--expose-tools"],
            env=env,
        )

    progress = []

    async def on_progress(done, total, message):
        progress.append(message)

    async def first():
        async with Client(params()) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            result = await client.call_tool(
                "analyze_image", {"path": "composite.png"}, progress_callback=on_progress
            )
            return names, result

    names, result = run(first)
    assert {"analyze_image", "ask_followup", "get_case", "run_tool", "ela", "zoom"} <= names
    verdict = MarkedVerdict.model_validate(result.structured_content)
    assert progress and len(progress) == len(verdict.steps)

    async def second():
        async with Client(params()) as client:
            return await client.call_tool(
                "ask_followup", {"case_id": verdict.case_id, "question": QUESTION}
            )

    answer = MarkedAnswer.model_validate(run(second).structured_content)
    assert {e.tool for e in answer.evidence} == {"noise"}


def test_http_sixteen_concurrent_analyses_all_land(env, tmp_path, allowed):
    with http_server(env, tmp_path, "--allow-dir", str(allowed)) as url:

        async def one(results):
            async with Client(url) as client:
                results.append(await client.call_tool("analyze_image", {"path": "composite.png"}))

        async def many():
            results = []
            async with anyio.create_task_group() as group:
                for _ in range(16):
                    group.start_soon(one, results)
            return results

        results = run(many)
        assert [r.is_error for r in results] == [False] * 16, [r.content for r in results]
        ids = {MarkedVerdict.model_validate(r.structured_content).case_id for r in results}
        assert len(ids) == 16

        async def check():
            async with Client(url) as client:
                cases = [await client.call_tool("get_case", {"case_id": i}) for i in sorted(ids)]
                answer = await client.call_tool(
                    "ask_followup", {"case_id": min(ids), "question": QUESTION}
                )
                return cases, answer

        cases, answer = run(check)
        assert all(not c.is_error and c.structured_content["verdict"] for c in cases)
        parsed = MarkedAnswer.model_validate(answer.structured_content)
        assert {e.tool for e in parsed.evidence} == {"noise"}


def test_http_refuses_foreign_origins(env, tmp_path, allowed):
    with http_server(env, tmp_path) as url:
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
        headers = {"Accept": "application/json, text/event-stream"}
        foreign = httpx.post(url, json=body, headers=headers | {"Origin": "https://evil.example"})
        assert foreign.status_code == 403


def test_off_loopback_needs_a_token(env, tmp_path):
    run_ = subprocess.run(
        [sys.executable, "-m", "sleuth", "serve", "--transport", "http", "--host", "0.0.0.0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run_.returncode == 2 and "--token-file" in run_.stderr
    token = "s3cret-token-for-tests-0123456789"
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    with http_server(env, tmp_path, "--host", "0.0.0.0", "--token-file", str(token_file)) as url:
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
        headers = {"Accept": "application/json, text/event-stream"}
        missing = httpx.post(url, json=body, headers=headers)
        wrong = httpx.post(url, json=body, headers=headers | {"Authorization": "Bearer nope"})
        assert missing.status_code == 401 and wrong.status_code == 401
        assert missing.headers["www-authenticate"].startswith("Bearer")

        async def with_token():
            http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"})
            async with http, Client(streamable_http_client(url, http_client=http)) as client:
                tools = (await client.list_tools()).tools
                bad = await client.call_tool("get_case", {"case_id": "0123456789abcdef-01234567"})
                return tools, bad

        tools, bad = run(with_token)
        assert any(t.name == "analyze_image" for t in tools)
        assert "no case" in error_text(bad)


def test_http_answers_a_cheap_call_while_two_expensive_analyses_run(env, tmp_path, allowed):
    """Two large images fill ``--jobs 2``; a call that needs no analysis still gets through."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for name in ("big-1.png", "big-2.png"):
        noise = rng.integers(0, 256, (3000, 3000, 3), dtype=np.uint8)
        Image.fromarray(noise).save(allowed / name, compress_level=1)
    with http_server(env, tmp_path, "--allow-dir", str(allowed), "--jobs", "2") as url:
        timings = {}

        async def expensive(name):
            async with Client(url) as client:
                started = anyio.current_time()
                result = await client.call_tool("analyze_image", {"path": name})
                timings[name] = (anyio.current_time() - started, result.is_error)

        async def cheap():
            async with Client(url) as client:  # connected before the analyses start
                await anyio.sleep(1.5)  # both analyses are running by now
                started = anyio.current_time()
                result = await client.call_tool("get_case", {"case_id": "0" * 16 + "-" + "0" * 8})
                timings["cheap"] = (anyio.current_time() - started, result.is_error)

        async def all_three():
            async with anyio.create_task_group() as group:
                group.start_soon(expensive, "big-1.png")
                group.start_soon(expensive, "big-2.png")
                group.start_soon(cheap)

        run(all_three)
    cheap_seconds, cheap_error = timings["cheap"]
    assert cheap_error  # no such case: a one-line error, answered at once
    assert cheap_seconds < 2.0, timings
    slowest = max(timings["big-1.png"][0], timings["big-2.png"][0])
    assert slowest > 1.5 + cheap_seconds, timings  # they really were in flight
    assert not timings["big-1.png"][1] and not timings["big-2.png"][1]
