"""The engines give the same rows; the command line stops cleanly and resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sleuth.scan.output import ROWS
from sleuth.scan.run import ScanOptions, run_scan
from tests.scan.conftest import jpeg

VOLATILE = {"seconds"}


def table(out: Path) -> dict[tuple[str, str | None], dict]:
    rows = [json.loads(line) for line in (out / ROWS).read_text().splitlines()]
    return {
        (r["path"], r["member"]): {k: v for k, v in r.items() if k not in VOLATILE} for r in rows
    }


def require_ray() -> None:
    try:
        import ray  # noqa: F401
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("Ray is not installed (CI=true: a missing engine is a failure)")
        pytest.skip("Ray is not installed: pip install 'sleuth[ray]'")


def test_ray_and_the_process_pool_give_the_same_rows(folder, settings, tmp_path):
    require_ray()
    local, ray = tmp_path / "local", tmp_path / "ray"
    run_scan(ScanOptions(sources=(str(folder),), out=local, jobs=2), settings)
    report = run_scan(ScanOptions(sources=(str(folder),), out=ray, jobs=2, engine="ray"), settings)
    assert report.total == 7
    assert table(ray) == table(local)


def sleuth(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "sleuth", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
        preexec_fn=interruptible,
    )


def interruptible() -> None:
    """Start the child with SIGINT at its default, as a command typed at a terminal.

    Whatever the test runner's own disposition: a child inherits an ignored SIGINT, and
    Python keeps it ignored. (Not shown to be why one CI run saw the scan finish after
    its SIGINT; :func:`sigint_handled` is checked before the signal is sent.)
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def sigint_handled(pid: int) -> bool:
    """Whether process ``pid`` catches SIGINT and does not block it (Linux ``/proc``)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True  # unknown here
    masks = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    bit = 1 << (signal.SIGINT - 1)
    caught = int(masks.get("SigCgt", "2"), 16) & bit
    blocked = int(masks.get("SigBlk", "0"), 16) & bit
    return bool(caught and not blocked)


def test_ctrl_c_leaves_valid_outputs_and_a_rerun_finishes(tmp_path):
    import pyarrow.parquet as pq

    source = tmp_path / "in"
    source.mkdir()
    for i in range(24):
        (source / f"{i:02d}.jpg").write_bytes(jpeg(i, (640, 480)))
    out = tmp_path / "out"
    env = {"SLEUTH_DATA_DIR": str(tmp_path / "data")}
    run = sleuth("scan", str(source), "--out", str(out), "--jobs", "1", env=env)
    deadline = time.monotonic() + 120
    while not (out / ROWS).exists() or not (out / ROWS).read_text().count("\n"):
        assert time.monotonic() < deadline and run.poll() is None, run.communicate()
        time.sleep(0.1)
    assert sigint_handled(run.pid), "the scan does not handle SIGINT"
    run.send_signal(signal.SIGINT)
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 130, stderr
    assert "Run the same command again to continue" in " ".join(stderr.split())
    done = len(pq.read_table(out / "rows.parquet"))
    assert 1 <= done < 24
    assert (out / "summary.html").exists()
    rerun = sleuth("scan", str(source), "--out", str(out), "--jobs", "2", env=env)
    stdout, stderr = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, stderr
    assert f"{done} already in" in " ".join(stdout.split())
    assert len(pq.read_table(out / "rows.parquet")) == 24


def test_options_that_need_escalate_are_refused(tmp_path):
    run = sleuth("scan", str(tmp_path), "--out", str(tmp_path / "o"), "--keep-cases")
    _, stderr = run.communicate(timeout=60)
    assert run.returncode == 2 and "--escalate" in stderr
    missing = sleuth("scan", str(tmp_path / "nothing"), "--out", str(tmp_path / "o"))
    _, stderr = missing.communicate(timeout=60)
    assert missing.returncode == 2 and "no such file or folder" in stderr


def test_eval_on_ray_gives_the_rows_of_the_process_pool(tmp_path, monkeypatch):
    require_ray()
    from typer.testing import CliRunner

    from sleuth.cli import app
    from tests.conftest import encode, photo

    monkeypatch.setenv("SLEUTH_CONFIG", str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text("")
    for label, seed in (("real", 1), ("fake", 2)):
        folder = tmp_path / "set" / label / "src"
        folder.mkdir(parents=True)
        (folder / f"{seed}.png").write_bytes(encode(photo(seed, (256, 192))))
    found = {}
    for engine in ("local", "ray"):
        out = tmp_path / engine
        result = CliRunner().invoke(
            app,
            ["eval", str(tmp_path / "set"), "--track", "native", "--out", str(out),
             "--localisation", "0", "--jobs", "2", "--engine", engine],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
        found[engine] = {
            r["file"]: {k: v for k, v in r.items() if "second" not in k and k != "timings"}
            for r in rows
        }
    assert len(found["ray"]) == 2 and found["ray"] == found["local"]
