#!/usr/bin/env bash
# Set up .venv (once) and analyse a bundled example photo (shipped inside scikit-image,
# public domain) with the embedded default, the offline analyst: no GPU, no model weights.
# The case is stored under .cache/example-data so the example leaves the user's data alone.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
install -e .
example=$("$PY" -c "import os, skimage.data; print(os.path.join(skimage.data.data_dir, 'chelsea.png'))")
export SLEUTH_DATA_DIR="${SLEUTH_DATA_DIR:-$PWD/.cache/example-data}"
exec .venv/bin/sleuth analyze "$example" "$@"
