"""The default survey: every survey tool on the whole image, and the candidate regions."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sleuth.tools.base import ToolResult
from sleuth.tools.image import LoadedImage
from sleuth.tools.proposal import ScoredBox, nms
from sleuth.tools.registry import ToolRegistry

Progress = Callable[[str, int, int], None]
"""Called as ``progress(tool_name, done, total)`` before each tool runs."""


@dataclass(frozen=True)
class Survey:
    """What the survey found.

    Attributes
    ----------
    results : dict of str to ToolResult
        Per tool, in the order run.
    candidates : list of ScoredBox
        Boxes from every finding, merged by non-maximum suppression, best first: the
        regions worth a closer look.
    seconds : dict of str to float
        Wall time per tool.
    """

    results: dict[str, ToolResult]
    candidates: list[ScoredBox]
    seconds: dict[str, float]


def survey_tools(registry: ToolRegistry) -> list[str]:
    """Return the names of the tools the default survey runs, cheapest first."""
    order = {"cheap": 0, "moderate": 1, "expensive": 2}
    specs = [s for s in registry if s.survey]
    return [s.name for s in sorted(specs, key=lambda s: (order[s.cost], s.name))]


def run_survey(
    registry: ToolRegistry,
    image: LoadedImage,
    *,
    tools: list[str] | None = None,
    artifact_dir: Path | None = None,
    top_k: int = 5,
    progress: Progress | None = None,
) -> Survey:
    """Run the survey tools on the whole image and propose candidate regions.

    Parameters
    ----------
    registry : ToolRegistry
    image : LoadedImage
    tools : list of str, optional
        Tools to run instead of :func:`survey_tools`.
    artifact_dir : Path, optional
        Where artifacts are written.
    top_k : int
        Most candidate regions returned.
    progress : callable, optional
        See :data:`Progress`.

    Returns
    -------
    Survey
    """
    names = tools if tools is not None else survey_tools(registry)
    results: dict[str, ToolResult] = {}
    seconds: dict[str, float] = {}
    for done, name in enumerate(names):
        if progress is not None:
            progress(name, done, len(names))
        start = time.perf_counter()
        results[name] = registry.run(name, image, artifact_dir=artifact_dir)
        seconds[name] = time.perf_counter() - start
    boxes = [
        ScoredBox(
            box=box, score=f.score or 0.0, area_fraction=box.area / (image.width * image.height)
        )
        for result in results.values()
        for f in result.findings
        for box in f.boxes
    ]
    return Survey(results=results, candidates=nms(boxes)[:top_k], seconds=seconds)
