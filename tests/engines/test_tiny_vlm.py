"""The tiny Qwen2.5-VL: deterministic build, loads and generates, renders the agent's chats."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest

from sleuth.agent.backends.local import served_messages
from sleuth.training.rendering import encode_prompt, render_prompt
from tests.engines import synthetic
from tests.engines.fixtures import require_transformers
from tests.engines.tiny_vlm import (
    MAX_PIXELS,
    MIN_PIXELS,
    SPECIAL_TOKENS,
    TOOL_TOKENS,
    build_tiny_vlm,
    tiny_vlm_dir,
)


@pytest.fixture(scope="module")
def processor(tiny_vlm: Path):
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(tiny_vlm)


@pytest.mark.slow
def test_rebuild_is_byte_identical(tmp_path: Path, tiny_vlm: Path) -> None:
    rebuilt = build_tiny_vlm(tmp_path / "again")
    names = sorted(p.name for p in tiny_vlm.iterdir())
    assert names == sorted(p.name for p in rebuilt.iterdir())
    for name in names:
        assert (rebuilt / name).read_bytes() == (tiny_vlm / name).read_bytes(), name


def test_cached_build_is_reused(tiny_vlm: Path) -> None:
    assert tiny_vlm_dir() == tiny_vlm
    assert tiny_vlm.parent.name == "engines"
    assert not list(tiny_vlm.parent.glob(f".{tiny_vlm.name}.*/"))  # no leftover temp folder


def test_loads_and_generates(tiny_vlm: Path, processor) -> None:
    import torch
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(tiny_vlm, dtype=torch.float32).eval()
    example = synthetic.examples(1)[0]
    inputs = encode_prompt(processor, example.messages, example.tools)
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=8, min_new_tokens=8, do_sample=False)
    assert out.shape[1] == inputs["input_ids"].shape[1] + 8


def test_tool_tags_are_plain_single_tokens(processor) -> None:
    tokenizer = processor.tokenizer
    for tag in TOOL_TOKENS:
        ids = tokenizer(tag, add_special_tokens=False)["input_ids"]
        assert len(ids) == 1, tag
        assert tokenizer.decode(ids, skip_special_tokens=True) == tag  # survives decoding
    for token in SPECIAL_TOKENS:
        assert token in tokenizer.all_special_tokens or token == "<|endoftext|>"
    assert tokenizer.eos_token == "<|im_end|>"


def test_template_renders_tools_and_images_in_tool_messages(processor) -> None:
    example = synthetic.examples(1)[1]  # system, user [image, text], tool call, tool [text, image]
    prompt = render_prompt(processor, example.messages, example.tools)
    assert prompt.count("<|vision_start|><|image_pad|><|vision_end|>") == 2
    assert len(served_messages(example.messages)[1]) == 2
    response = prompt[prompt.index("<tool_response>") :]
    assert "<|image_pad|>" in response.split("</tool_response>")[0]
    assert '"name": "zoom"' in prompt.split("\n</tools>")[0]  # the schemas, in the system turn
    # the tool call comes back in the exact form the model is trained to write
    assert synthetic.TOOL_CALL in prompt
    assert prompt.endswith("<|im_start|>assistant\n")


def test_images_stay_small(processor) -> None:
    from PIL import Image

    for size in ((4000, 3000), (10, 10), (300, 200)):
        out = processor.image_processor(Image.new("RGB", size), return_tensors="pt")
        t, h, w = out["image_grid_thw"][0].tolist()
        pixels = h * w * 14 * 14
        assert MIN_PIXELS <= pixels <= MAX_PIXELS, size


def test_installed_versions_satisfy_the_local_extra() -> None:
    require_transformers()
    from packaging.requirements import Requirement

    local = [
        Requirement(r.split(";")[0])
        for r in importlib.metadata.requires("sleuth") or []
        if 'extra == "local"' in r
    ]
    assert {r.name for r in local} == {"torch", "torchvision", "transformers"}
    for req in local:
        installed = importlib.metadata.version(req.name)
        assert req.specifier.contains(installed, prereleases=True), (req, installed)


def test_the_transformers_backend_loads_a_model_once_until_its_files_change(tiny_vlm, tmp_path):
    import shutil

    from sleuth.agent.backends import BackendOptions
    from sleuth.agent.backends.local import TransformersBackend

    folder = tmp_path / "model"
    shutil.copytree(tiny_vlm, folder)
    first = TransformersBackend(str(folder), BackendOptions())
    again = TransformersBackend(str(folder), BackendOptions())  # the next session's backend
    assert again.model is first.model and again.processor is first.processor
    config = folder / "config.json"
    config.write_text(config.read_text() + "\n")  # a model retrained into the same folder
    retrained = TransformersBackend(str(folder), BackendOptions())
    assert retrained.model is not first.model
