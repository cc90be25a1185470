"""packaging/qt_system_libs.sh: what Qt's xcb plugin needs, asked of the plugin, listed all at once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "packaging" / "qt_system_libs.sh"


def _fake(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def _run(tmp_path: Path, ldd_lines: str, ldconfig_lines: str, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "FUSEREVIEW_QXCB_PLUGIN": str(tmp_path / "libqxcb.so"),
        "FUSEREVIEW_LDD": str(_fake(tmp_path, "ldd", f"cat <<'EOF'\n{ldd_lines}\nEOF\n")),
        "FUSEREVIEW_LDCONFIG": str(_fake(tmp_path, "ldconfig", f"cat <<'EOF'\n{ldconfig_lines}\nEOF\n")),
    }
    return subprocess.run(
        ["bash", str(SCRIPT), sys.executable, *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_every_missing_library_is_listed_at_once_with_its_package(tmp_path: Path) -> None:
    ldd = (
        "\tlibxcb-icccm.so.4 => not found\n\tlibxcb-keysyms.so.1 => not found\n"
        "\tlibxkbcommon-x11.so.0 => not found\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6"
    )
    out = _run(tmp_path, ldd, "\tlibc.so.6 (libc6,x86-64) => /lib/x86_64-linux-gnu/libc.so.6")
    assert out.returncode == 3
    assert out.stdout.split() == [
        "missing:", "libxcb-icccm.so.4", "missing:", "libxcb-keysyms.so.1",
        "missing:", "libxkbcommon-x11.so.0", "missing:", "libxcb-cursor.so.0",
    ]  # fmt: skip
    assert "apt-get install libxcb-icccm4 libxcb-keysyms1 libxkbcommon-x11-0 libxcb-cursor0" in out.stderr


def test_nothing_missing_says_nothing(tmp_path: Path) -> None:
    out = _run(
        tmp_path,
        "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6",
        "\tlibxcb-cursor.so.0 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libxcb-cursor.so.0",
    )
    assert out.returncode == 0 and out.stdout == "" and out.stderr == ""


def test_the_installed_plugin_has_what_it_needs_here() -> None:
    """On this machine (after the bootstrap) Qt's own plugin finds every library it links."""
    out = subprocess.run(
        ["bash", str(SCRIPT), sys.executable, "--xvfb"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stdout + out.stderr
