"""Training examples read back from exported traces, in both formats."""

from __future__ import annotations

import json

import pytest

from sleuth.agent.backends.local import served_tools
from sleuth.evaluation.traces import TRACES_FILE, read_traces
from sleuth.tools import SleuthError
from sleuth.training.examples import read_examples
from tests.training.conftest import export_set


def normalised(messages):
    """Messages with tool-call arguments as objects and images as their bytes' data URLs."""
    out = json.loads(json.dumps(messages))
    for message in out:
        for call in message.get("tool_calls") or ():
            if isinstance(call["function"]["arguments"], str):
                call["function"]["arguments"] = json.loads(call["function"]["arguments"])
    return out


def test_every_request_of_every_record_is_an_example(traces):
    records = read_traces(traces)
    examples = read_examples(traces)
    assert len(examples) == sum(len(r["requests"]) for r in records)
    assert any(ex.answer.get("tool_calls") for ex in examples)  # the analyst looked at regions
    assert any(not ex.answer.get("tool_calls") for ex in examples)  # and concluded
    position = 0
    for record in records:
        for n in record["requests"]:
            example = examples[position]
            assert example.case == record["id"]
            assert len(example.messages) == n and example.answer["role"] == "assistant"
            assert example.messages[0]["role"] == "system"
            urls = [
                part["image_url"]["url"]
                for message in example.messages
                if isinstance(message["content"], list)
                for part in message["content"]
                if part["type"] == "image_url"
            ]
            assert urls and all(u.startswith("data:image/png;base64,") for u in urls)
            assert example.images == len(urls)
            position += 1


def test_the_trl_layout_gives_the_same_examples(labelled, traces, tmp_path):
    export_set(labelled, tmp_path / "trl", fmt="trl")
    ours, theirs = read_examples(traces), read_examples(tmp_path / "trl")
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):
        assert normalised(a.messages) == normalised(b.messages)
        assert normalised([a.answer]) == normalised([b.answer])
        assert served_tools(a.tools) == served_tools(b.tools)


def test_a_folder_without_traces_is_refused(tmp_path):
    with pytest.raises(SleuthError, match="sleuth traces export"):
        read_examples(tmp_path)


def test_a_record_that_is_not_a_trace_is_named(traces, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "images").symlink_to(traces / "images")
    lines = (traces / TRACES_FILE).read_text().splitlines()
    (bad / TRACES_FILE).write_text(lines[0] + "\n" + json.dumps({"messages": []}) + "\n")
    with pytest.raises(SleuthError, match="record 2: not an exported trace"):
        read_examples(bad)


def test_a_missing_image_file_is_named(traces, tmp_path):
    lost = tmp_path / "lost"
    lost.mkdir()
    (lost / TRACES_FILE).write_text((traces / TRACES_FILE).read_text())
    with pytest.raises(SleuthError, match="record 1: .*No such file"):
        read_examples(lost)
