"""The command line, run as users run it: the installed console script in a subprocess."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import encode, photo

SLEUTH = Path(sys.executable).with_name("sleuth")


def sleuth(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([SLEUTH, *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def jpeg(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("img") / "photo.jpg"
    path.write_bytes(encode(photo(0, (320, 240)), "JPEG", quality=88))
    return path


def test_tools_list_shows_every_builtin():
    result = sleuth("tools", "list", "--json")
    assert result.returncode == 0, result.stderr
    names = {row["name"] for row in json.loads(result.stdout)}
    assert {"zoom", "ela", "spectrum", "noise"} <= names


def test_tools_run_with_box_params_json_and_artifacts(jpeg, tmp_path):
    result = sleuth(
        "tools", "run", "zoom", str(jpeg), "--box", "10,20,110,100",
        "--set", "target=300", "--set", "margin=0", "--json", "--out", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    (finding,) = payload["findings"]
    assert finding["boxes"] == [{"x0": 10, "y0": 20, "x1": 110, "y1": 100}]
    (artifact,) = payload["artifacts"]
    with Image.open(artifact["path"]) as crop:
        assert crop.size == (300, 240)
    assert Path(artifact["path"]).parent == tmp_path


def test_tools_run_prints_a_table(jpeg):
    result = sleuth("tools", "run", "noise", str(jpeg))
    assert result.returncode == 0, result.stderr
    assert "noise" in result.stdout and "score" in result.stdout


def test_survey_json_has_every_survey_tool_and_candidates(jpeg):
    result = sleuth("tools", "survey", str(jpeg), "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert {"ela", "noise", "spectrum"} <= set(payload["results"])
    assert "zoom" not in payload["results"]
    assert payload["image"]["width"] == 320
    assert isinstance(payload["candidates"], list)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tools", "run", "ela", "missing.png"], "cannot read missing.png"),
        (["tools", "run", "nope", "{jpeg}"], "no tool named 'nope'"),
        (["tools", "run", "ela", "{jpeg}", "--box", "1,2,3"], "cannot read box"),
        (["tools", "run", "ela", "{jpeg}", "--box", "0,0,999,10"], "outside the 320x240 image"),
        (["tools", "run", "ela", "{jpeg}", "--set", "quality=7"], "quality"),
        (["tools", "run", "ela", "{jpeg}", "--set", "quality"], "is not key=value"),
        (["tools", "run", "ela", "{readme}"], "not an image"),
    ],
)
def test_errors_are_one_clear_line_and_a_nonzero_exit(jpeg, args, message):
    readme = Path(__file__).resolve().parents[1] / "README.md"
    result = sleuth(*[a.format(jpeg=jpeg, readme=readme) for a in args])
    assert result.returncode != 0
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and message in lines[0]


def test_blocked_tools_are_not_loaded(jpeg, monkeypatch):
    monkeypatch.setenv("SLEUTH_TOOLS_BLOCKED", "ela,noise")
    result = sleuth("tools", "survey", str(jpeg), "--json")
    assert result.returncode == 0, result.stderr
    assert not {"ela", "noise"} & set(json.loads(result.stdout)["results"])
