"""The vLLM serving recipe: pure functions, no engine needed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sleuth.servers.vllm_recipe import FAMILIES, model_family, vllm_command, vllm_environment


def flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("Qwen/Qwen2.5-VL-7B-Instruct", "qwen2.5-vl"),
        ("/models/qwen2_5_vl-tiny", "qwen2.5-vl"),
        ("Qwen/Qwen2-VL-2B-Instruct", "qwen2-vl"),
        ("Qwen/Qwen3-VL-8B-Instruct", "qwen3-vl"),
        ("qwen2.5-vl", "qwen2.5-vl"),
    ],
)
def test_family_from_name(model: str, family: str) -> None:
    assert model_family(model).name == family


def test_unknown_family_says_what_is_known() -> None:
    with pytest.raises(ValueError, match="qwen2.5-vl"):
        vllm_command("some/llama", served_name=None)


def test_command_for_qwen_on_cpu() -> None:
    argv = vllm_command(
        "/m/tiny",
        served_name="tiny-vlm",
        port=8123,
        cpu=True,
        python="/venv/bin/python",
        family="qwen2.5-vl",
        max_model_len=2048,
        images_per_prompt=3,
    )
    assert argv[:3] == ["/venv/bin/python", "-m", "vllm.entrypoints.openai.api_server"]
    assert flag(argv, "--model") == "/m/tiny"
    assert flag(argv, "--served-model-name") == "tiny-vlm"
    assert flag(argv, "--host") == "127.0.0.1"
    assert flag(argv, "--port") == "8123"
    assert flag(argv, "--max-model-len") == "2048"
    assert flag(argv, "--tool-call-parser") == "hermes"
    assert "--enable-auto-tool-choice" in argv
    assert json.loads(flag(argv, "--limit-mm-per-prompt")) == {"image": 3, "video": 0}
    assert json.loads(flag(argv, "--structured-outputs-config")) == {
        "backend": "xgrammar",
        "disable_any_whitespace": True,
    }
    assert flag(argv, "--dtype") == "float32"
    assert "--enforce-eager" in argv


def test_gpu_command_leaves_dtype_and_compilation_to_vllm() -> None:
    argv = vllm_command("Qwen/Qwen2.5-VL-7B-Instruct", served_name=None)
    assert "--dtype" not in argv and "--enforce-eager" not in argv
    assert "--served-model-name" not in argv


def test_every_family_has_a_tool_parser() -> None:
    for family in FAMILIES:
        argv = vllm_command("m", served_name=None, family=family.name)
        assert flag(argv, "--tool-call-parser") == family.tool_call_parser


def test_environment_keeps_caches_inside(tmp_path: Path) -> None:
    env = vllm_environment(tmp_path, cpu=True)
    assert env["HF_HUB_OFFLINE"] == "1"
    assert env["VLLM_CPU_KVCACHE_SPACE"] == "1"
    for key in (
        "VLLM_CACHE_ROOT",
        "HF_HOME",
        "XDG_CACHE_HOME",
        "TORCHINDUCTOR_CACHE_DIR",
        "TMPDIR",
    ):
        assert Path(env[key]).is_relative_to(tmp_path)
    assert "VLLM_CPU_KVCACHE_SPACE" not in vllm_environment(tmp_path, cpu=False)
