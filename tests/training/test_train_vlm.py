"""``sleuth train-vlm`` on the tiny Qwen2.5-VL: the plan, LoRA and full runs, errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from sleuth.cli import app
from tests.engines.fixtures import require_training
from tests.engines.tiny_vlm import tiny_vlm_dir

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def base():
    require_training()
    return tiny_vlm_dir()


def run(*args):
    return CliRunner().invoke(app, ["train-vlm", *map(str, args)])


def weights(folder):
    from safetensors.torch import load_file

    return load_file(folder / "model.safetensors")


def test_the_dry_run_prints_the_plan_and_writes_nothing(base, traces, tmp_path):
    from sleuth.training.examples import read_examples

    result = run(traces, "--model", base, "--dry-run", "--out", tmp_path / "m")
    assert result.exit_code == 0, result.output
    examples = read_examples(traces)
    cases = len({e.case for e in examples})
    assert f"examples: {len(examples)} request(s) of {cases} case(s)" in result.output
    assert "LoRA rank 16, alpha 32" in result.output and "vision tower frozen" in result.output
    steps = -(-len(examples) // 8) * 3  # 8 accumulated, 3 epochs
    assert f"steps: {steps} " in result.output
    assert "tokens: " in result.output and " learned; the longest example " in result.output
    assert not (tmp_path / "m").exists()


def test_lora_writes_the_adapters_and_the_merged_model(base, traces, tmp_path):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    out = tmp_path / "lora"
    result = run(
        traces, "--model", base, "--out", out, "--max-steps", 2, "--accumulation", 1,
        "--learning-rate", 0.05,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads((out / "training.json").read_text())
    assert report["steps"] == 2 and report["options"]["lora"] is True
    assert 0 < report["trainable"] < report["parameters"] / 5
    assert (out / "adapter" / "adapter_config.json").is_file()
    config = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert not any("visual" in name for name in config["target_modules"])
    before, after = weights(base), weights(out)
    assert before.keys() == after.keys()  # merged: a plain model, no adapter weights
    changed = {k for k in before if not (before[k] == after[k]).all()}
    assert changed and all("visual" not in k and "lm_head" not in k for k in changed)
    assert (out / "chat_template.jinja").read_text() == (base / "chat_template.jinja").read_text()
    AutoProcessor.from_pretrained(out)
    AutoModelForImageTextToText.from_pretrained(out)


def test_full_training_lowers_the_loss_and_keeps_the_vision_tower(base, traces, tmp_path):
    out = tmp_path / "full"
    result = run(
        traces, "--model", base, "--out", out, "--full", "--max-steps", 12,
        "--accumulation", 1, "--learning-rate", 3e-3, "--schedule", "constant_with_warmup",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "trained in" in result.output and "sleuth model-server" in result.output
    report = json.loads((out / "training.json").read_text())
    losses = [row["loss"] for row in report["losses"]]
    assert len(losses) >= 3 and losses[-1] < losses[0]
    assert not (out / "adapter").exists()
    before, after = weights(base), weights(out)
    changed = {k for k in before if not (before[k] == after[k]).all()}
    assert any("lm_head" in k for k in changed) and not any("visual" in k for k in changed)


def test_examples_longer_than_the_limit_are_left_out(base, traces, tmp_path):
    result = run(traces, "--model", base, "--dry-run", "--max-tokens", 10)
    assert result.exit_code != 0
    assert "no example left to train on" in str(result.exception)
    result = run(traces, "--model", base, "--out", tmp_path / "m", "--schedule", "wavy")
    assert result.exit_code == 2 and "--schedule" in result.output
    result = run(traces, "--model", base)
    assert result.exit_code == 2 and "--out" in result.output


def test_a_model_that_cannot_be_loaded_is_named(traces, tmp_path):
    require_training()
    result = run(traces, "--model", tmp_path / "nothing-here", "--dry-run")
    assert result.exit_code != 0 and "nothing-here" in str(result.exception)
