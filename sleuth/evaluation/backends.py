"""Check the backends of ``sleuth eval`` before any image is analysed.

A run over hundreds of images should not discover on its first image that a model server
is down or that a backend name is misspelt, and then write an error row for every image.
:func:`check_backends` asks each backend what it can answer cheaply (the model server's
list of models; whether a model folder is there) and raises one error naming the backend.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

from sleuth.agent.backends import PROVIDERS, BackendOptions
from sleuth.tools import SleuthError

CHECK_SECONDS = 10.0
"""Longest wait for a model server's list of models."""


class BackendUnavailable(SleuthError, ValueError):
    """A backend of the evaluation cannot run: the message names it and says why."""


def check_backends(specs: Sequence[str], options: BackendOptions) -> None:
    """Check that every backend can run before the evaluation starts.

    Parameters
    ----------
    specs : sequence of str
        ``provider:model`` strings, each at most once.
    options : BackendOptions
        Shared by every model backend (one ``base_url`` for all ``openai`` ones).

    Raises
    ------
    BackendUnavailable
        For a backend given twice, an unknown provider, a missing model name, a missing
        optional dependency, an ``openai`` server that cannot be reached, refuses the
        request or does not serve the model, or a ``transformers`` model that is not there.
    """
    seen: set[str] = set()
    for spec in specs:
        if spec in seen:
            raise BackendUnavailable(f"backend {spec!r} is given twice")
        seen.add(spec)
        provider, _, model = spec.partition(":")
        if provider not in PROVIDERS:
            raise BackendUnavailable(
                f"backend {spec!r}: unknown provider {provider!r}; use one of "
                f"{', '.join(PROVIDERS)} (e.g. offline, openai:MODEL, transformers:FOLDER)"
            )
        if provider != "offline" and not model:
            raise BackendUnavailable(f"backend {spec!r} needs a model: write {provider}:MODEL")
        if provider == "openai":
            _check_server(spec, model, options)
        elif provider == "transformers":
            _check_local_model(spec, model)


def _check_server(spec: str, model: str, options: BackendOptions) -> None:
    """Ask the OpenAI-compatible server which models it serves."""
    if not options.base_url:
        raise BackendUnavailable(
            f"backend {spec!r} needs a server: pass --base-url http://HOST:PORT/v1 "
            "(or set SLEUTH_BASE_URL)"
        )
    import openai

    url = options.base_url
    client = openai.OpenAI(
        base_url=url,
        api_key=options.api_key,
        timeout=min(options.timeout, CHECK_SECONDS),
        max_retries=0,
    )
    try:
        served = [m.id for m in client.models.list()]
    except openai.APITimeoutError:
        raise BackendUnavailable(
            f"backend {spec!r}: the model server at {url} did not answer within "
            f"{min(options.timeout, CHECK_SECONDS):g} s"
        ) from None
    except openai.APIConnectionError as err:
        raise BackendUnavailable(
            f"backend {spec!r}: cannot reach the model server at {url} "
            f"({err.__cause__ or err}); start it, or check --base-url"
        ) from None
    except openai.NotFoundError:
        return  # a server without a list of models: its first answer will tell
    except openai.APIStatusError as err:
        raise BackendUnavailable(
            f"backend {spec!r}: the model server at {url} refused the request "
            f"(HTTP {err.status_code})"
        ) from None
    finally:
        client.close()
    if served and model not in served:
        raise BackendUnavailable(
            f"backend {spec!r}: the model server at {url} serves {', '.join(served)}, not {model!r}"
        )


def _check_local_model(spec: str, model: str) -> None:
    """Check the transformers extra and the model's folder (or hub cache entry)."""
    for module in ("torch", "transformers"):
        if importlib.util.find_spec(module) is None:
            raise BackendUnavailable(
                f"backend {spec!r} needs {module}: pip install torch==2.13.0 'sleuth[local]'"
            )
    folder = Path(model).expanduser()
    if folder.is_dir():
        if not (folder / "config.json").is_file():
            raise BackendUnavailable(f"backend {spec!r}: {folder} holds no config.json")
        return
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(model, "config.json")
    except ValueError:  # not a hub name at all (huggingface_hub's validation error)
        cached = None
    if not isinstance(cached, str):
        raise BackendUnavailable(
            f"backend {spec!r}: {model} is neither a model folder nor a model in the local "
            "hub cache"
        )
