"""A calibrated plugin for the fusion's training tests, and a way to install it.

``acme_upright`` reads which half of the image is brighter: the test sets light their
real photos from above and turn their "AI" images upside down, which no colour statistic
sees. The module imports nothing from the tests, so :func:`install` can copy it into a
folder as the module of an installed distribution, as ``pip install`` would.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from sleuth.tools import Calibration, Finding, ToolResult, forensic_tool

MODULE = "acme_upright"


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


@forensic_tool(
    name="acme_upright",
    params=NoParams,
    summary="Probability that the image is upside down (the test sets' 'AI' images).",
    caveat="Only for tests.",
    score_meaning="Probability of AI generation.",
    survey=True,
    regional=False,
    calibrated=Calibration(on="the fusion training tests' synthetic images"),
)
def acme_upright(image, params, ctx):
    grey = image.rgb.mean(axis=2)
    half = grey.shape[0] // 2
    darker_top = float(grey[half:].mean() - grey[:half].mean())
    score = 1.0 / (1.0 + math.exp(-darker_top / 10.0))
    return ToolResult(findings=[Finding(summary=f"Top darker by {darker_top:.1f}.", score=score)])


def install(root: Path) -> Path:
    """Install this module with its entry point under ``root``; return ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(Path(__file__), root / f"{MODULE}.py")
    dist = root / "acme_upright-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-upright\nVersion: 0.1\n")
    entry = f"[sleuth.tools]\nacme_upright = {MODULE}:acme_upright\n"
    (dist / "entry_points.txt").write_text(entry)
    return root
