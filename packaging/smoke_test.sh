#!/usr/bin/env bash
# Smoke test of an installed fusereview (a venv, a wheel or a PyInstaller bundle): the commands a
# user runs first must work without a display, a GPU or the network.
#   bash packaging/smoke_test.sh [path/to/fusereview]
set -euo pipefail
exe="${1:-fusereview}"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
export QT_QPA_PLATFORM=offscreen
"$exe" --help >/dev/null
"$exe" synth "$work/ds" --images 6
"$exe" validate "$work/ds"
"$exe" info "$work/ds" >/dev/null
"$exe" import "$work/ds" --project "$work/proj"
"$exe" export "$work/proj" --out "$work/out.json"
"$exe" demo --workdir "$work/demo" --screenshot "$work/demo.png"
test -s "$work/demo.png"
echo "smoke test passed"
