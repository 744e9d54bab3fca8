"""Which reasoning backends exist, and the options a model backend may use."""

from __future__ import annotations

from dataclasses import dataclass

PROVIDERS = {
    "offline": "sleuth.agent.backends.offline:OfflineBackend",
    "openai": "sleuth.agent.backends.openai:OpenAIBackend",
    "transformers": "sleuth.agent.backends.local:TransformersBackend",
}
"""Provider name to ``module:class``; each class takes ``(model, options)``."""


@dataclass(frozen=True, kw_only=True)
class BackendOptions:
    """Settings a model backend may use (each ignores what it does not need).

    Attributes
    ----------
    base_url : str, optional
        OpenAI-compatible server, e.g. ``http://127.0.0.1:8000/v1``.
    api_key : str
        Sent as the bearer token (vLLM accepts any unless started with ``--api-key``).
    timeout : float
        Seconds per model call.
    retries : int
        Retries after a failed call, before giving up.
    family : str, optional
        Model family override (see :data:`sleuth.agent.frames.FAMILIES`).
    max_new_tokens : int
        Longest model answer.
    max_pixels : int, optional
        The server's image budget when it differs from the family default (vLLM's
        ``--mm-processor-kwargs '{"max_pixels": N}'``); images are sent at most this large.
    max_images : int
        Images per request the server accepts (vLLM's ``--limit-mm-per-prompt``): the
        case image and the latest crops are sent.
    """

    base_url: str | None = None
    api_key: str = "EMPTY"
    timeout: float = 60.0
    retries: int = 1
    family: str | None = None
    max_new_tokens: int = 512
    max_pixels: int | None = None
    max_images: int = 4
