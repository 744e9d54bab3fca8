"""Stability as evidence: whether the tools' verdict holds on web-style copies of the image.

A verdict that rests on traces a resize or a re-encode wipes out says little about an image
that has been round the web. After the survey, the pixel tools run again on a few fixed
copies of the image (:func:`sleuth.tools.variants.stability_variants`: downscaled,
re-encoded, cropped) and each copy's evidence is fused as the image's own is. The findings
on the copies never become case evidence (they would be cited); the case keeps a compact
:class:`~sleuth.agent.verdict.Stability` record, and :func:`note` words the sentence the
verdict's explanation gains when the label does not hold.
"""

from __future__ import annotations

import time

from sleuth import prompts
from sleuth.agent.evidence import to_evidence
from sleuth.agent.fusion import FusionWeights, fuse
from sleuth.agent.verdict import Evidence, Stability, VariantCheck, label_for
from sleuth.agent.view import CaseView
from sleuth.tools import LoadedImage, ToolRegistry
from sleuth.tools.survey import run_survey, survey_tools
from sleuth.tools.variants import load_copy, stability_variants

FILE_TOOLS = frozenset({"provenance", "dimensions"})
"""Survey tools that describe the file rather than its pixels; not re-run on the copies.

Provenance (metadata, manifests, watermarks) is absent from a bare copy, and the size prior
reads the canvas size that the copies change on purpose (a crop of 8 pixels turns
1024x1024 into 1016x1016) and whether the file is lossless (every copy is a JPEG). A
copy's fused probability takes the image's own findings of these tools with the copy's
findings from the others, so what is put to the test is the evidence read from the pixels.
"""


def check(
    registry: ToolRegistry,
    image: LoadedImage,
    evidence: list[Evidence],
    *,
    count: int,
    band: tuple[float, float],
) -> Stability:
    """Fuse the survey's evidence on ``count`` web-style copies and compare the labels.

    The image's label is ``label_for(fuse(evidence), band)`` on its whole-image survey
    evidence; a copy's label is the same on the image's own :data:`FILE_TOOLS` findings
    plus the copy's findings from every other survey tool but those that failed on the
    image (one that fails only on a copy gives an error item, which the fusion ignores).
    The verdict is *unstable* when any copy's label differs from the image's. Because
    the three labels split ``[0, 1]`` at the abstain band (``real`` below it,
    ``uncertain`` inside it, ``ai_generated`` above it), two different labels always
    include a confident one: the probability crossed the band, or moved into or out of it.

    Parameters
    ----------
    registry : ToolRegistry
        The survey's tools; its calibrated ones count in every fusion here.
    image : LoadedImage
        The case image.
    evidence : list of Evidence
        The survey's whole-image evidence on the image itself.
    count : int
        Copies to make, 1 to :data:`sleuth.tools.variants.STABILITY_VARIANTS`.
    band : tuple of float
        The abstain band ``(low, high)``.

    Returns
    -------
    Stability
    """
    start = time.perf_counter()
    calibrated = registry.calibrations()
    p_original = fuse(evidence, band=band, calibrated=calibrated)
    own = label_for(p_original, band)
    kept = [e for e in evidence if e.tool in FILE_TOOLS]
    broken = {e.tool for e in evidence if e.kind == "error"}
    scored = FusionWeights.load().scored_tools(calibrated)
    tools = [
        name
        for name in survey_tools(registry)
        if name not in FILE_TOOLS | broken and (scored is None or name in scored)
    ]
    view = CaseView({})
    copies = []
    for name, data in stability_variants(image.full, count):
        found = list(kept)
        done = run_survey(registry, load_copy(data), tools=tools, top_k=0)
        for result in done.results.values():
            offset = len(evidence) + len(found)  # ids unique among the fused items
            found += to_evidence(result, view, offset=offset, region=None, step=0)
        p_copy = fuse(found, band=band, calibrated=calibrated)
        copies.append(VariantCheck(name=name, p_ai=round(p_copy, 4), label=label_for(p_copy, band)))
    return Stability(
        p_original=round(p_original, 4),
        label=own,
        variants=copies,
        stable=all(c.label == own for c in copies),
        seconds=round(time.perf_counter() - start, 4),
    )


def note(stability: Stability) -> str:
    """Return the explanation's sentence for an unstable verdict, naming the copies that moved.

    Parameters
    ----------
    stability : Stability
        An unstable check.

    Returns
    -------
    str
    """
    moved = [c for c in stability.variants if c.label != stability.label]
    return prompts.render(
        "stability_note",
        p_original=stability.p_original,
        copies=[{"name": c.name, "p_ai": c.p_ai} for c in moved],
    )


def summary(stability: Stability) -> str:
    """Return the check in one line, for the case's steps."""
    copies = "; ".join(f"{c.p_ai:.2f} {c.name}" for c in stability.variants)
    holds = "holds" if stability.stable else "does not hold"
    return (
        f"the verdict {holds} on web-style copies: p_ai {stability.p_original:.2f} on the "
        f"image; {copies}"
    )
