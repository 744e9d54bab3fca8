"""``sleuth tools new`` writes a plugin that installs and passes its own tests as written."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sleuth.cli import app
from sleuth.scaffold import ScaffoldError, distribution, scaffold_plugin, weights_setting

PIP = [sys.executable, "-m", "pip"]


def offline_build_problem() -> str | None:
    """Say why this environment cannot build an editable install offline (None: it can).

    ``pip install --no-build-isolation`` uses the environment's own setuptools, which
    needs the ``wheel`` package for an editable install before 70.1.
    """
    try:
        import setuptools
    except ImportError:
        return "setuptools is not installed (pip install -e '.[dev]')"
    version = tuple(int(part) for part in setuptools.__version__.split(".")[:2])
    if version >= (70, 1):
        return None
    try:
        import wheel  # noqa: F401
    except ImportError:
        return f"setuptools {setuptools.__version__} needs wheel; pip install -e '.[dev]'"
    return None if version >= (64, 0) else f"setuptools {setuptools.__version__} is too old"


def test_the_package_has_the_entry_point_the_module_the_test_and_a_readme(tmp_path):
    written = scaffold_plugin("acme_flat", tmp_path / "p")
    names = sorted(p.relative_to(tmp_path / "p").as_posix() for p in written)
    assert names == [
        "README.md",
        "pyproject.toml",
        "src/sleuth_acme_flat/__init__.py",
        "src/sleuth_acme_flat/tool.py",
        "tests/test_acme_flat.py",
    ]
    pyproject = (tmp_path / "p" / "pyproject.toml").read_text()
    entry = 'acme_flat = "sleuth_acme_flat.tool:acme_flat"'
    assert f'[project.entry-points."sleuth.tools"]\n{entry}' in pyproject
    assert "ToolContract" in (tmp_path / "p" / "tests" / "test_acme_flat.py").read_text()
    assert "calibrated" not in (tmp_path / "p" / "src" / "sleuth_acme_flat" / "tool.py").read_text()


def test_a_calibrated_one_declares_its_score_and_reads_its_weights_from_a_setting(tmp_path):
    scaffold_plugin("acme_detector", tmp_path / "p", calibrated=True)
    tool = (tmp_path / "p" / "src" / "sleuth_acme_detector" / "tool.py").read_text()
    assert "calibrated=Calibration(" in tool and "cap=1.0" in tool
    assert weights_setting("acme_detector") == "SLEUTH_ACME_DETECTOR_WEIGHTS"
    assert 'WEIGHTS_ENV = "SLEUTH_ACME_DETECTOR_WEIGHTS"' in tool
    assert "SLEUTH_ACME_DETECTOR_WEIGHTS" in (tmp_path / "p" / "README.md").read_text()


@pytest.mark.parametrize(
    ("name", "taken", "hint"),
    [
        ("Acme-Flat", (), "is invalid"),
        ("ela", ("ela", "noise"), "already installed; prefix it"),
    ],
)
def test_bad_or_taken_names_are_refused(tmp_path, name, taken, hint):
    with pytest.raises(ScaffoldError, match=hint):
        scaffold_plugin(name, tmp_path / "p", taken=taken)
    assert not (tmp_path / "p").exists()


def test_an_existing_folder_with_files_is_left_alone(tmp_path):
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "mine.txt").write_text("keep")
    with pytest.raises(ScaffoldError, match="not an empty folder"):
        scaffold_plugin("acme_flat", tmp_path / "p")
    assert [p.name for p in (tmp_path / "p").iterdir()] == ["mine.txt"]


def test_the_command_refuses_a_builtin_name_in_one_line(tmp_path):
    result = CliRunner().invoke(app, ["tools", "new", "ela", "--dir", str(tmp_path / "p")])
    assert result.exit_code != 0 and not (tmp_path / "p").exists()


@pytest.mark.slow
@pytest.mark.parametrize("calibrated", [False, True], ids=["plain", "calibrated"])
def test_a_new_plugin_installs_and_passes_its_own_tests(tmp_path, calibrated):
    if (problem := offline_build_problem()) is not None:
        pytest.skip(problem)
    name = "acme_scaffolded_detector" if calibrated else "acme_scaffolded_flat"
    folder = tmp_path / "plugin"
    options = ["--calibrated"] if calibrated else []
    made = CliRunner().invoke(app, ["tools", "new", name, "--dir", str(folder), *options])
    assert made.exit_code == 0, made.output
    (tmp_path / "none.toml").write_text("")
    env = {**os.environ, "SLEUTH_CONFIG": str(tmp_path / "none.toml")}
    env.pop(weights_setting(name), None)
    try:
        install = [*PIP, "install", "-q", "--no-deps", "--no-build-isolation", "--no-index"]
        done = run([*install, "-e", str(folder)], env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        tested = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], folder, env)
        assert tested.returncode == 0, tested.stdout + tested.stderr
        assert " passed" in tested.stdout and "failed" not in tested.stdout
        listed = run([str(Path(sys.executable).with_name("sleuth")), "tools", "list", "--json"])
        assert listed.returncode == 0, listed.stderr
        (row,) = [r for r in json.loads(listed.stdout) if r["name"] == name]
        assert (row["calibrated"] is not None) == calibrated
    finally:
        run([*PIP, "uninstall", "-y", "-q", distribution(name)], env=env)
    assert run([*PIP, "show", "-q", distribution(name)], env=env).returncode != 0


def run(command, cwd=None, env=None):
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
