"""The closed loop on CPU, through the commands a user types.

``sleuth traces export`` runs the offline analyst on a handful of images and writes its
requests and answers; ``sleuth train-vlm`` trains the tiny Qwen2.5-VL on them; vLLM's
CPU build serves the result; ``sleuth analyze --backend openai`` drives it. On an image it
learned from, the model must call the tools the analyst called, on the same boxes, and
conclude with a verdict the agent parses (no fallback to the analyst). The tiny model
learns its examples by heart, it does not generalise: this checks the pipeline (one
rendering from export to serving), not a model's quality.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sleuth.agent.frames import BoxFrame, family_for
from tests.conftest import encode, photo, shared_data_dir
from tests.engines.fixtures import require_training, require_vllm
from tests.engines.tiny_vlm import MAX_PIXELS, tiny_vlm_dir
from tests.engines.vllm_server import serve

pytestmark = pytest.mark.slow

SHARED = (
    "fake/amazon-titan-image-g1/c2pa-ts/TrustNXT__amazon-titan-g1.png",
    "fake/dalle2/imagen/pretty-girl-wearing-red-cape-11115090__dal2-2.jpg",
    "real/imagenet/n03187595_dial_telephone.JPEG",
)
"""Shared images to learn from, when the shared set is beside the checkout."""
TRAIN = ["--full", "--max-steps", "600", "--accumulation", "1", "--learning-rate", "3e-3"]
"""Every weight of the random tiny model (LoRA cannot move its random output head), long
enough that greedy decoding reproduces all six examples (400 steps did, barely: loss 0.05)."""


def sleuth(*args: object, env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "sleuth", *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, f"sleuth {args[0]} failed:\n{result.stderr[-3000:]}"
    return result.stdout


def handful(folder: Path) -> Path:
    """A real/ + fake/ set: the shared images above, or photo-like images without it."""
    shared = shared_data_dir()
    for n, key in enumerate(SHARED):
        label = key.split("/")[0]
        (folder / label).mkdir(parents=True, exist_ok=True)
        if (shared / key).is_file():
            target = folder / label / Path(key).name
            target.write_bytes((shared / key).read_bytes())
        else:
            (folder / label / f"{n}.png").write_bytes(encode(photo(20 + n, (448, 336))))
    return folder


def test_traces_train_a_model_that_vllm_serves_and_the_agent_drives(tmp_path):
    require_training()
    require_vllm()
    (tmp_path / "none.toml").write_text("")
    env = os.environ | {
        "SLEUTH_CONFIG": str(tmp_path / "none.toml"),
        "SLEUTH_DATA_DIR": str(tmp_path / "data"),
        "SLEUTH_TOOLS_ENABLED": "zoom,noise",  # prompts within the tiny model's context
        "SLEUTH_MAX_STEPS": "2",
        "SLEUTH_MODEL_FAMILY": "qwen2.5-vl",
        "SLEUTH_MODEL_MAX_PIXELS": str(MAX_PIXELS),
        "SLEUTH_MODEL_MAX_IMAGES": "2",
        "SLEUTH_MODEL_TIMEOUT": "120",
    }
    images = handful(tmp_path / "set")
    sleuth("traces", "export", images, "--out", tmp_path / "traces", "--keep", "all", env=env)
    lines = (tmp_path / "traces" / "traces.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    looked = [
        r
        for r in records
        if len(r["requests"]) == 2
        and r["messages"][r["requests"][0]].get("tool_calls")
        and not r["messages"][-1].get("tool_calls")
    ]
    assert looked, "no case where the analyst called tools and then concluded"
    record = looked[0]

    sleuth("train-vlm", tmp_path / "traces", "--model", tiny_vlm_dir(),
           "--out", tmp_path / "model", *TRAIN, env=env)  # fmt: skip
    trained = json.loads((tmp_path / "model" / "training.json").read_text())
    assert trained["totals"]["examples"] == sum(len(r["requests"]) for r in records)

    with serve(tmp_path / "model", served_name="tiny-vlm", max_model_len=4096) as base_url:
        printed = sleuth(
            "analyze", images / record["id"], "--backend", "openai", "--model", "tiny-vlm",
            "--base-url", base_url, "--no-fallback", "--json", env=env,
        )  # fmt: skip
    verdict = json.loads(printed)
    assert verdict["backend"]["provider"] == "openai"
    called = [
        (s["tool"], s["arguments"].get("box"), s["error"])
        for s in verdict["steps"]
        if s["kind"] == "tool"
    ]
    family = dataclasses.replace(family_for("qwen2.5-vl"), max_pixels=MAX_PIXELS)
    frame = BoxFrame.for_model(*record["size"], family)
    taught = [
        (c["function"]["name"], json.loads(c["function"]["arguments"])["box"], False)
        for c in record["messages"][record["requests"][0]]["tool_calls"]
    ]
    # the model's boxes went out in its frame and came back in original pixels
    assert called == [
        (name, list(frame.to_original(box).as_tuple()), error) for name, box, error in taught
    ]
    concluded = json.loads(record["messages"][-1]["content"])
    assert verdict["explanation"].splitlines()[0] == concluded["explanation"].splitlines()[0]
    assert verdict["stopped"] in ("confident", "concluded")
