"""The vLLM serving recipe: pure functions, no engine needed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sleuth.agent.frames import FAMILIES
from sleuth.servers.vllm.flags import SERVING
from sleuth.servers.vllm.recipe import (
    RecipeError,
    serving_family,
    vllm_command,
    vllm_environment,
)
from sleuth.tools import SleuthError

SERVABLE = [f for f in FAMILIES if f.name in SERVING]


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
    assert serving_family(model).name == family


def test_unknown_family_says_what_is_known() -> None:
    with pytest.raises(RecipeError, match="qwen2.5-vl") as caught:
        vllm_command("some/llama")
    assert isinstance(caught.value, SleuthError) and "--family" in str(caught.value)


def test_family_without_a_recipe_is_refused() -> None:
    with pytest.raises(RecipeError, match="no vLLM serving recipe for model family 'internvl'"):
        vllm_command("OpenGVLab/InternVL3-8B")


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
        max_pixels=224 * 224,
    )
    assert argv[:3] == ["/venv/bin/python", "-m", "vllm.entrypoints.openai.api_server"]
    assert flag(argv, "--model") == "/m/tiny"
    assert flag(argv, "--served-model-name") == "tiny-vlm"
    assert flag(argv, "--host") == "127.0.0.1"
    assert flag(argv, "--port") == "8123"
    assert flag(argv, "--max-model-len") == "2048"
    assert flag(argv, "--tool-call-parser") == "hermes"
    assert "--enable-auto-tool-choice" in argv
    assert Path(flag(argv, "--chat-template")).name == "qwen2_5_vl_tools.jinja"
    assert json.loads(flag(argv, "--limit-mm-per-prompt")) == {"image": 3, "video": 0}
    assert json.loads(flag(argv, "--mm-processor-kwargs")) == {"max_pixels": 224 * 224}
    assert json.loads(flag(argv, "--structured-outputs-config")) == {
        "backend": "xgrammar",
        "disable_any_whitespace": True,
    }
    assert flag(argv, "--dtype") == "float32"
    assert "--enforce-eager" in argv


def test_gpu_command_is_vllm_serve_and_leaves_dtype_and_compilation_to_vllm() -> None:
    argv = vllm_command("Qwen/Qwen2.5-VL-7B-Instruct")
    assert argv[:3] == ["vllm", "serve", "Qwen/Qwen2.5-VL-7B-Instruct"]
    assert "--model" not in argv and "--dtype" not in argv and "--enforce-eager" not in argv
    assert "--served-model-name" not in argv and "--mm-processor-kwargs" not in argv
    assert json.loads(flag(argv, "--limit-mm-per-prompt")) == {"image": 4, "video": 0}


def test_every_servable_family_has_its_parser_and_length() -> None:
    for family in SERVABLE:
        argv = vllm_command("m", family=family.name)
        assert flag(argv, "--tool-call-parser") == SERVING[family.name].tool_call_parser
        assert flag(argv, "--max-model-len") == str(SERVING[family.name].max_model_len)
        assert ("--chat-template" in argv) == (SERVING[family.name].chat_template is not None)


def test_environment_keeps_caches_inside(tmp_path: Path) -> None:
    env = vllm_environment(cpu=True, cache_dir=tmp_path)
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


def test_production_environment_may_download_and_has_no_cpu_settings() -> None:
    env = vllm_environment()
    assert env == {"VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}
