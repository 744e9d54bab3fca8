"""The fusion's feature vector: numbers read from the whole-image evidence of the survey.

Every feature is one metric (or one provenance fact) of one tool's finding on the whole
image. Nothing identifies the file: no name, path, format string or source. Provenance
enters as two evidence flags (a declared AI origin, a camera/capture origin), next to
the pixel and compression statistics, so the fitted model reports how much each kind
of evidence carries. Regional re-runs are not features: the model is fitted on the
survey, which sees the whole image.

=====================  ===========  ========================================================
feature                tool         what it is
=====================  ===========  ========================================================
provenance_ai          provenance   1 when a finding declares an AI origin (C2PA/IPTC source
                                    type, generator metadata, watermark), else 0
provenance_real        provenance   1 when a finding declares a camera/capture origin
provenance_signed_     provenance   1 when a C2PA manifest whose signature validates
capture                             declares a capture (camera or secure-capture app)
provenance_unsigned_   provenance   1 when a capture origin is declared only by forgeable
capture                             means (camera EXIF, XMP, a C2PA manifest that does not
                                    validate) and no signed capture is present
size_megapixels_log    dimensions   log of megapixels
size_square            dimensions   1 for a square frame
size_multiple_64       dimensions   1 when both sides are multiples of 64
size_aspect_log        dimensions   ``|log(width / height)|``
size_lossless          dimensions   1 when the file stores its pixels losslessly
size_generator_        dimensions   1 when both sides are multiples of 64 and the file
lossless                            stores its pixels losslessly (PNG, lossless WebP, ...):
                                    a generator's frame that no lossy re-encode touched
jpeg_grid_strength     jpeg         share of ZERO votes for the winning 8x8 grid
jpeg_grid_votes        jpeg         ZERO votes cast (textured positions)
jpeg_dq_score          jpeg         double-quantization score
noise_sigma            noise        median noise level (wavelet MAD)
noise_sigma_p90        noise        90th percentile of the noise-level map
noise_npr              noise        NPR block ratio (inside / across 2x2 blocks)
noise_npr_deviation    noise        ``log(|log NPR ratio| + 1e-4)``: the ratio's departure
                                    from 1 either way (a trace of upsampling, and of an
                                    earlier JPEG's 8x8 grid)
spectrum_prominence    spectrum     strongest periodic peak (log10)
spectrum_period_8      spectrum     8-pixel lattice peak
spectrum_period_2      spectrum     2-pixel lattice peak
ela_mean               ela          mean error level after a q90 re-save
ela_p99                ela          99th percentile error level
texture_poor           texture      log residual of texture-poor patches
texture_rich           texture      log residual of texture-rich patches
texture_contrast       texture      their difference
texture_poor_smooth    texture      poor patches' residual for their texture
texture_rich_smooth    texture      rich patches' residual for their texture
colour_saturation      colour       mean HSV saturation
colour_saturation_p95  colour       95th percentile saturation
colour_saturated       colour       share of pixels with saturation above 0.8
colour_clipped_high    colour       share of clipped highlights
colour_clipped_low     colour       share of clipped shadows
colour_chroma_detail   colour       log ratio of chroma (Cb, Cr) to luma neighbour
                                    differences at half resolution, central window
=====================  ===========  ========================================================

Provenance counts in the fusion through fixed rules (:class:`sleuth.agent.fusion.
ProvenanceRules`), not fitted weights, and size only through ``size_generator_lossless``,
which can only raise ``p_ai``: resizing is what the web does to every image, so no size is
evidence of a real capture. The other size figures stay in the vector for reports.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from sleuth.tools.base import MetricValue

FEATURE_SET = "survey-v5"
"""Version of the feature definitions below; a coefficients file names the set it fits."""


@dataclass(frozen=True)
class MetricFeature:
    """A feature read from one metric of one tool's whole-image finding."""

    name: str
    tool: str
    metric: str


METRIC_FEATURES = (
    MetricFeature("size_megapixels_log", "dimensions", "megapixels_log"),
    MetricFeature("size_square", "dimensions", "square"),
    MetricFeature("size_multiple_64", "dimensions", "sides_multiple"),
    MetricFeature("size_aspect_log", "dimensions", "aspect_log"),
    MetricFeature("size_lossless", "dimensions", "lossless"),
    MetricFeature("jpeg_grid_strength", "jpeg", "grid_strength"),
    MetricFeature("jpeg_grid_votes", "jpeg", "grid_votes"),
    MetricFeature("jpeg_dq_score", "jpeg", "dq_score"),
    MetricFeature("noise_sigma", "noise", "noise_sigma"),
    MetricFeature("noise_sigma_p90", "noise", "noise_sigma_p90"),
    MetricFeature("noise_npr", "noise", "npr_block_ratio"),
    MetricFeature("noise_npr_deviation", "noise", "npr_deviation_log"),
    MetricFeature("spectrum_prominence", "spectrum", "prominence"),
    MetricFeature("spectrum_period_8", "spectrum", "peak_period_8"),
    MetricFeature("spectrum_period_2", "spectrum", "peak_period_2"),
    MetricFeature("ela_mean", "ela", "mean_level"),
    MetricFeature("ela_p99", "ela", "p99_level"),
    MetricFeature("texture_poor", "texture", "poor_residual"),
    MetricFeature("texture_rich", "texture", "rich_residual"),
    MetricFeature("texture_contrast", "texture", "contrast"),
    MetricFeature("texture_poor_smooth", "texture", "poor_smoothness"),
    MetricFeature("texture_rich_smooth", "texture", "rich_smoothness"),
    MetricFeature("colour_saturation", "colour", "saturation_mean"),
    MetricFeature("colour_saturation_p95", "colour", "saturation_p95"),
    MetricFeature("colour_saturated", "colour", "saturated_share"),
    MetricFeature("colour_clipped_high", "colour", "clipped_high"),
    MetricFeature("colour_clipped_low", "colour", "clipped_low"),
    MetricFeature("colour_chroma_detail", "colour", "chroma_detail"),
)


PROVENANCE_FEATURES = (
    "provenance_ai",
    "provenance_real",
    "provenance_signed_capture",
    "provenance_unsigned_capture",
)
SIGNED_STATES = frozenset({"Valid", "Trusted"})
"""C2PA validation states whose signature checks out."""
DERIVED_FEATURES = ("size_generator_lossless",)
DERIVED_FROM = {"size_generator_lossless": "dimensions"}
"""The tool whose metrics each derived feature is computed from."""
FEATURE_NAMES = PROVENANCE_FEATURES + tuple(f.name for f in METRIC_FEATURES) + DERIVED_FEATURES
"""Every feature, in the order of the vector."""


class EvidenceLike(Protocol):
    """What features are read from: an agent ``Evidence`` or a tool ``Finding``."""

    @property
    def tool(self) -> str:
        """The tool's name."""

    @property
    def direction(self) -> str:
        """Where the item points: ``ai``, ``real`` or ``neutral``."""

    @property
    def kind(self) -> str:
        """What kind of evidence it is."""

    @property
    def metrics(self) -> Mapping[str, MetricValue]:
        """The tool's numbers."""


@dataclass(frozen=True)
class FeatureVector:
    """Feature values (NaN where the evidence lacks them) and which item gave each.

    Attributes
    ----------
    values : dict of str to float
        By feature name; NaN when missing (the tool did not run, or the image was too
        small for it).
    sources : dict of str to int
        Feature name to the index, in the evidence sequence, of the item it came from.
    """

    values: dict[str, float]
    sources: dict[str, int]


def _number(value: MetricValue) -> float:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return math.nan


def extract_features(evidence: Iterable[EvidenceLike]) -> FeatureVector:
    """Read the feature vector from evidence on the whole image.

    Parameters
    ----------
    evidence : iterable of Evidence or Finding
        Items carrying ``tool``, ``direction``, ``kind`` and ``metrics``; items with a
        ``region`` other than None (regional re-runs) and error items (a tool that
        failed) are skipped.

    Returns
    -------
    FeatureVector
        The first whole-image value of each metric wins.
    """
    values = dict.fromkeys(FEATURE_NAMES, math.nan)
    sources: dict[str, int] = {}
    by_tool: dict[str, list[str]] = {}
    for feature in METRIC_FEATURES:
        by_tool.setdefault(feature.tool, []).append(feature.name)
    metric_of = {f.name: f.metric for f in METRIC_FEATURES}
    for index, item in enumerate(evidence):
        if getattr(item, "region", None) is not None or item.kind == "error":
            continue
        if item.tool == "provenance":
            for flag in PROVENANCE_FEATURES:
                if flag not in sources:  # the first provenance item stands for "none declared"
                    values[flag], sources[flag] = 0.0, index
                if _declares(item, flag) and values[flag] == 0.0:
                    values[flag], sources[flag] = 1.0, index
            continue
        for name in by_tool.get(item.tool, ()):
            if name in sources or metric_of[name] not in item.metrics:
                continue
            number = _number(item.metrics[metric_of[name]])
            if not math.isnan(number):
                values[name], sources[name] = number, index
    if values["provenance_signed_capture"] == 1.0:
        values["provenance_unsigned_capture"] = 0.0
    values["size_generator_lossless"] = values["size_multiple_64"] * values["size_lossless"]
    if "size_multiple_64" in sources and not math.isnan(values["size_generator_lossless"]):
        sources["size_generator_lossless"] = sources["size_multiple_64"]
    return FeatureVector(values=values, sources=sources)


def _declares(item: EvidenceLike, flag: str) -> bool:
    """Tell whether a provenance item sets one provenance flag."""
    if flag == "provenance_ai":
        return item.direction == "ai"
    if item.direction != "real":
        return False
    signed = item.metrics.get("c2pa_validation_state") in SIGNED_STATES
    if flag == "provenance_signed_capture":
        return signed
    if flag == "provenance_unsigned_capture":
        return not signed
    return True  # provenance_real: any declared capture
