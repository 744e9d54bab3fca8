"""The README's plugin example, installed through an entry point, works everywhere.

The plugin file, its entry-point line and its contract test are read from the README, so
the documentation cannot drift from what works.
"""

import os
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from sleuth.tools import ToolRegistry, load_image
from tests.conftest import REPO, encode, photo

SECTION = "## Writing a forensic tool"


def readme_blocks() -> dict[str, list[str]]:
    text = (REPO / "README.md").read_text()
    section = text[text.index(SECTION) :]
    section = section[: section.index("\n## ", len(SECTION))]
    blocks: dict[str, list[str]] = {}
    for lang, body in re.findall(r"```(\w+)\n(.*?)```", section, flags=re.S):
        blocks.setdefault(lang, []).append(body)
    return blocks


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory) -> Path:
    """Install the README plugin as a distribution on a private sys.path entry."""
    blocks = readme_blocks()
    root = tmp_path_factory.mktemp("site")
    (root / "acme_sleuth.py").write_text(blocks["python"][0])
    points = tomllib.loads(blocks["toml"][0])["project"]["entry-points"]
    dist = root / "acme_sleuth-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-sleuth\nVersion: 0.1\n")
    lines = [
        f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items())
        for group, eps in points.items()
    ]
    (dist / "entry_points.txt").write_text("\n".join(lines))
    (root / "test_acme_contract.py").write_text(blocks["python"][1])
    return root


@pytest.fixture
def with_plugin(plugin_path, monkeypatch):
    monkeypatch.syspath_prepend(str(plugin_path))
    assert metadata.version("acme-sleuth") == "0.1"
    yield plugin_path
    sys.modules.pop("acme_sleuth", None)


def env_with(path: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(path)}


def test_the_plugin_is_discovered_and_runs(with_plugin):
    registry = ToolRegistry.discover()
    assert "acme_blur" in registry.names()
    from sleuth.tools import load_image

    result = registry.run("acme_blur", load_image(encode(photo())))
    assert result.findings[0].tool == "acme_blur"


def test_the_plugin_appears_in_the_cli(plugin_path, tmp_path):
    sleuth = Path(sys.executable).with_name("sleuth")
    listed = subprocess.run(
        [sleuth, "tools", "list"], capture_output=True, text=True, env=env_with(plugin_path)
    )
    assert listed.returncode == 0, listed.stderr
    assert "acme_blur" in listed.stdout
    image = tmp_path / "photo.png"
    image.write_bytes(encode(photo()))
    ran = subprocess.run(
        [sleuth, "tools", "run", "acme_blur", str(image), "--json"],
        capture_output=True,
        text=True,
        env=env_with(plugin_path),
    )
    assert ran.returncode == 0, ran.stderr
    assert '"tool":"acme_blur"' in ran.stdout.replace(" ", "")


def test_the_plugin_passes_the_shipped_contract(plugin_path):
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(plugin_path)],
        capture_output=True,
        text=True,
        env=env_with(plugin_path),
        cwd=plugin_path,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert re.search(r"\b\d+ passed", run.stdout)
    assert "failed" not in run.stdout


def test_the_detector_example_declares_a_capped_score_and_names_its_missing_weights(
    tmp_path, monkeypatch
):
    from sleuth.tools.isolation import failure, run_isolated

    (tmp_path / "acme_bfree.py").write_text(readme_blocks()["python"][2])
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("SLEUTH_ACME_BFREE_WEIGHTS", raising=False)
    try:
        from acme_bfree import acme_bfree
    finally:
        sys.modules.pop("acme_bfree", None)
    registry = ToolRegistry([acme_bfree])
    declared = registry.calibrations()["acme_bfree"]
    assert (declared.weight, declared.cap) == (1.0, 1.0) and declared.on
    result = run_isolated(registry, "acme_bfree", load_image(encode(photo(0, (96, 64)))))
    assert "set SLEUTH_ACME_BFREE_WEIGHTS to the detector's weights file" in failure(result)
