#!/usr/bin/env bash
# Build the PyInstaller bundle and run the smoke test on it (the commands a user runs first).
#   bash packaging/build_bundle.sh            # -> dist/fusereview/fusereview
# Needs the venv of `bash packaging/bootstrap.sh setup`; installs PyInstaller into it. About
# 7 minutes and 5 GB of disk (torch and its CUDA libraries are in the bundle).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
vpy="$here/.venv/bin/python"
[ -x "$vpy" ] || bash packaging/bootstrap.sh setup
"$vpy" -m pip install -q "pyinstaller>=6.6"
"$vpy" -m PyInstaller --noconfirm --clean --distpath dist --workpath build/pyinstaller packaging/fusereview.spec
bash packaging/smoke_test.sh "$here/dist/fusereview/fusereview"
du -sh dist/fusereview
