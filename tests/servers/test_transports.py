"""`sleuth serve` in its own process: over stdio and over streamable HTTP, with the real Client."""

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager

import anyio
import httpx
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from sleuth.agent.verdict import Answer, Verdict
from tests.servers.mcp_client import error_text, run

pytestmark = pytest.mark.slow

QUESTION = "what did the noise tool show in box 1?"


@pytest.fixture
def env(tmp_path):
    (tmp_path / "none.toml").write_text("")
    data, config = str(tmp_path / "data"), str(tmp_path / "none.toml")
    return dict(os.environ, SLEUTH_DATA_DIR=data, SLEUTH_CONFIG=config)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def http_server(env, tmp_path, *args):
    port = free_port()
    log = tmp_path / f"serve-{port}.log"
    with open(log, "wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "sleuth", "serve", "--transport", "http", "--port", str(port)]
            + list(args),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.2)
        assert process.poll() is None, log.read_text()
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(30)


def test_stdio_analysis_then_a_follow_up_from_a_second_process(env, allowed):
    def params():
        return StdioServerParameters(
            command=sys.executable,
            args=["-m", "sleuth", "serve", "--allow-dir", str(allowed)],
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
    assert {"analyze_image", "ask_followup", "get_case", "ela", "zoom"} <= names
    verdict = Verdict.model_validate(result.structured_content)
    assert progress and len(progress) == len(verdict.steps)

    async def second():
        async with Client(params()) as client:
            return await client.call_tool(
                "ask_followup", {"case_id": verdict.case_id, "question": QUESTION}
            )

    answer = Answer.model_validate(run(second).structured_content)
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
        ids = {Verdict.model_validate(r.structured_content).case_id for r in results}
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
        assert {e.tool for e in Answer.model_validate(answer.structured_content).evidence} == {
            "noise"
        }


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
