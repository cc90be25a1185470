#!/usr/bin/env bash
# Set up fusereview in ./.venv (idempotent) and run one job:
#   bash packaging/bootstrap.sh demo     # the review GUI on the built-in demo project
#   bash packaging/bootstrap.sh test     # the whole test suite
#   bash packaging/bootstrap.sh setup    # only set up
# Extra arguments are passed on (to `fusereview demo` or to pytest).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
job="${1:-demo}"; shift || true
py="${PYTHON:-python3}"
venv="$here/.venv"

# System libraries Qt needs even offscreen (fonts, xkb, EGL/GL). Installed only when missing, and only
# where we are root with apt (CI and fresh containers); elsewhere we say what is missing.
need_libs=()
for lib in libEGL.so.1 libGL.so.1 libfontconfig.so.1 libxkbcommon.so.0 libdbus-1.so.3; do
  ldconfig -p 2>/dev/null | grep -q "$lib" || need_libs+=("$lib")
done
if [ "${#need_libs[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "bootstrap: installing system libraries for Qt (${need_libs[*]})"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libegl1 libgl1 libfontconfig1 libxkbcommon0 \
      libxkbcommon-x11-0 libdbus-1-3 fonts-dejavu-core >/dev/null
  else
    echo "bootstrap: warning: missing system libraries for Qt: ${need_libs[*]} (install them with your package manager)" >&2
  fi
fi

[ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
vpy="$venv/bin/python"
stamp="$venv/.fusereview-installed"
want="$(cat pyproject.toml packaging/bootstrap.sh | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  if ! "$vpy" -c "import torch, torchvision" 2>/dev/null; then
    # These versions lie on the development machines' disk; elsewhere pip resolves them from PyPI.
    # pyproject.toml itself only declares ranges, so a user with another CUDA build keeps theirs.
    "$vpy" -m pip install -q "torch==2.14.1" "torchvision==0.29.1" \
      || "$vpy" -m pip install -q "torch>=2.4" "torchvision>=0.19"
  fi
  "$vpy" -m pip install -q -e ".[test]"
  echo "$want" > "$stamp"
fi

# What Qt's xcb plugin needs on an X display, asked of the installed plugin (ldd), installed where
# we are root with apt, else listed with the install command; the tests also need Xvfb (their
# real-window test opens the main window through xcb). Never stops the job: Wayland needs none.
xvfb_flag=""; [ "$job" = test ] && xvfb_flag="--xvfb"
bash packaging/qt_system_libs.sh "$vpy" --install $xvfb_flag || true

case "$job" in
  setup) echo "bootstrap: ready ($venv)";;
  demo) exec "$venv/bin/fusereview" demo "$@";;
  test) export QT_QPA_PLATFORM=offscreen; exec "$vpy" -m pytest -q "$@";;
  *) echo "usage: bash packaging/bootstrap.sh [demo|test|setup] [args...]" >&2; exit 2;;
esac
