"""Reasoning backends behind one interface, made from a ``provider:model`` string.

Providers are looked up in one table (:data:`~sleuth.agent.backends.options.PROVIDERS`);
a provider's module is imported only when used, so the offline default never imports an
HTTP client or torch. The interface itself (:mod:`sleuth.agent.backends.base`) loads on
first use, so reading :class:`BackendOptions` stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from sleuth.agent.backends.options import PROVIDERS, BackendOptions
from sleuth.tools.errors import SleuthError

if TYPE_CHECKING:
    from sleuth.agent.backends.base import Backend

_INTERFACE = ("Backend", "BackendError", "ModelVerdict", "Opinion", "Situation")


def __getattr__(name: str) -> Any:
    if name in _INTERFACE:
        from sleuth.agent.backends import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def make_backend(spec: str, options: BackendOptions | None = None) -> Backend:
    """Make a backend from ``"provider:model"`` (or just ``"provider"`` for offline).

    Raises
    ------
    SleuthError
        For an unknown provider, a missing model name, or a missing optional dependency
        (the message names the extra to install).
    """
    provider, _, model = spec.partition(":")
    if provider not in PROVIDERS:
        raise SleuthError(
            f"unknown backend {provider!r} in {spec!r}; use one of: {', '.join(PROVIDERS)} "
            "(e.g. offline, openai:Qwen/Qwen2.5-VL-7B-Instruct)"
        )
    if provider != "offline" and not model:
        raise SleuthError(f"backend {provider!r} needs a model: write {provider}:MODEL_NAME")
    module_name, _, class_name = PROVIDERS[provider].partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, class_name)(model, options or BackendOptions())


__all__ = [
    "PROVIDERS",
    "Backend",
    "BackendError",
    "BackendOptions",
    "ModelVerdict",
    "Opinion",
    "Situation",
    "make_backend",
]
