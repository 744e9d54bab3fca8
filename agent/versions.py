"""Versions recorded in every verdict, so a result can be traced to what produced it."""

from __future__ import annotations

import functools
import platform
from importlib import metadata

from sleuth.agent.fusion import FusionWeights

PACKAGES = ("sleuth", "langgraph", "pillow", "numpy", "scikit-image", "c2pa-python")


@functools.cache
def _installed() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def versions() -> dict[str, str]:
    """Return the versions of sleuth, its key libraries and the fusion weights."""
    return dict(_installed(), fusion=FusionWeights.load().version)
