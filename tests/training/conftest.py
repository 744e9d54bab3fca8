"""Exported traces for the training tests: the offline analyst on a few synthetic images.

The requests are composed for Qwen2.5-VL at the tiny test model's image budget, with two
tools and two turns, so prompts stay within the tiny model's context.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sleuth.agent.backends import BackendOptions
from sleuth.agent.context import AgentContext
from sleuth.evaluation.sources import read_sources
from sleuth.evaluation.traces import ExportOptions, export_traces, recording_backend, trace_cases
from sleuth.settings import Settings
from tests.conftest import encode, photo
from tests.engines.tiny_vlm import MAX_PIXELS

TOOLS = ["zoom", "noise"]
STEPS = 2


def tiny_options() -> BackendOptions:
    """Requests as the tiny model is served: Qwen2.5-VL, its image budget, two images."""
    return BackendOptions(family="qwen2.5-vl", max_pixels=MAX_PIXELS, max_images=2)


def labelled_set(root: Path, seeds=(11, 12, 13)) -> Path:
    """A real/ + fake/ folder of photo-like images (the first seed real)."""
    for n, seed in enumerate(seeds):
        folder = root / ("real" if n == 0 else "fake")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{seed}.png").write_bytes(encode(photo(seed, (448, 336))))
    return root


def export_set(source: Path, out: Path, fmt: str = "openai") -> dict:
    recorder = recording_backend("offline", tiny_options())
    return export_traces(
        trace_cases(read_sources([source])),
        out=out,
        recorder=recorder,
        registry=Settings(tools_enabled=TOOLS).tool_registry(),
        context=AgentContext(max_steps=STEPS),
        options=ExportOptions(keep="all", fmt=fmt),  # type: ignore[arg-type]
    )


@pytest.fixture(scope="package")
def labelled(tmp_path_factory) -> Path:
    return labelled_set(tmp_path_factory.mktemp("set"))


@pytest.fixture(scope="package")
def traces(labelled, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("traces")
    export_set(labelled, out)
    return out
