# Sourced by the scripts: create .venv inside the checkout if needed and set $PY.
# Everything (venv, pip cache) stays inside the checkout.
export PIP_CACHE_DIR="${PIP_CACHE_DIR:-$PWD/.cache/pip}"
export PIP_DISABLE_PIP_VERSION_CHECK=1
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
    .venv/bin/python -m pip install --quiet --upgrade "pip>=24"
fi
PY="$PWD/.venv/bin/python"
export PY
