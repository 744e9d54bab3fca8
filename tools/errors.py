"""Error types of the forensic tool layer.

Two kinds of failure are kept apart, as langgraph's ``ToolNode`` does:

* :class:`ToolInputError` is something the caller (a person, an MCP client or the
  model) can fix: a bad parameter, a box outside the image. The agent sends it back
  to the model with the hint; the MCP server returns it as an error result.
* Anything else raised by a tool is a bug. :meth:`ToolRegistry.run
  <sleuth.tools.registry.ToolRegistry.run>` lets it propagate; the survey, the agent and
  the CLI run tools through :func:`sleuth.tools.isolation.run_isolated`, which turns it
  (and a tool over its time budget, :class:`ToolTimeoutError`) into an error finding.
"""

from __future__ import annotations


class SleuthError(Exception):
    """Base class of every error sleuth raises on purpose."""


class ImageLoadError(SleuthError, ValueError):
    """The input is not an image sleuth can analyse (empty, truncated, too large, ...).

    Parameters
    ----------
    message : str
        One sentence saying what is wrong and, where possible, what to do.
    reason : str
        A stable machine-readable code:

        * ``empty``, ``too_large`` (bytes), ``too_many_pixels`` (canvas);
        * ``too_complex``: a structure beyond a cap (JPEG scans or segments, TIFF pages);
        * ``too_slow``: decoding ran out of its time budget (setting ``decode_seconds``);
        * ``not_an_image``: no known image format;
        * ``unsupported``: a known format sleuth does not accept (EPS, XBM, ...), or one
          whose codec is not installed (the message names the extra to install);
        * ``truncated``, ``unreadable``: damaged data, or a file that cannot be read.
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class ToolInputError(SleuthError, ValueError):
    """A tool call the caller can fix: bad parameters, a region outside the image."""


class ToolTimeoutError(SleuthError, TimeoutError):
    """A tool ran past its time budget (setting ``tool_seconds``); its result is discarded."""


class PluginValidationError(SleuthError, TypeError):
    """A tool specification that cannot be registered; the message says how to fix it."""


class UnknownToolError(SleuthError, KeyError):
    """No tool of that name is registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
