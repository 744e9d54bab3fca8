#!/usr/bin/env bash
# Make a headless Chromium and its WebDriver available for the workbench's browser tests
# (Debian's chromium and chromium-driver). Already present: ~0 s. Missing: installed from
# Debian's packages when this runs as root with apt-get; otherwise a note, and the browser
# tests skip (or fail under CI=true).
set -uo pipefail
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
    exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "installing Chromium and its WebDriver (Debian packages) for the browser tests ..." >&2
    log="$(dirname "$0")/../.cache/apt-chromium.log"
    mkdir -p "$(dirname "$log")"
    packages=(chromium chromium-driver)
    if DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${packages[@]}" \
        >"$log" 2>&1 || { apt-get update >>"$log" 2>&1 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        "${packages[@]}" >>"$log" 2>&1; }; then
        exit 0
    fi
    cat "$log" >&2
    echo "apt-get install chromium chromium-driver failed (log above)" >&2
    exit 1
fi
echo "note: chromium/chromedriver not found; the workbench's browser tests will skip" >&2
exit 0
