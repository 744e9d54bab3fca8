#!/usr/bin/env bash
# Install into .venv what the in-process transformers backend (and the tests that build and
# train a tiny vision-language model) need on a CPU-only machine: the `local` and `train`
# extras of pyproject.toml, resolved with torch pinned to the CPU wheel. Executed or sourced (by
# scripts/test.sh); idempotent: a marker inside .venv records what was installed, and when it
# matches nothing is done (~0 s).
#
#  - torch==2.13.0 first and pinned in every later step: pip finds that CPU build on local disk,
#    while a bare `torch` (or a range admitting a newer release) pulls a multi-GB CUDA build.
#  - torchvision 0.28.x, the release paired with torch 2.13. PyPI's wheel is CUDA-linked, so its
#    C++ ops cannot load beside the CPU torch, and `import torchvision` then fails on two
#    unguarded decorators. The least hacky fix that works here: scripts/torchvision_guard.py adds
#    torchvision's own `_has_ops()` check to those two lines of the installed file (nothing else
#    changes; its Python transforms, which Qwen2-VL processors need, work). Rejected: torch 2.14.1
#    with torchvision 0.29.1 (a 5.5 GB CUDA build) and defining the operators from a .pth file
#    at every interpreter start.
#  - torchaudio/torchcodec are never installed here (also CUDA-linked; transformers' audio
#    imports break on them).
(
    set -euo pipefail
    cd "$(dirname "${BASH_SOURCE[0]}")/.."
    source scripts/venv.sh

    TORCH_VERSION=2.13.0
    TORCHVISION_VERSION="0.28.*"
    TRANSFORMERS_VERSION=">=5.16"
    # the train extra (sleuth train-vlm), as pyproject.toml lists it
    TRAIN="trl>=1.16 peft>=0.21 accelerate>=1.15 datasets>=5.0"
    marker=.venv/sleuth-engines-ready
    want="torch==$TORCH_VERSION torchvision==$TORCHVISION_VERSION transformers$TRANSFORMERS_VERSION"
    want="$want $TRAIN"
    want="$want $(sha256sum scripts/torchvision_guard.py | cut -c1-16)"
    if [ -f "$marker" ] && [ "$(cat "$marker")" = "$want" ]; then
        exit 0
    fi
    echo "installing torch (CPU), torchvision, transformers, trl and peft into .venv ..." >&2
    export TMPDIR="$PWD/.cache/tmp"
    mkdir -p "$TMPDIR" || exit 1
    rm -f "$marker"
    # explicit `|| exit`: when sourced inside an `if`, bash ignores set -e
    install "torch==$TORCH_VERSION" || exit 1
    # shellcheck disable=SC2086  # $TRAIN is a list of requirements
    install "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION" \
        "transformers$TRANSFORMERS_VERSION" $TRAIN || exit 1
    if ! "$PY" scripts/torchvision_guard.py; then
        echo "engines: torchvision cannot be made importable (see above)" >&2
        exit 1
    fi
    if ! "$PY" -c "import torch, torchvision, transformers, trl, peft; from transformers import Qwen2VLVideoProcessor"; then
        echo "engines: torch/torchvision/transformers/trl/peft do not import in .venv" >&2
        exit 1
    fi
    echo "$want" >"$marker"
)
