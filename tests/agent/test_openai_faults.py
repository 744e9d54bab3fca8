"""The openai backend against broken servers: clear errors or the fallback; no case lost."""

import gc
import io
import json
import socket

import numpy as np
import pytest
from PIL import Image

from sleuth.agent.backends.local import decode_data_url
from sleuth.agent.cases import UnknownCaseError
from sleuth.agent.verdict import label_for
from sleuth.api import AnalysisInterrupted, open_session
from tests.agent.conftest import composite_png
from tests.agent.fake_server import Connections, serve, text, tool_call

VERDICT = {
    "label": "ai_generated",
    "p_ai": 0.9,
    "explanation": "Pasted region [E3].",
    "cite": ["E3"],
    "boxes": [[0, 0, 10, 10]],
}


def read_the_model(verdict):
    """The model's verdict was parsed and fused: its p_ai pulls the signals' towards AI."""
    return (
        verdict.p_model == VERDICT["p_ai"]
        and verdict.p_ai > verdict.p_signals
        and verdict.label == label_for(verdict.p_ai, verdict.abstain_band)
        and verdict.stopped != "budget"
    )


def vlm(settings, base_url, **more):
    update = {
        "backend": "openai:Qwen/Qwen2.5-VL-7B-Instruct",
        "base_url": base_url,
        "model_timeout": 2.0,
    }
    return settings.model_copy(update=update | more)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_server_down_interrupts_with_the_case_kept_and_resumable(settings):
    down = vlm(settings, f"http://127.0.0.1:{free_port()}/v1", model_retries=0)
    with open_session(down) as session:
        with pytest.raises(AnalysisInterrupted, match="cannot reach the model server") as info:
            session.analyze(composite_png())
        case = session.case(info.value.case_id)
        assert case.status == "interrupted" and case.verdict is None
    with serve([lambda body: text(json.dumps(VERDICT))]) as (url, seen):
        with open_session(vlm(settings, url)) as session:
            verdict = session.resume(info.value.case_id)
    assert verdict.case_id == info.value.case_id and read_the_model(verdict)
    assert any(s.kind == "survey" for s in verdict.steps)  # the survey was not run again
    assert [s.kind for s in verdict.steps].count("survey") == len(
        {s.tool for s in verdict.steps if s.kind == "survey"}
    )


def test_fallback_to_offline_is_recorded_in_the_verdict(settings):
    down = vlm(settings, f"http://127.0.0.1:{free_port()}/v1", model_retries=0, fallback=True)
    with open_session(down) as session:
        verdict = session.analyze(composite_png())
    assert verdict.backend.provider == "offline"  # who answered ...
    assert verdict.backend.fallback_from.startswith("openai:Qwen/Qwen2.5-VL-7B-Instruct failed")
    assert "cannot reach" in verdict.backend.fallback_from  # ... and why
    assert "Signal-only" in verdict.explanation


def test_a_slow_server_times_out_after_one_retry(settings):
    with serve([lambda body: text("late")], delay=3.0) as (url, seen):
        with open_session(vlm(settings, url, model_timeout=0.5, model_retries=1)) as session:
            with pytest.raises(AnalysisInterrupted, match="did not answer within 0.5 s"):
                session.analyze(composite_png())
    assert len(seen) == 2  # the call and its one retry


def test_malformed_and_out_of_range_calls_go_back_to_the_model(settings):
    replies = [
        lambda body: tool_call("zoom", '{"box": [0, 0, 99999, 5]}'),
        lambda body: tool_call("zoom", '{"box": [0, 0,'),
        lambda body: tool_call("no_such_tool", "{}"),
        lambda body: text(json.dumps(VERDICT)),
    ]
    with serve(replies) as (url, seen):
        with open_session(vlm(settings, url)) as session:
            verdict = session.analyze(composite_png())
    errors = [s for s in verdict.steps if s.error]
    assert len(errors) == 3 and read_the_model(verdict)
    tool_replies = [m for m in seen[1]["messages"] if m["role"] == "tool"]
    assert "outside the image" in json.dumps(tool_replies)
    assert "could not be read" in json.dumps(seen[2]["messages"][-1])
    assert "no tool named 'no_such_tool'" in json.dumps(seen[3]["messages"])


def test_a_second_zoom_on_the_same_box_keeps_the_first_crop(settings):
    box = '{"box": [20, 20, 120, 120], "margin": %s}'
    replies = [
        lambda body: tool_call("zoom", box % "0.0"),
        lambda body: tool_call("zoom", box % "0.5", call_id="call_2"),
        lambda body: text(json.dumps(VERDICT)),
    ]
    with serve(replies) as (url, seen):
        with open_session(vlm(settings, url)) as session:
            verdict = session.analyze(composite_png())
            crops = [e.artifacts[0] for e in verdict.evidence if e.tool == "zoom"]
            files = [session.files.artifact_path(verdict.case_id, name) for name in crops]
            pictures = [path.read_bytes() for path in files]
    assert len(crops) == len(set(crops)) == 2 and pictures[0] != pictures[1]
    # the model saw each crop as it was made, and the first is still that one
    sent = [p["image_url"]["url"] for m in seen[1]["messages"] for p in parts(m)]
    shown = np.asarray(decode_data_url(sent[-1]), float)
    size = (shown.shape[1], shown.shape[0])
    kept, second = (
        np.abs(np.asarray(Image.open(io.BytesIO(data)).resize(size), float) - shown).mean()
        for data in pictures
    )
    assert kept < 1.0 < second


def parts(message):
    content = message["content"]
    return [p for p in content if "image_url" in p] if isinstance(content, list) else []


def test_invalid_verdict_json_falls_back_to_structured_output_then_errors(settings):
    replies = [
        lambda body: text("I think it is fake {not json"),
        lambda body: text("still no json"),
    ]
    with serve(replies) as (url, seen):
        with open_session(vlm(settings, url)) as session:
            with pytest.raises(AnalysisInterrupted, match="no readable verdict") as info:
                session.analyze(composite_png())
            assert session.case(info.value.case_id).status == "interrupted"
    assert seen[1]["response_format"]["type"] == "json_schema"
    assert seen[1]["response_format"]["json_schema"]["schema"]["properties"]["label"]


def test_the_request_carries_the_image_tools_and_box_frame(settings):
    with serve([lambda body: text(json.dumps(VERDICT))]) as (url, seen):
        with open_session(vlm(settings, url)) as session:
            verdict = session.analyze(composite_png())
    body = seen[0]
    names = {t["function"]["name"] for t in body["tools"]}
    assert {"zoom", "ela", "noise", "provenance"} <= names
    zoom = next(t for t in body["tools"] if t["function"]["name"] == "zoom")["function"]
    assert zoom["strict"] and zoom["parameters"]["additionalProperties"] is False
    assert set(zoom["parameters"]["required"]) == set(zoom["parameters"]["properties"])
    user = body["messages"][1]["content"]
    image = next(p for p in user if p["type"] == "image_url")["image_url"]["url"]
    assert image.startswith("data:image/png;base64,")
    assert "pixel coordinates of the 644x476 image" in body["messages"][0]["content"]
    # the model's box [0,0,10,10] on the 644x476 input maps back to original pixels
    assert verdict.boxes and verdict.boxes[0].x1 == 10 and verdict.boxes[0].y1 == 11


def test_ask_on_an_unknown_case_is_clear(settings):
    with open_session(settings) as session, pytest.raises(UnknownCaseError):
        session.ask("0123456789abcdef-01234567", "hi")


def test_a_session_closes_its_connections_to_the_model_server(settings):
    connections = Connections()
    gc.disable()  # a leaked client would otherwise close whenever the collector runs
    try:
        with serve([lambda body: text(json.dumps(VERDICT))], connections=connections) as (url, _):
            with open_session(vlm(settings, url)) as session:
                session.analyze(composite_png())
                assert connections.open == 1  # kept alive between the loop's requests
            assert connections.wait_until_closed() == 0
    finally:
        gc.enable()
