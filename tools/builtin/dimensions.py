"""``dimensions``: how the image's size compares with what generators output."""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field

from sleuth.tools.base import Finding, ToolContext, ToolResult, forensic_tool
from sleuth.tools.builtin.provenance import is_lossless
from sleuth.tools.image import LoadedImage


class DimensionsParams(BaseModel):
    """Parameters of :func:`dimensions`."""

    model_config = ConfigDict(extra="forbid")

    multiple: int = Field(
        64, ge=8, le=256, description="Side multiple that latent generators output."
    )


def size_prior(width: int, height: int, *, multiple: int = 64) -> dict[str, float | int | bool]:
    """Describe an image size the way a generator-size prior needs it.

    Latent diffusion models decode latents 8x upsampled and are run at sides that
    are multiples of 64 (512, 768, 1024, 1216x832, ...), mostly square; camera
    sensors give 4:3 or 3:2 frames of other sizes.

    Parameters
    ----------
    width, height : int
        Pixels, after EXIF orientation.
    multiple : int
        The side multiple tested.

    Returns
    -------
    dict
        ``width``, ``height``, ``megapixels_log`` (natural log of megapixels),
        ``square``, ``sides_multiple`` (both sides divisible by ``multiple``) and
        ``aspect_log`` (``|log(width / height)|``).

    References
    ----------
    .. [1] Rombach, R. et al. "High-resolution image synthesis with latent diffusion
           models." CVPR 2022.
    """
    return {
        "width": width,
        "height": height,
        "megapixels_log": round(math.log(width * height / 1e6), 4),
        "square": width == height,
        "sides_multiple": width % multiple == 0 and height % multiple == 0,
        "aspect_log": round(abs(math.log(width / height)), 4),
    }


@forensic_tool(
    name="dimensions",
    params=DimensionsParams,
    summary="Size prior: whether the image's dimensions are typical of generator output "
    "(sides that are multiples of 64, square frames such as 512x512 or 1024x1024) or of "
    "camera frames.",
    caveat="Crops, resizes and upscalers change the size; many web photos are square too. "
    "A prior, not proof: a generator's size on a losslessly stored file is weak evidence "
    "of generation, and no size is ever evidence of a real capture.",
    score_meaning="No score of its own: the metrics enter the trained fusion.",
    cost="cheap",
    survey=True,
    regional=False,
)
def dimensions(image: LoadedImage, params: DimensionsParams, ctx: ToolContext) -> ToolResult:
    """Report the size prior's figures for the whole image."""
    del ctx  # no artifacts
    prior = size_prior(image.width, image.height, multiple=params.multiple)
    prior["lossless"] = is_lossless(image)
    typical = prior["sides_multiple"]
    summary = (
        f"{image.width}x{image.height} pixels: "
        + (
            f"both sides are multiples of {params.multiple}, as generators output"
            if typical
            else f"not a multiple-of-{params.multiple} generator size"
        )
        + ("; square." if prior["square"] else ".")
    )
    finding = Finding(
        summary=summary,
        metrics=prior,
        caveats=["image size is a prior; resizing or cropping changes it"],
    )
    return ToolResult(findings=[finding])
