#!/usr/bin/env bash
# Set up .venv (once) and run the checks: ruff, then pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
install -e ".[dev]"
# The reference SD-watermark encoder for the decoder's tests; its declared deps (torch,
# opencv-python) are not needed for the DCT path, so it is installed without them.
install --no-deps "invisible-watermark==0.2.0"
"$PY" -m ruff check .
"$PY" -m ruff format --check .
status=0
"$PY" -m pytest "$@" || status=$?
# exit 5 means no tests were collected (e.g. a -k filter matching nothing): not a failure
if [ "$status" -eq 5 ]; then status=0; fi
exit "$status"
