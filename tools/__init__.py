"""sleuth's forensic tool library: pure image analysis, no LLM, no agent.

Write a tool with :func:`forensic_tool`, expose it through the ``sleuth.tools``
entry-point group, and :meth:`ToolRegistry.discover` finds it.
"""

from sleuth.tools.base import (
    Artifact,
    Calibration,
    Finding,
    ToolContext,
    ToolResult,
    ToolSpec,
    forensic_tool,
)
from sleuth.tools.box import Box
from sleuth.tools.errors import (
    ImageLoadError,
    PluginValidationError,
    SleuthError,
    ToolInputError,
    ToolTimeoutError,
    UnknownToolError,
)
from sleuth.tools.image import ImageLimits, LoadedImage, load_image, load_image_base64
from sleuth.tools.proposal import ScoredBox, block_reduce_mean, propose_boxes
from sleuth.tools.registry import ToolRegistry

__all__ = [
    "Artifact",
    "Box",
    "Calibration",
    "Finding",
    "ImageLimits",
    "ImageLoadError",
    "LoadedImage",
    "PluginValidationError",
    "ScoredBox",
    "SleuthError",
    "ToolContext",
    "ToolInputError",
    "ToolRegistry",
    "ToolResult",
    "ToolSpec",
    "ToolTimeoutError",
    "UnknownToolError",
    "block_reduce_mean",
    "forensic_tool",
    "load_image",
    "load_image_base64",
    "propose_boxes",
]

if __name__ != "sleuth.tools":  # e.g. `import tools` from the repository root: a second copy
    raise ImportError(
        f"import sleuth.tools, not {__name__}: the tools/ folder is installed as sleuth.tools"
    )
