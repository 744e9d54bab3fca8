# Sourced by the scripts: create .venv inside the checkout if needed, set $PY, and
# define `install` (pip install, quiet; its log is shown only when it fails).
# Everything (venv, pip cache, logs) stays inside the checkout.
export PIP_CACHE_DIR="${PIP_CACHE_DIR:-$PWD/.cache/pip}"
export PIP_DISABLE_PIP_VERSION_CHECK=1
mkdir -p .cache
if [ ! -x .venv/bin/python ]; then
    echo "creating .venv ..." >&2
    python3 -m venv .venv
fi
PY="$PWD/.venv/bin/python"
export PY

install() {
    local log=.cache/pip-install.log
    if ! "$PY" -m pip install "$@" >"$log" 2>&1; then
        cat "$log" >&2
        echo "pip install $* failed (log above)" >&2
        return 1
    fi
}
