"""``sleuth traces export``: records, determinism, filters, formats, and the served requests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sleuth.agent.backends import BackendOptions
from sleuth.agent.backends.local import served_messages, served_tools
from sleuth.agent.context import AgentContext
from sleuth.api import open_session
from sleuth.cli import app
from sleuth.evaluation.sources import read_sources
from sleuth.evaluation.traces import (
    ExportOptions,
    answered_requests,
    export_traces,
    inline_images,
    read_traces,
    recording_backend,
    trace_cases,
)
from sleuth.settings import Settings
from sleuth.tools import ToolRegistry
from tests.agent.conftest import A1111, png_with_text
from tests.agent.fake_server import serve
from tests.conftest import encode, photo


@pytest.fixture(autouse=True)
def no_user_config(tmp_path, monkeypatch):
    monkeypatch.setenv("SLEUTH_CONFIG", str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text("")


@pytest.fixture(scope="module")
def labelled(tmp_path_factory) -> Path:
    """Two fakes the analyst gets right (generator settings in the file) and a real photo.

    The photo carries nothing that decides it: the analyst looks at its candidate regions
    and abstains, so its verdict is not correct.
    """
    root = tmp_path_factory.mktemp("set")
    (root / "fake").mkdir()
    (root / "real").mkdir()
    for seed in (1, 2):
        png = png_with_text(photo(seed, (320, 240)), {"parameters": f"a cat {seed}\n" + A1111})
        (root / "fake" / f"{seed}.png").write_bytes(png)
    (root / "real" / "3.png").write_bytes(encode(photo(3, (384, 288))))
    return root


def export(source: Path, out: Path, **options) -> dict:
    recorder = recording_backend("offline", BackendOptions())
    return export_traces(
        trace_cases(
            read_sources([source]),
            composites=options.get("composites", 0),
            seed=options.get("seed", 0),
        ),
        out=out,
        recorder=recorder,
        registry=ToolRegistry.discover(),
        context=AgentContext(),
        options=ExportOptions(**options),
    )


@pytest.fixture(scope="module")
def every_case(labelled, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("all")
    export(labelled, out, keep="all")
    return out


def files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*.*")}


def test_a_record_per_case_with_label_outcome_and_requests(every_case):
    records = {r["id"]: r for r in read_traces(every_case)}
    assert set(records) == {"fake/1.png", "fake/2.png", "real/3.png"}
    fake, real = records["fake/1.png"], records["real/3.png"]
    assert fake["label"] == "fake" and fake["outcome"]["correct"] is True
    assert fake["outcome"]["label"] == "ai_generated" and fake["outcome"]["p_ai"] > 0.85
    assert real["outcome"]["label"] == "uncertain" and real["outcome"]["correct"] is False
    for record in records.values():
        messages, requests = record["messages"], record["requests"]
        assert [m["role"] for m in messages[:2]] == ["system", "user"]
        assert record["outcome"]["turns"] == len(requests) and record["parts"] == 1
        answers = [messages[n] for n in requests]
        assert all(a["role"] == "assistant" for a in answers)
        assert answers[-1] is messages[-1] and not answers[-1].get("tool_calls")
        verdict = json.loads(answers[-1]["content"])  # the verdict JSON a model writes
        assert set(verdict) == {"label", "p_ai", "explanation", "cite", "boxes"}
        assert verdict["cite"] and all(f"[{c}]" in verdict["explanation"] for c in verdict["cite"])
        assert {e["id"] for e in record["evidence"]} >= set(verdict["cite"])
        for message in messages:
            for part in message["content"] if isinstance(message["content"], list) else ():
                if part["type"] == "image_url":
                    assert (every_case / part["image_url"]["url"]).is_file()
    assert len(real["requests"]) > 1  # the photo's candidate regions were examined first
    calls = real["messages"][real["requests"][0]]["tool_calls"]
    assert calls[0]["function"]["name"] == "zoom"
    assert {c["function"]["name"] for c in calls} > {"zoom", "ela"}


def test_the_offline_export_is_deterministic(labelled, every_case, tmp_path):
    export(labelled, tmp_path / "again", keep="all")
    assert files(tmp_path / "again") == files(every_case)


def test_rejection_keeps_only_correct_verdicts_and_balance_evens_the_labels(labelled, tmp_path):
    summary = export(labelled, tmp_path / "correct")  # keep="correct" by default
    kept = read_traces(tmp_path / "correct")
    assert [r["id"] for r in kept] == ["fake/1.png", "fake/2.png"]
    assert summary["cases"] == 3 and summary["correct"] == 2 and summary["kept_cases"] == 2
    used = {p.name for p in (tmp_path / "correct" / "images").iterdir()}
    referenced = {
        Path(part["image_url"]["url"]).name
        for r in kept
        for m in r["messages"]
        if isinstance(m["content"], list)
        for part in m["content"]
        if part["type"] == "image_url"
    }
    assert used == referenced  # the rejected case's images are not left behind

    summary = export(labelled, tmp_path / "balanced", keep="all", balance=True)
    assert [r["id"] for r in read_traces(tmp_path / "balanced")] == ["real/3.png", "fake/1.png"]
    assert summary["by_label"] == {"fake": 1, "real": 1}


def test_composites_come_with_their_region(labelled, tmp_path):
    export(labelled, tmp_path / "out", keep="all", composites=1, seed=3)
    records = read_traces(tmp_path / "out")
    composite = records[-1]
    assert composite["id"] == "composite/0/real/3.png" and composite["label"] == "fake"
    (x0, y0, x1, y1) = composite["regions"][0]
    width, height = composite["size"]
    assert (width, height) == (384, 288) and 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
    assert all(r["regions"] == [] for r in records[:-1])
    from sleuth.evaluation import rewards

    assert 0.0 <= rewards.localisation(composite) <= 1.0
    assert all(rewards.localisation(r) is None for r in records[:-1])


def test_the_trl_layout_is_the_served_rendering(every_case, labelled, tmp_path):
    export(labelled, tmp_path / "trl", keep="all", fmt="trl")
    openai = {r["id"]: r for r in read_traces(every_case)}
    calls = []
    for record in read_traces(tmp_path / "trl"):
        twin = openai[record["id"]]
        served = served_messages(inline_images(twin["messages"], every_case))[0]
        images = [p["image_url"]["url"] for m in twin["messages"] for p in _parts(m)]
        placeholders = [p for m in record["messages"] for p in _parts(m) if p["type"] == "image"]
        assert len(placeholders) == len(record["images"]) == len(images)
        assert [Path(p).name for p in record["images"]] == [Path(p).name for p in images]
        assert record["tools"] == served_tools(twin["tools"])
        # the messages are vLLM's normalisation, an image placeholder where each image was
        for mine, theirs in zip(record["messages"], served, strict=True):
            assert _no_images(mine) == _no_images(theirs)
        calls += [c for m in record["messages"] for c in m.get("tool_calls") or ()]
    assert calls and all(isinstance(c["function"]["arguments"], dict) for c in calls)


def _parts(message: dict) -> list[dict]:
    content = message.get("content")
    return (
        [p for p in content if p["type"] in ("image", "image_url")]
        if isinstance(content, list)
        else []
    )


def _no_images(message: dict) -> dict:
    content = message.get("content")
    if not isinstance(content, list):
        return message
    return message | {"content": [p for p in content if p["type"] not in ("image", "image_url")]}


def test_the_export_is_what_the_openai_backend_sends(every_case, labelled, tmp_path):
    """Replay each exported answer from a server: the openai backend's requests are the export's."""
    for record in read_traces(every_case):
        answers = [record["messages"][n] for n in record["requests"]]
        with serve([lambda body, a=a: a for a in answers]) as (url, seen):
            settings = Settings.load(
                data_dir=tmp_path / record["id"].replace("/", "_"),
                backend="openai:qwen2.5-vl",
                base_url=url,
            )
            with open_session(settings) as session:
                session.analyze(labelled / record["id"])
        sent = seen[: len(answers)]
        assert len(sent) == len(answers)
        for (messages, tools, _), body in zip(
            answered_requests(record, every_case), sent, strict=True
        ):
            assert body["messages"] == messages and body["tools"] == tools


def test_cli_exports_a_folder(labelled, tmp_path):
    out = tmp_path / "cli"
    result = CliRunner().invoke(
        app, ["traces", "export", str(labelled), "--out", str(out), "--balance", "--max-steps", "2"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["max_steps"] == 2 and summary["keep"] == "correct" and summary["balance"]
    assert summary["kept_cases"] == 0 and (out / "traces.jsonl").read_text() == ""
    assert "0 record(s)" in result.output


def test_cli_refuses_an_unknown_format(labelled, tmp_path):
    result = CliRunner().invoke(
        app, ["traces", "export", str(labelled), "--out", str(tmp_path), "--format", "csv"]
    )
    assert result.exit_code != 0


def test_exported_calls_are_well_formed_and_rewards_apply(every_case):
    from sleuth.evaluation import rewards

    records = {r["id"]: r for r in read_traces(every_case)}
    real, fake = records["real/3.png"], records["fake/1.png"]
    calls = [c for m in real["messages"] for c in m.get("tool_calls") or ()]
    assert calls and rewards.call_problems(real) == [] and rewards.tool_calls(real) == 0.0
    assert all(json.loads(c["function"]["arguments"])["box"] for c in calls)
    assert rewards.correctness(fake) == 1.0 and rewards.correctness(real) == 0.0
    assert rewards.citations(fake) > 0 and rewards.written_verdict(fake)["label"] == "ai_generated"
    assert rewards.localisation(fake) is None
    assert rewards.total(fake) > rewards.total(real)


def test_the_teacher_concludes_as_the_offline_analyst(every_case, labelled, tmp_path):
    records = {r["id"]: r for r in read_traces(every_case)}
    with open_session(Settings.load(data_dir=tmp_path / "data")) as session:
        for key in ("fake/1.png", "real/3.png"):
            verdict = session.analyze(labelled / key)
            outcome = records[key]["outcome"]
            assert outcome["label"] == verdict.label and outcome["stopped"] == verdict.stopped
            assert outcome["p_ai"] == pytest.approx(verdict.p_ai, abs=0.02)
            explanation = json.loads(records[key]["messages"][-1]["content"])["explanation"]
            # the same reasoning, without the analyst's "no vision-language model looked"
            taught, analysed = explanation.splitlines(), verdict.explanation.splitlines()
            assert analysed[0].startswith("Signal-only analysis")
            assert taught[0].startswith("The fused tool evidence gives p_ai")
            assert analysed[0].endswith(taught[0].removeprefix("The"))
            assert taught[1:3] == analysed[1:3]  # regions differ: the model's frame rounds
            assert "vision-language" not in explanation


def test_shared_images_export_well_formed_traces(shared_data, tmp_path):
    """Real files (C2PA, EXIF, JPEG photos): every record's requests chain, every call is valid."""
    from sleuth.evaluation import rewards

    samples = read_sources([shared_data / "manifest.csv"])
    chosen = [s for s in samples if s.label == "fake"][:2] + [
        s for s in samples if s.label == "real"
    ][:2]
    summary = export_traces(
        trace_cases(chosen),
        out=tmp_path / "out",
        recorder=recording_backend("offline", BackendOptions()),
        registry=ToolRegistry.discover(),
        context=AgentContext(),
        options=ExportOptions(keep="all"),
    )
    assert summary["cases"] == 4 and not summary["failed"]
    for record in read_traces(tmp_path / "out"):
        assert rewards.call_problems(record) == []
        for messages, tools, answer in answered_requests(record, tmp_path / "out"):
            assert messages[0]["role"] == "system" and answer["role"] == "assistant"
            assert tools == record["tools"]
        if record["part"] == record["parts"]:
            assert record["outcome"]["turns"] >= len(record["requests"])
