"""``sleuth model-server``: the production vLLM command, shown with --dry-run, and its errors."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sleuth.agent.frames import FAMILIES
from sleuth.cli import app
from sleuth.servers.vllm import launch as model_server
from sleuth.servers.vllm.flags import SERVING
from sleuth.servers.vllm.recipe import vllm_command
from tests.engines import vllm_server

SLEUTH = Path(sys.executable).with_name("sleuth")
SERVABLE = [f for f in FAMILIES if f.name in SERVING]
MODELS = {
    "qwen2.5-vl": "Qwen/Qwen2.5-VL-7B-Instruct",
    "qwen2-vl": "Qwen/Qwen2-VL-7B-Instruct",
    "qwen3-vl": "Qwen/Qwen3-VL-8B-Instruct",
}


def dry_run(*args: str) -> tuple[list[str], dict[str, str], dict[str, str]]:
    """Run ``sleuth model-server ARGS --dry-run``; return argv, server env, sleuth settings."""
    result = CliRunner().invoke(app, ["model-server", *args, "--dry-run"])
    assert result.exit_code == 0, result.output
    commands = [line for line in result.output.splitlines() if line.startswith("vllm ")]
    assert len(commands) == 1, result.output
    exports = dict(
        line.removeprefix("export ").split("=", 1)
        for line in result.output.splitlines()
        if line.startswith("export ")
    )
    server = {k: v for k, v in exports.items() if not k.startswith("SLEUTH_")}
    client = {k: shlex.split(v)[0] for k, v in exports.items() if k.startswith("SLEUTH_")}
    return shlex.split(commands[0]), server, client


def flag(argv: list[str], name: str) -> str:
    assert argv.count(name) == 1, argv
    return argv[argv.index(name) + 1]


def test_every_servable_family_has_an_example_model():
    assert {f.name for f in SERVABLE} == set(MODELS)


@pytest.mark.parametrize("family", SERVABLE, ids=lambda f: f.name)
def test_dry_run_prints_the_familys_flags(family):
    argv, env, client = dry_run(MODELS[family.name])
    assert argv[:3] == ["vllm", "serve", MODELS[family.name]]
    assert "--enable-auto-tool-choice" in argv
    assert flag(argv, "--tool-call-parser") == SERVING[family.name].tool_call_parser == "hermes"
    assert json.loads(flag(argv, "--limit-mm-per-prompt")) == {"image": 4, "video": 0}
    pixels = json.loads(flag(argv, "--mm-processor-kwargs"))["max_pixels"]
    assert pixels == family.max_pixels
    assert json.loads(flag(argv, "--structured-outputs-config"))["backend"] == "xgrammar"
    assert flag(argv, "--max-model-len") == str(SERVING[family.name].max_model_len) == "16384"
    assert flag(argv, "--chat-template-content-format") == "openai"
    assert (flag(argv, "--host"), flag(argv, "--port")) == ("127.0.0.1", "8000")
    assert env == {"VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}
    assert client == {
        "SLEUTH_BACKEND": f"openai:{MODELS[family.name]}",
        "SLEUTH_BASE_URL": "http://127.0.0.1:8000/v1",
        "SLEUTH_MODEL_FAMILY": family.name,
        "SLEUTH_MODEL_MAX_PIXELS": str(pixels),
        "SLEUTH_MODEL_MAX_IMAGES": "4",
    }


@pytest.mark.parametrize("name", ["qwen2.5-vl", "qwen2-vl"])
def test_qwen_vl_is_served_with_a_template_that_has_tools(name):
    argv, _, _ = dry_run(MODELS[name])
    template = Path(flag(argv, "--chat-template"))
    assert template.is_file() and template.parent.name == "templates"
    text = template.read_text(encoding="utf-8")
    assert "{%- if tools %}" in text and "<tool_call>" in text and "<tool_response>" in text
    assert "<|image_pad|>" in text  # still a vision template


def test_qwen3_vl_keeps_its_own_template():
    argv, _, _ = dry_run(MODELS["qwen3-vl"])
    assert "--chat-template" not in argv


def test_options_reach_the_command_and_the_settings():
    argv, _, client = dry_run(
        "/models/my-vlm",
        "--family", "qwen2.5-vl", "--host", "10.0.0.5", "--port", "9001",
        "--max-model-len", "32768", "--gpu-memory-utilization", "0.8",
        "--tensor-parallel-size", "2",
    )  # fmt: skip
    assert argv[2] == "/models/my-vlm"
    assert flag(argv, "--max-model-len") == "32768"
    assert flag(argv, "--gpu-memory-utilization") == "0.8"
    assert flag(argv, "--tensor-parallel-size") == "2"
    assert client["SLEUTH_BASE_URL"] == "http://10.0.0.5:9001/v1"
    assert client["SLEUTH_BACKEND"] == "openai:/models/my-vlm"


def test_wildcard_host_points_sleuth_at_loopback_with_a_note():
    server = model_server.plan("Qwen/Qwen2.5-VL-7B-Instruct", host="0.0.0.0")
    assert server.client["SLEUTH_BASE_URL"] == "http://127.0.0.1:8000/v1"
    assert "another machine" in model_server.describe(server)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["some/llama"], "cannot tell the model family of 'some/llama'"),
        (["x", "--family", "llava"], "unknown model family 'llava'"),
        (["OpenGVLab/InternVL3-8B"], "no vLLM serving recipe for model family 'internvl'"),
    ],
)
def test_unknown_family_is_one_clear_line(args, message):
    result = subprocess.run(
        [SLEUTH, "model-server", *args, "--dry-run"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: ") and message in line and "qwen2.5-vl" in line


def test_missing_vllm_is_one_clear_line(tmp_path):
    result = subprocess.run(
        [SLEUTH, "model-server", "Qwen/Qwen2.5-VL-7B-Instruct"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": str(tmp_path), "HOME": str(tmp_path)},
    )
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: 'vllm' is not installed") and "pip install vllm" in line


def test_launch_execs_vllm_with_the_plan(tmp_path, monkeypatch):
    fake = tmp_path / "vllm"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    calls = []
    monkeypatch.setattr(model_server.os, "execve", lambda *a: calls.append(a))
    server = model_server.plan("Qwen/Qwen2.5-VL-7B-Instruct", port=8100)
    model_server.launch(server)
    ((path, argv, env),) = calls
    assert path == str(fake) and argv == server.argv
    assert env["VLLM_NO_USAGE_STATS"] == "1" and env["PATH"] == str(tmp_path)


def test_the_tests_vllm_command_is_the_recipe_plus_cpu_settings(tmp_path, monkeypatch):
    calls = []

    def recording(*args, **kwargs):
        calls.append(kwargs)
        return vllm_command(*args, **kwargs)

    monkeypatch.setattr(vllm_server, "vllm_command", recording)
    argv, env = vllm_server.server_command(
        tmp_path / "tiny",
        python="/venv/bin/python",
        port=8123,
        served_name="tiny-vlm",
        family="qwen2.5-vl",
        max_model_len=4096,
    )
    (kwargs,) = calls
    assert kwargs["cpu"] is True and kwargs["python"] == "/venv/bin/python"
    production = model_server.plan("Qwen/Qwen2.5-VL-7B-Instruct").argv
    shared = (
        "--enable-auto-tool-choice", "--tool-call-parser", "--chat-template",
        "--chat-template-content-format", "--structured-outputs-config",
    )  # fmt: skip
    for name in shared:
        assert name in argv
        if name != "--enable-auto-tool-choice":
            assert flag(argv, name) == flag(production, name)
    assert flag(argv, "--max-model-len") == "4096"
    assert json.loads(flag(argv, "--limit-mm-per-prompt")) == {"image": 2, "video": 0}
    assert flag(argv, "--dtype") == "float32" and "--enforce-eager" in argv
    assert env["VLLM_CPU_OMP_THREADS_BIND"] == "nobind" and env["HF_HUB_OFFLINE"] == "1"
