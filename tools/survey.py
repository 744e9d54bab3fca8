"""The default survey: every survey tool on the whole image, and the candidate regions.

Each tool runs isolated (:func:`sleuth.tools.isolation.run_isolated`): one that fails gives
an error finding and the survey goes on without it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sleuth.tools.base import ToolResult, ToolSpec
from sleuth.tools.box import Box
from sleuth.tools.errors import ToolInputError
from sleuth.tools.image import LoadedImage
from sleuth.tools.isolation import failed, failure, run_isolated
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
        Per tool, in the order run; a tool that failed has an error finding (:attr:`failed`).
    candidates : list of ScoredBox
        Boxes from every finding, ranked by how strongly they stand out from the image
        and how many tools agree on them, merged by non-maximum suppression, best first
        (:func:`candidate_regions`): the regions worth a closer look.
    seconds : dict of str to float
        Wall time per tool.
    """

    results: dict[str, ToolResult]
    candidates: list[ScoredBox]
    seconds: dict[str, float]

    @property
    def failed(self) -> dict[str, str]:
        """The tools that failed, each with its cause in one line, in the order run."""
        causes = {name: failure(result) for name, result in self.results.items()}
        return {name: cause for name, cause in causes.items() if cause is not None}


def survey_tools(registry: ToolRegistry) -> list[str]:
    """Return the names of the tools the default survey runs.

    The built-ins come first, cheapest first, then the plugins that ask to join
    (``survey=True``), cheapest first: evidence is numbered in this order, so installing
    a plugin never renumbers the built-ins' evidence.
    """
    order = {"cheap": 0, "moderate": 1, "expensive": 2}
    specs = [s for s in registry if s.survey]

    def key(spec: ToolSpec) -> tuple[bool, int, str]:
        return (not registry.is_builtin(spec.name), order[spec.cost], spec.name)

    return [s.name for s in sorted(specs, key=key)]


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
        try:
            results[name] = run_isolated(registry, name, image, artifact_dir=artifact_dir)
        except ToolInputError as err:  # defaults on the whole image: nobody can fix that call
            results[name] = failed(name, err)
        seconds[name] = time.perf_counter() - start
    return Survey(
        results=results,
        candidates=candidate_regions(results, image.size)[:top_k],
        seconds=seconds,
    )


def candidate_regions(
    results: dict[str, ToolResult], image_size: tuple[int, int], *, iou: float = 0.3
) -> list[ScoredBox]:
    """Merge every finding's boxes into candidate regions, the most anomalous first.

    Each box starts from its own score: the finding's ``box_scores`` (how strongly that
    box stands out from the rest of the image), else the finding's score for each of its
    boxes, else 0. Other tools that box the same area raise it, as independent evidence
    does: ``1 - (1 - s) * prod_j (1 - s_j * IoU_j)`` over the other tools ``j``, each
    with its best-overlapping box. Overlapping boxes are then removed by non-maximum
    suppression, so the region that several tools agree on comes before one that a single
    tool found as strongly.

    Parameters
    ----------
    results : dict of str to ToolResult
        Per tool.
    image_size : tuple of int
        ``(width, height)``: area fractions are shares of it.
    iou : float
        Boxes overlapping a better one by more than this are dropped.

    Returns
    -------
    list of ScoredBox
        Best first; each score in [0, 1).
    """
    width, height = image_size
    per_tool: dict[str, list[tuple[Box, float]]] = {}
    for name, result in results.items():
        for finding in result.findings:
            scores = finding.box_scores or [finding.score or 0.0] * len(finding.boxes)
            per_tool.setdefault(name, []).extend(zip(finding.boxes, scores, strict=True))
    merged = []
    for name, boxes in per_tool.items():
        for box, score in boxes:
            doubt = 1.0 - min(score, 0.999)
            for other, theirs in per_tool.items():
                if other != name and theirs:
                    doubt *= 1.0 - max(s * box.iou(b) for b, s in theirs)
            merged.append(
                ScoredBox(box=box, score=1.0 - doubt, area_fraction=box.area / (width * height))
            )
    return nms(merged, iou=iou)
