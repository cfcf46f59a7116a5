#!/usr/bin/env bash
# The one test command: installs everything the tests need on a fresh machine, then runs the
# linters, the type checker and every test. Usage: bash scripts/test.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else "$@"; fi; }

need_apt=()
command -v node >/dev/null && command -v npm >/dev/null || need_apt+=(nodejs npm)
command -v openssl >/dev/null || need_apt+=(openssl)
command -v gcc >/dev/null || need_apt+=(gcc)
# The chat's browser tests drive Debian's chromium through playwright (never `playwright
# install`: it downloads its own browser); its Redis tests start redis-server themselves.
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
command -v redis-server >/dev/null || need_apt+=(redis-server)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "== installing Debian packages: ${need_apt[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

echo "== installing framewire with its test dependencies"
# gcc is installed above, so the C accelerator must build here: a compile error fails the run
# instead of leaving the tests to skip it (users' installs still fall back to pure Python).
FRAMEWIRE_BUILD_SPEEDUPS=yes python3 -m pip install --quiet --disable-pip-version-check -e ".[test]"

if [ -f tests/interop/package-lock.json ]; then
    echo "== installing Node interop peers (ws)"
    npm ci --prefix tests/interop --no-audit --no-fund --loglevel=error >/dev/null
fi

echo "== ruff"
python3 -m ruff check src tests benchmarks examples fuzz
python3 -m ruff format --check src tests benchmarks examples fuzz

echo "== mypy --strict"
python3 -m mypy

# Tests marked perf assert on measured time, which a shared or loaded machine cannot promise:
# they are left out here (run them with: python3 -m pytest -m perf).
echo "== pytest (with branch coverage)"
python3 -m coverage erase
python3 -m coverage run -m pytest -q -p no:cacheprovider -m "not perf" "$@"

echo "== pytest of every layer below the chat on the pure-Python path (FRAMEWIRE_NO_SPEEDUPS=1)"
FRAMEWIRE_NO_SPEEDUPS=1 python3 -m coverage run --append -m pytest -q -p no:cacheprovider -m "not perf" \
    tests/sansio tests/aio tests/http tests/interop tests/conformance tests/security tests/fuzz

echo "== branch coverage of both passes together"
python3 -m coverage report

# The newest Python found (pyenv's, or on PATH) runs the suite too: asyncio changes between
# versions (3.12's writelines() stopped pausing writers), and most users run a newer Python.
# A candidate counts only if it runs (pyenv's shims exist for versions that are not selected).
newest=""
for version in 3.14 3.13 3.12; do
    for candidate in "$HOME"/.pyenv/versions/"$version"*/bin/python "$(command -v "python$version" || true)"; do
        if [ -x "$candidate" ] && "$candidate" -c "import sys, venv" >/dev/null 2>&1; then
            newest="$candidate"
            break 2
        fi
    done
done
if [ -n "$newest" ]; then
    venv=".venv-newest"
    echo "== pytest on the newest Python found: $("$newest" --version) ($newest)"
    [ -x "$venv/bin/python" ] || "$newest" -m venv "$venv"
    FRAMEWIRE_BUILD_SPEEDUPS=yes "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[test]"
    "$venv/bin/python" -m pytest -q -p no:cacheprovider -m "not browser and not perf" "$@"
else
    echo "== no Python newer than $(python3 --version) found: skipping the newest-Python pass"
fi
