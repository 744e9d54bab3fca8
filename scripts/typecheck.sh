#!/usr/bin/env bash
# mypy on the tools and agent packages. The folders tools/, agent/ and prompts/ are
# installed as sleuth.tools, sleuth.agent and sleuth.prompts (setup.py maps them); mypy
# cannot follow an editable install's mapping, so it reads them through a tree of links
# in .cache/typecheck that has the installed layout. Extra arguments go to mypy.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-$PWD/.venv/bin/python}"
tree=.cache/typecheck
rm -rf "$tree"
mkdir -p "$tree/sleuth"
ln -s ../../../sleuth/__init__.py "$tree/sleuth/__init__.py"
for folder in tools agent prompts; do
    ln -s "../../../$folder" "$tree/sleuth/$folder"
done
cd "$tree"
exec "$PY" -m mypy --config-file ../../pyproject.toml -p sleuth.tools -p sleuth.agent "$@"
