"""The CLI's one error boundary: one line per failure, a log file for bugs, never a bare traceback."""

from __future__ import annotations

import errno
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from fusereview import cli
from fusereview.core.errors import FusereviewError
from fusereview.error_boundary import EXIT_INTERNAL, log_dir, run_command


def _run_validate_raising(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> None:
    from fusereview.commands import validate

    def boom(args: object) -> int:
        raise exc

    monkeypatch.setattr(validate, "run", boom)


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_fusereview_error_names_file_field_and_hint(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _run_validate_raising(
        monkeypatch,
        FusereviewError(
            "must be a number", file="/data/x.json", field="images[0].width", hint="fix the export"
        ),
    )
    assert cli.main(["validate", "anything"]) == 1
    line = _one_line(capsys.readouterr().err)
    assert line == "fusereview validate: /data/x.json: images[0].width: must be a number (fix the export)"


def test_multiline_and_huge_messages_stay_one_short_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _run_validate_raising(monkeypatch, FusereviewError("first\nsecond\n" + "x" * 1_000_000))
    assert cli.main(["validate", "anything"]) == 1
    line = _one_line(capsys.readouterr().err)
    assert "first | second" in line and len(line) < 2200 and "more characters" in line


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (errno.ENOSPC, "disk full"),
        (errno.EACCES, "permission denied"),
        (errno.EROFS, "read-only file system"),
    ],
)
def test_os_error_is_one_line_naming_the_path(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], code: int, words: str
) -> None:
    _run_validate_raising(monkeypatch, OSError(code, "whatever the C library says", "/mnt/out/file.json"))
    assert cli.main(["validate", "anything"]) == 1
    line = _one_line(capsys.readouterr().err)
    assert line == f"fusereview validate: {words}: /mnt/out/file.json"


def test_sqlite_disk_full_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _run_validate_raising(monkeypatch, sqlite3.OperationalError("database or disk is full"))
    assert cli.main(["validate", "anything"]) == 1
    assert "disk full" in _one_line(capsys.readouterr().err)


def test_a_bug_prints_one_line_and_logs_the_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("FUSEREVIEW_LOG_DIR", str(tmp_path / "logs"))
    _run_validate_raising(monkeypatch, TypeError("unsupported operand"))
    assert cli.main(["validate", "anything"]) == EXIT_INTERNAL
    line = _one_line(capsys.readouterr().err)
    assert "internal error (TypeError: unsupported operand)" in line
    logs = list((tmp_path / "logs").iterdir())
    assert len(logs) == 1 and str(logs[0]) in line
    text = logs[0].read_text()
    assert "Traceback" in text and "TypeError: unsupported operand" in text and "boom" in text


def test_log_folder_follows_xdg_state_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("FUSEREVIEW_LOG_DIR", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert log_dir() == tmp_path / "state" / "fusereview" / "log"
    monkeypatch.setenv("FUSEREVIEW_LOG_DIR", str(tmp_path / "mine"))
    assert log_dir() == tmp_path / "mine"


def test_unwritable_log_folder_still_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("FUSEREVIEW_LOG_DIR", str(blocker / "logs"))
    assert run_command("x", lambda: 1 / 0) == EXIT_INTERNAL
    line = _one_line(capsys.readouterr().err)
    assert "ZeroDivisionError" in line and "no log could be written" in line


def test_success_and_keyboard_interrupt_pass_through(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_command("x", lambda: 0) == 0
    assert run_command("x", lambda: None) == 0

    def interrupted() -> int:
        raise KeyboardInterrupt

    assert run_command("x", interrupted) == 130


def test_subprocess_never_shows_a_traceback(tmp_path: Path) -> None:
    """A real process: the boundary holds at the outermost level too (python -m fusereview)."""
    proc = subprocess.run(
        [sys.executable, "-m", "fusereview", "validate", str(tmp_path / "nothing-here")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "no such file or folder" in proc.stdout + proc.stderr
