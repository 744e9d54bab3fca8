#!/usr/bin/env bash
# Set up .venv (once) and survey a bundled example photo (shipped inside scikit-image,
# public domain) on the embedded default: no GPU, no model weights.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
install -e .
example=$("$PY" -c "import os, skimage.data; print(os.path.join(skimage.data.data_dir, 'chelsea.png'))")
exec .venv/bin/sleuth tools survey "$example" "$@"
