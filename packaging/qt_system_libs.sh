#!/usr/bin/env bash
# The system libraries Qt's xcb platform plugin needs, asked of the plugin itself.
#   bash packaging/qt_system_libs.sh PYTHON [--install] [--xvfb]
# PYTHON is the interpreter of the venv that holds PySide6. The list cannot go stale: it is
# what `ldd` says the installed libqxcb.so cannot find, plus libxcb-cursor.so.0, which Qt 6.5+
# loads with dlopen at start-up (so ldd never lists it) and refuses to start without.
# --install: where we are root and apt exists, install the Debian/Ubuntu packages of whatever
#            is missing (and Xvfb with --xvfb); elsewhere print the whole list at once with the
#            command that installs it. Never fails the caller: a Wayland session does not need
#            xcb, and the app itself says clearly when no platform plugin can start.
# Prints "missing: <so> ..." lines; exit 0 when nothing is missing afterwards, 3 when something is.
set -uo pipefail
py="$1"; shift
install=0; xvfb=0
for a in "$@"; do
  case "$a" in --install) install=1;; --xvfb) xvfb=1;; esac
done

# FUSEREVIEW_QXCB_PLUGIN / FUSEREVIEW_LDD / FUSEREVIEW_LDCONFIG: stand-ins for tests
ldd_cmd="${FUSEREVIEW_LDD:-ldd}"
ldconfig_cmd="${FUSEREVIEW_LDCONFIG:-ldconfig}"
plugin="${FUSEREVIEW_QXCB_PLUGIN:-}"
[ -n "$plugin" ] || plugin="$("$py" - <<'EOF' 2>/dev/null
import pathlib, PySide6
hits = sorted(pathlib.Path(PySide6.__file__).parent.glob("Qt/plugins/platforms/libqxcb.so"))
print(hits[0] if hits else "")
EOF
)"
if [ -z "$plugin" ]; then
  echo "qt_system_libs: no libqxcb.so in this PySide6 (not Linux, or PySide6 missing): nothing to check" >&2
  exit 0
fi

missing_sos() {
  # what the plugin links against and the loader cannot find ...
  $ldd_cmd "$plugin" 2>/dev/null | awk '/not found/ {print $1}' | sort -u
  # ... and what Qt dlopens itself (see the header)
  for so in libxcb-cursor.so.0; do
    $ldconfig_cmd -p 2>/dev/null | grep -q "[[:space:]]$so[[:space:]]" || echo "$so"
  done
}

# Debian names a library's package after its soname: libxcb-icccm.so.4 -> libxcb-icccm4,
# libxkbcommon-x11.so.0 -> libxkbcommon-x11-0 (a dash when the name ends in a digit).
package_of() {
  local so="$1" base ver
  base="${so#lib}"; base="${base%%.so*}"; ver="${so##*.so.}"; ver="${ver%%.*}"
  base="$(echo "$base" | tr 'A-Z' 'a-z')"
  if [[ "$base" =~ [0-9]$ ]]; then echo "lib${base}-${ver}"; else echo "lib${base}${ver}"; fi
}

mapfile -t sos < <(missing_sos)
want_xvfb=0
if [ "$xvfb" = 1 ] && ! command -v Xvfb >/dev/null 2>&1; then want_xvfb=1; fi
if [ "${#sos[@]}" -eq 0 ] && [ "$want_xvfb" = 0 ]; then
  exit 0
fi

pkgs=()
for so in "${sos[@]}"; do pkgs+=("$(package_of "$so")"); done
[ "$want_xvfb" = 1 ] && pkgs+=(xvfb)

if [ "$install" = 1 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "bootstrap: installing what Qt's xcb plugin needs: ${pkgs[*]}" >&2
  apt-get update -qq >/dev/null 2>&1 || true
  # one package at a time: a name our soname rule got wrong must not stop the others
  for p in "${pkgs[@]}"; do
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$p" >/dev/null 2>&1 \
      || echo "bootstrap: could not install $p" >&2
  done
  mapfile -t sos < <(missing_sos)
  want_xvfb=0
  if [ "$xvfb" = 1 ] && ! command -v Xvfb >/dev/null 2>&1; then want_xvfb=1; fi
  if [ "${#sos[@]}" -eq 0 ] && [ "$want_xvfb" = 0 ]; then
    exit 0
  fi
  pkgs=()
  for so in "${sos[@]}"; do pkgs+=("$(package_of "$so")"); done
  [ "$want_xvfb" = 1 ] && pkgs+=(xvfb)
fi

for so in "${sos[@]}"; do echo "missing: $so"; done
[ "$want_xvfb" = 1 ] && echo "missing: Xvfb"
{
  [ "${#sos[@]}" -gt 0 ] && echo "bootstrap: Qt's xcb plugin ($plugin) cannot start on an X display without: ${sos[*]}"
  [ "$want_xvfb" = 1 ] && echo "bootstrap: the test suite's real-window test needs Xvfb"
  echo "bootstrap: install them with:  sudo apt-get install ${pkgs[*]}"
  echo "bootstrap: (a Wayland session does not need them; on other systems install the packages that provide these files)"
} >&2
exit 3
