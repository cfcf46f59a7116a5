#!/usr/bin/env bash
# Make benchmarks/.venv with the contenders from PyPI and framewire from this checkout.
# Usage: benchmarks/setup_env.sh            (idempotent; re-run after changing framewire)
#        PYTHON=python3.13 VENV=benchmarks/.venv-3.13 benchmarks/setup_env.sh
#        (then: python3 benchmarks/run.py --python benchmarks/.venv-3.13/bin/python)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
python="${PYTHON:-python3}"
venv="${VENV:-$here/.venv}"

if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
# Contenders. uvloop is only used by the separately labelled "*+uvloop" variants.
"$venv/bin/python" -m pip install --quiet websockets aiohttp picows uvloop redis python-socketio isal wsproto
# framewire from the repo (a snapshot copy, so that setuptools' build/ stays out of the
# checkout), with the C accelerator forced on so that a broken build is loud.
snapshot="$(mktemp -d)"
trap 'rm -rf "$snapshot"' EXIT
for item in pyproject.toml setup.py README.md LICENSE src; do
    if [[ -e "$repo/$item" ]]; then cp -r "$repo/$item" "$snapshot/"; fi
done
find "$snapshot/src" -name '*.so' -delete
FRAMEWIRE_BUILD_SPEEDUPS=yes "$venv/bin/python" -m pip install --quiet --force-reinstall --no-deps \
    "$snapshot"

"$venv/bin/python" - <<'PY'
import importlib.metadata as metadata
for name in ("framewire", "websockets", "aiohttp", "picows", "wsproto", "uvloop", "redis", "python-socketio"):
    try:
        print(f"{name:12} {metadata.version(name)}")
    except metadata.PackageNotFoundError:
        print(f"{name:12} MISSING")
PY
