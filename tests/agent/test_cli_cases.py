"""The agent's command line, each command in its own process: analyse, ask, list, show."""

import json
import subprocess
import sys

import pytest

from sleuth.agent.verdict import Answer, Case, Verdict
from sleuth.api import open_session
from sleuth.settings import Settings
from tests.agent.conftest import composite_png
from tests.conftest import encode, photo

pytestmark = pytest.mark.slow


def sleuth(args, env, check=True):
    run = subprocess.run(
        [sys.executable, "-m", "sleuth", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    if check and run.returncode != 0:
        raise AssertionError(f"sleuth {args} exited {run.returncode}: {run.stderr}")
    return run


def follow_up_list_and_show(verdict, env):
    """Ask about the case in a new process, then find it in `cases list` and `cases show`."""
    second = sleuth(
        ["ask", verdict.case_id, "what did the noise tool show in box 1?", "--json"], env
    )
    answer = Answer.model_validate_json(second.stdout)
    assert answer.evidence and {e.tool for e in answer.evidence} == {"noise"}
    listed = json.loads(sleuth(["cases", "list", "--json"], env).stdout)
    assert [row["case_id"] for row in listed] == [verdict.case_id] and listed[0]["questions"] == 1
    case = Case.model_validate_json(
        sleuth(["cases", "show", verdict.case_id, "--json"], env).stdout
    )
    assert case.verdict == verdict and case.answers == [answer]


@pytest.fixture
def env(tmp_path, monkeypatch):
    import os

    environ = dict(
        os.environ, SLEUTH_DATA_DIR=str(tmp_path / "data"), SLEUTH_CONFIG=str(tmp_path / "c.toml")
    )
    (tmp_path / "c.toml").write_text("")
    return environ


def test_a_follow_up_in_a_new_process_resumes_the_case_from_sqlite(tmp_path, env):
    image = tmp_path / "composite.png"
    image.write_bytes(composite_png())
    report = tmp_path / "report.html"
    first = sleuth(["analyze", str(image), "--json", "--report", str(report)], env)
    verdict = Verdict.model_validate_json(first.stdout)
    assert (tmp_path / "data" / "cases.sqlite").is_file()
    follow_up_list_and_show(verdict, env)
    assert report.read_text().lstrip().lower().startswith("<!doctype html")


def test_errors_are_one_line_with_exit_code_2(tmp_path, env):
    bad = sleuth(["ask", "0123456789abcdef-01234567", "hello"], env, check=False)
    assert (
        bad.returncode == 2
        and bad.stderr.startswith("error: no case")
        and bad.stderr.count("\n") == 1
    )
    text = tmp_path / "note.png"
    text.write_text("not an image")
    bad = sleuth(["analyze", str(text)], env, check=False)
    assert bad.returncode == 2 and bad.stderr.startswith("error:") and "Traceback" not in bad.stderr
    bad = sleuth(["analyze", str(text), "--max-steps", "0"], env, check=False)
    assert bad.returncode == 2 and "max_steps" in bad.stderr


def test_a_damaged_store_is_one_line_naming_the_file(tmp_path, env):
    image = tmp_path / "small.png"
    image.write_bytes(encode(photo(1, (96, 64))))
    store = tmp_path / "data" / "cases.sqlite"
    store.parent.mkdir()
    store.write_bytes(bytes(range(256)) * 200)
    for args in (["analyze", str(image)], ["cases", "list"]):
        bad = sleuth(args, env, check=False)
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1, bad.stderr
        assert bad.stderr.startswith(f"error: the case store {store} is not a readable SQLite")
        assert "Traceback" not in bad.stderr


def stored_files(data):
    return {
        (str(p.relative_to(data)), p.stat().st_size)
        for folder in ("images", "cases")
        for p in (data / folder).rglob("*")
    }


def test_cases_prune_dry_run_removes_nothing_then_prune_does(tmp_path, env):
    data = tmp_path / "data"
    with open_session(Settings(data_dir=data)) as session:
        made = {session.analyze(encode(photo(seed, (96, 64)))).case_id for seed in (1, 2)}
    before = stored_files(data)
    plan = sleuth(["cases", "prune", "--older-than", "0", "--dry-run"], env).stdout
    assert {line.split()[3] for line in plan.splitlines()[:2]} == made
    assert plan.splitlines()[0].startswith("would remove case") and "would hold" in plan
    assert stored_files(data) == before
    listed = json.loads(sleuth(["cases", "list", "--json"], env).stdout)
    assert {row["case_id"] for row in listed} == made
    done = json.loads(sleuth(["cases", "prune", "--older-than", "0", "--json"], env).stdout)
    assert {c["case_id"] for c in done["cases"]} == made and not done["dry_run"]
    assert json.loads(sleuth(["cases", "list", "--json"], env).stdout) == []
    assert not list((data / "cases").iterdir())
    bad = sleuth(["cases", "prune"], env, check=False)
    assert bad.returncode == 2 and "nothing to prune by" in bad.stderr


def test_cases_carry_their_file_name_and_whole_ids_at_80_columns(tmp_path, env):
    image = tmp_path / "holiday-photo.png"
    image.write_bytes(encode(photo(3)))
    first = Verdict.model_validate_json(sleuth(["analyze", str(image), "--json"], env).stdout)
    again = sleuth(["analyze", str(image)], env)  # the same image: the earlier case is named
    assert f"this image was analysed before: case {first.case_id}" in again.stderr
    table = sleuth(["cases", "list"], env | {"COLUMNS": "80"}).stdout
    assert all(len(line) <= 80 for line in table.splitlines())
    assert first.case_id in table  # whole, to copy into `sleuth ask`
    assert "holiday" in table and first.label in table  # the name folds in a narrow column
    listed = json.loads(sleuth(["cases", "list", "--json"], env).stdout)
    assert {row["name"] for row in listed} == {"holiday-photo.png"}
    shown = sleuth(["cases", "show", first.case_id], env).stdout
    assert "file: holiday-photo.png" in shown
