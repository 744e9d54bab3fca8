"""Pytest fixtures and fixture factories for tests against real engines.

An engine that is not installed makes its tests skip, saying how to install it; when the
environment variable ``CI`` is ``true`` it makes them fail instead, so a CI run cannot pass
green without having exercised the engines.

Use from any conftest or test module::

    from tests.engines.fixtures import scripted_vllm_fixture, tiny_vlm  # noqa: F401

    agent_vllm = scripted_vllm_fixture(make_examples, name="agent_vllm")

    def test_loop(agent_vllm):  # agent_vllm is the server's base URL, ".../v1"
        ...
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from tests.engines.postgres import postgres_server
from tests.engines.scripted import ChatExample, scripted_vlm_dir
from tests.engines.tiny_vlm import tiny_vlm_dir
from tests.engines.vllm_server import EngineMissing, serve, vllm_python

Examples = Callable[[], Sequence[ChatExample]]


def missing_engine(reason: str) -> None:
    """Skip the current test, or fail it when ``CI=true``."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: a missing engine is a failure)", pytrace=False)
    pytest.skip(reason)


def require_transformers() -> None:
    """Skip/fail unless torch, torchvision and transformers import in this interpreter."""
    for module in ("torch", "torchvision", "transformers"):
        try:
            importlib.import_module(module)
        except Exception as exc:  # an ImportError, or a CUDA-linked wheel failing to load
            missing_engine(
                f"transformers engine unavailable ({module}: {type(exc).__name__}: {exc}); "
                "run scripts/engines.sh"
            )


def require_training() -> None:
    """Skip/fail unless the train extra (trl, peft) imports beside transformers."""
    require_transformers()
    for module in ("trl", "peft", "datasets"):
        try:
            importlib.import_module(module)
        except Exception as exc:
            missing_engine(
                f"the train extra is not installed ({module}: {type(exc).__name__}: {exc}); "
                "run scripts/engines.sh"
            )


def require_vllm() -> Path:
    """Skip/fail unless the vLLM CPU venv is installed; return its interpreter."""
    try:
        return vllm_python()
    except EngineMissing as exc:
        missing_engine(str(exc))
        raise  # not reached: missing_engine raises


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL server on loopback for this test run; yields its URL."""
    try:
        importlib.import_module("langgraph.checkpoint.postgres")
    except ImportError as exc:
        missing_engine(f"the postgres extra is not installed ({exc}): pip install -e '.[postgres]'")
    try:
        with postgres_server() as url:
            yield url
    except EngineMissing as exc:
        missing_engine(str(exc))


@pytest.fixture(scope="session")
def tiny_vlm() -> Path:
    """The tiny random Qwen2.5-VL (built once, cached)."""
    require_transformers()
    return tiny_vlm_dir()


def scripted_model_fixture(
    make_examples: Examples,
    *,
    name: str,
    make_held_out: Examples | None = None,
    seed: int = 0,
):
    """A fixture, set up once per test run: the tiny VLM trained on ``make_examples()``.

    Parameters
    ----------
    make_examples : callable
        Returns the script (a sequence of :class:`ChatExample`).
    name : str
        The fixture's name.
    make_held_out : callable or None
        Returns held-out checks (see :func:`tests.engines.scripted.train_scripted`).
    seed : int
        Training seed.

    Returns
    -------
    pytest fixture
        Yields the model folder.
    """

    @pytest.fixture(scope="session", name=name)
    def _fixture() -> Path:
        require_transformers()
        held_out = make_held_out() if make_held_out else ()
        return scripted_vlm_dir(make_examples(), seed=seed, held_out=held_out)

    return _fixture


def scripted_vllm_fixture(
    make_examples: Examples,
    *,
    name: str,
    make_held_out: Examples | None = None,
    seed: int = 0,
    served_name: str = "tiny-vlm",
):
    """A fixture, set up once per test run, serving the scripted tiny VLM with vLLM.

    Training (transformers, in this process) and serving (the vLLM venv) both need their
    engine: either missing skips, or fails under ``CI=true``.

    Parameters
    ----------
    make_examples : callable
        Returns the script (a sequence of :class:`ChatExample`).
    name : str
        The fixture's name.
    make_held_out : callable or None
        Returns held-out checks (see :func:`tests.engines.scripted.train_scripted`).
    seed : int
        Training seed.
    served_name : str
        The model name clients ask for.

    Returns
    -------
    pytest fixture
        Yields ``http://127.0.0.1:PORT/v1``.
    """

    @pytest.fixture(scope="session", name=name)
    def _fixture() -> Iterator[str]:
        require_vllm()
        require_transformers()
        held_out = make_held_out() if make_held_out else ()
        model = scripted_vlm_dir(make_examples(), seed=seed, held_out=held_out)
        with serve(model, served_name=served_name) as base:
            yield base

    return _fixture
