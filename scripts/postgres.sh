#!/usr/bin/env bash
# Make PostgreSQL's server programs available for the case-store tests (they start a
# throw-away server on loopback themselves; nothing is left running). Already present: ~0 s.
# Missing: installed from Debian's packages when this runs as root with apt-get; otherwise a
# note, and the Postgres tests skip (or fail under CI=true).
set -uo pipefail
if command -v initdb >/dev/null || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "installing PostgreSQL (Debian package) for the case-store tests ..." >&2
    log="$(dirname "$0")/../.cache/apt-postgres.log"
    mkdir -p "$(dirname "$log")"
    if DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql \
        >"$log" 2>&1 || { apt-get update >>"$log" 2>&1 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql \
        >>"$log" 2>&1; }; then
        exit 0
    fi
    cat "$log" >&2
    echo "apt-get install postgresql failed (log above)" >&2
    exit 1
fi
echo "note: PostgreSQL server programs not found; the Postgres case-store tests will skip" >&2
exit 0
