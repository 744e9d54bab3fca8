"""Every image of the shared set loads and survives the survey; the CLI runs on each format."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sleuth.tools import load_image
from sleuth.tools.survey import run_survey

pytestmark = [pytest.mark.data, pytest.mark.slow]


def test_every_shared_image_loads_and_survives_the_survey(shared_data, manifest, registry):
    pytest.importorskip("pillow_heif", reason="HEIF photos in the set need pillow-heif")
    failures = []
    for row in manifest:
        image = load_image(shared_data / row["file"])
        assert image.size == (int(row["width"]), int(row["height"])) or image.orientation != 1
        survey = run_survey(registry, image)
        for result in survey.results.values():
            for finding in result.findings:
                if finding.score is not None and not 0 <= finding.score <= 1:
                    failures.append((row["file"], finding.tool, finding.score))
    assert not failures


def test_cli_runs_every_tool_on_each_format(shared_data, manifest, registry, tmp_path):
    sleuth = Path(sys.executable).with_name("sleuth")
    by_format = {}
    for row in manifest:
        by_format.setdefault(row["format"], row["file"])
    for fmt, file in by_format.items():
        for name in registry.names():
            result = subprocess.run(
                [sleuth, "tools", "run", name, str(shared_data / file), "--json"],
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert result.returncode == 0, (fmt, name, result.stderr)
            assert json.loads(result.stdout)["findings"], (fmt, name)
