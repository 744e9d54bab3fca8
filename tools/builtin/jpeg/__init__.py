"""``jpeg``: a file's JPEG history - quantization tables, double compression, the 8x8 grid.

Four findings for a JPEG (two for any other file), one per analysis module:

1. Tables (file-wide; :mod:`~sleuth.tools.builtin.jpeg.tables`): ``quality`` (closest IJG
   quality), ``quality_error`` (mean absolute deviation from those IJG tables; 0 for
   ``table_kind`` ``"ijg"``, else ``"custom"``), ``subsampling``, ``progressive``,
   ``table_count``, ``luma_dc_step``, ``library_default_quality``. For other files:
   ``"Not a JPEG: no quantization tables"``.
2. Double quantization (view; :mod:`~sleuth.tools.builtin.jpeg.double_compression`):
   ``dq_score`` in [0, 1], ``dq_detected``, ``dq_primary_quality`` (IJG quality of the
   estimated first tables), ``dq_blocks``, ``dq_subsampled``, ``dq_steps`` (``"uv:q2/q1"``
   per tested frequency: the file's step and the estimated first step, equal when nothing
   better than single quantization fits).
3. Grid (view, offsets in whole-image pixels modulo 8; :mod:`~sleuth.tools.builtin.jpeg.grid`):
   ``grid_found``, ``grid_offset_x/y``, ``grid_strength`` (share of ZERO votes),
   ``grid_log10_nfa``, ``grid_expected_x/y`` and ``grid_aligned`` (JPEG: where its own
   compression puts the grid after EXIF orientation), ``blockiness_x/y``,
   ``extra_grid_asymmetry_x/y``, ``shifted_grid`` and ``shifted_grid_x/y`` (an earlier
   compression on another grid).
4. Local quantization (view, JPEG only; :mod:`~sleuth.tools.builtin.jpeg.local`): boxes on
   the areas where quantization on the file's grid zeroes a smaller share of DCT
   coefficients than elsewhere (``local_regions``, ``local_contrast``, ``local_cells``);
   unscored and neutral, they feed the survey's candidate regions.

Everything is computed from the decoded pixels (no entropy decoding, no new dependency):
the 8x8 DCT of the luminance (:mod:`~sleuth.tools.builtin.jpeg.dct`) is exact up to 8-bit
rounding, which is enough for histograms of low frequencies at the steps of quality <= 95.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from sleuth.tools.base import Finding, ToolContext, ToolResult, forensic_tool
from sleuth.tools.builtin.jpeg.dct import BLOCK
from sleuth.tools.builtin.jpeg.double_compression import (
    DoubleQuantization,
    double_quantization,
    dq_finding,
)
from sleuth.tools.builtin.jpeg.grid import (
    Blockiness,
    GridVote,
    blockiness_profile,
    expected_grid,
    grid_finding,
    zero_grid,
)
from sleuth.tools.builtin.jpeg.local import local_finding, local_quantization
from sleuth.tools.builtin.jpeg.tables import (
    JpegHeader,
    estimate_ijg_quality,
    read_jpeg_header,
    table_finding,
)
from sleuth.tools.image import LoadedImage


class JpegParams(BaseModel):
    """Parameters of :func:`jpeg`."""

    model_config = ConfigDict(extra="forbid")

    max_blocks: int = Field(
        20_000,
        ge=1_000,
        le=1_000_000,
        description="Most 8x8 blocks read by the double-compression test; larger images "
        "are subsampled by block rows.",
    )
    grid_samples: int = Field(
        2_048,
        ge=256,
        le=65_536,
        description="Positions voting for the 8x8 grid origin.",
    )
    dq_threshold: float = Field(
        0.25,
        ge=0.0,
        le=1.0,
        description="dq_score from which double compression is reported.",
    )


@forensic_tool(
    name="jpeg",
    params=JpegParams,
    summary="Reads a file's JPEG history: quantization tables (estimated IJG quality; "
    "standard library tables vs a camera's or editor's custom ones; chroma subsampling; "
    "progressive), double-compression traces in the DCT histograms, and where the 8x8 "
    "blocking grid lies (a shifted grid means a crop after compression; a grid in a PNG "
    "means it was once a JPEG), and boxes areas quantized unlike the rest on the file's "
    "grid. On a region, the DCT and grid tests use that crop.",
    caveat="Compression history is about saving and editing, not authorship: editors and "
    "platforms re-encode and can copy camera tables; a high-quality re-save hides earlier "
    "compressions; small regions give weak statistics.",
    score_meaning="Only the table finding is scored: about 0.3 (towards real) for custom "
    "camera-like tables on a single baseline compression, 0.55 (weakly towards AI) for "
    "standard IJG tables at a library-default quality, 0.5 otherwise. Double compression "
    "and grid findings are unscored and neutral; their strengths are in metrics.",
    cost="cheap",
    survey=True,
    aliases=("jpeg", "quantization", "quantisation", "double compression"),
)
def jpeg(image: LoadedImage, params: JpegParams, ctx: ToolContext) -> ToolResult:
    """Report quantization tables, double quantization and grid alignment of the image."""
    del ctx  # no artifacts
    header = None
    if image.is_jpeg:
        with image.open_file() as img:
            header = read_jpeg_header(img)
    if header is None:
        grid, _ = grid_finding(image, *_grid_evidence(image, params, None), None)
        return ToolResult(findings=[_not_a_jpeg(image), grid])
    expected = expected_grid(image.orientation, image.size)
    grid, shifted = grid_finding(image, *_grid_evidence(image, params, expected), expected)
    fit = estimate_ijg_quality(header.luma, header.chroma)
    dq, skipped = _double_quantization(image, header, expected, params.max_blocks)
    dq_found = dq_finding(dq, params.dq_threshold, fit, skipped)
    resaved = bool(dq_found.metrics["dq_detected"]) or shifted
    tables = table_finding(header, fit, resaved)
    local = local_finding(image, *local_quantization(image, expected))
    return ToolResult(findings=[tables, dq_found, grid, local])


def _grid_evidence(
    image: LoadedImage, params: JpegParams, expected: tuple[int, int] | None
) -> tuple[GridVote | None, tuple[Blockiness, Blockiness] | None]:
    """Vote for the grid; measure blockiness when a grid to compare with is known."""
    vote = zero_grid(image.rgb, origin=image.origin, samples=params.grid_samples)
    own = expected if expected is not None else (vote.offset if vote and vote.found else None)
    block = blockiness_profile(image.rgb, origin=image.origin) if own is not None else None
    return vote, block


def _double_quantization(
    image: LoadedImage, header: JpegHeader, expected: tuple[int, int], max_blocks: int
) -> tuple[DoubleQuantization, str | None]:
    """Run the double-quantization test on the file's own grid, or say why it cannot run."""
    if header.components not in (1, 3):
        skipped = f"a {header.components}-component (CMYK) JPEG has no luminance table"
        return DoubleQuantization(None, {}, None, 0, False), skipped
    origin = image.origin
    start = ((expected[0] - origin[0]) % BLOCK, (expected[1] - origin[1]) % BLOCK)
    return double_quantization(image.rgb, header.luma, start=start, max_blocks=max_blocks), None


def _not_a_jpeg(image: LoadedImage) -> Finding:
    reason = "no quantization tables" if image.is_jpeg else f"a {image.format} file"
    return Finding(
        summary=f"Not a JPEG: no quantization tables ({reason}), so no table or "
        "double-compression evidence; the grid check still applies.",
        score=None,
        direction="neutral",
        kind="signal",
        metrics={"is_jpeg": False, "format": image.format},
    )
