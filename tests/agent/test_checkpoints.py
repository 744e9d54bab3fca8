"""When a case reaches the store: at the end of a run, or after every step as well.

A process killed hard (SIGKILL) while the model is thinking shows the difference: with
``checkpoints = "step"`` the survey already done is kept and the case can be resumed; with
the default ``"run"`` nothing of that run was written yet.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from sleuth.api import open_session
from sleuth.settings import Settings
from tests.agent.conftest import composite_png
from tests.agent.fake_server import serve, text
from tests.agent.test_openai_faults import VERDICT, read_the_model

pytestmark = pytest.mark.slow


def killed_while_the_model_thinks(tmp_path, checkpoints):
    """Run `sleuth analyze` against a model that never answers in time; SIGKILL it."""
    image = tmp_path / "composite.png"
    image.write_bytes(composite_png())
    (tmp_path / "c.toml").write_text("")
    with serve([lambda body: text("late")], delay=60.0) as (url, seen):
        env = dict(
            os.environ,
            SLEUTH_DATA_DIR=str(tmp_path / "data"),
            SLEUTH_CONFIG=str(tmp_path / "c.toml"),
            SLEUTH_BACKEND="openai:Qwen/Qwen2.5-VL-7B-Instruct",
            SLEUTH_BASE_URL=url,
            SLEUTH_MODEL_TIMEOUT="120",
            SLEUTH_CHECKPOINTS=checkpoints,
        )
        log = tmp_path / "stderr.txt"
        with open(log, "wb") as stderr:
            run = subprocess.Popen(
                [sys.executable, "-m", "sleuth", "analyze", str(image)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        deadline = time.monotonic() + 120
        while not seen and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert seen, f"the model was never asked: {log.read_text()}"
        run.send_signal(signal.SIGKILL)
        run.wait(30)
    return Settings(data_dir=tmp_path / "data")


def test_step_checkpoints_keep_the_survey_of_a_killed_run(tmp_path):
    settings = killed_while_the_model_thinks(tmp_path, "step")
    with open_session(settings) as session:
        [summary] = session.cases()
        case = session.case(summary.case_id)
    assert case.status == "interrupted" and case.verdict is None
    with serve([lambda body: text(json.dumps(VERDICT))]) as (url, seen):
        model = settings.model_copy(
            update={"backend": "openai:Qwen/Qwen2.5-VL-7B-Instruct", "base_url": url}
        )
        with open_session(model) as session:
            verdict = session.resume(summary.case_id)
    assert read_the_model(verdict) and seen  # asked once, or twice when nudged to look again
    surveyed = [s.tool for s in verdict.steps if s.kind == "survey"]
    assert surveyed and len(surveyed) == len(set(surveyed))  # the kept survey was not rerun


def test_run_checkpoints_write_nothing_of_a_killed_run(tmp_path):
    settings = killed_while_the_model_thinks(tmp_path, "run")
    with open_session(settings) as session:
        assert session.cases() == []
