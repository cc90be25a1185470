"""Entry point of the GUI: ``run_gui`` builds the application, opens a project, runs or screenshots."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from fusereview.core.errors import FusereviewError


class ScreenshotError(FusereviewError):
    """The window could not be rendered to the requested file."""


def _ensure_platform(screenshot: str | None) -> None:
    # A screenshot needs no screen: use the offscreen platform where there is no display.
    if (
        screenshot
        and sys.platform.startswith("linux")
        and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    ):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def make_app(argv: list[str] | None = None) -> Any:
    """The QApplication (created once), with name, icon and stylesheet."""
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        # Hand the GIL over every 1 ms instead of 5 ms: a worker thread running Python code
        # (prediction bookkeeping, training hooks) then delays the event loop by at most that.
        sys.setswitchinterval(0.001)
        app = QApplication(argv or [sys.argv[0]])
        app.setApplicationName("fusereview")
        app.setOrganizationName("fusereview")
        from fusereview.qt.gc_guard import install

        install()  # cycles of Qt wrappers are collected in this (the GUI) thread, never in a worker
        style_app(app)
    return app


def style_app(app: Any) -> None:
    """Style, palette, stylesheet and icon of the application."""
    from PySide6.QtGui import QIcon

    from fusereview.qt.resources import ResourceMissingError, resource_path, stylesheet

    # One dark palette for every widget: the stylesheet colours the frames, and without this
    # a label or menu took the platform's light palette (dark text on the dark frame on X11)
    app.setStyle("Fusion")
    app.setPalette(dark_palette())
    try:
        app.setStyleSheet(stylesheet())
        app.setWindowIcon(QIcon(str(resource_path("icon.svg"))))
    except ResourceMissingError as exc:  # the app works unstyled; say so instead of hiding it
        print(f"fusereview gui: {exc}; using the default style", file=sys.stderr)


def dark_palette() -> Any:
    """The application's palette: light text on the stylesheet's dark greys, blue selection."""
    from PySide6.QtGui import QColor, QPalette

    pal = QPalette()
    role = QPalette.ColorRole
    colours = {
        role.Window: "#26272b",
        role.WindowText: "#e6e6e6",
        role.Base: "#1e1f22",
        role.AlternateBase: "#232428",
        role.ToolTipBase: "#303136",
        role.ToolTipText: "#e6e6e6",
        role.PlaceholderText: "#8a8b90",
        role.Text: "#e6e6e6",
        role.Button: "#35363c",
        role.ButtonText: "#e6e6e6",
        role.BrightText: "#ffb000",
        role.Highlight: "#4a6ea8",
        role.HighlightedText: "#ffffff",
        role.Link: "#7fa7e8",
    }
    for r, c in colours.items():
        pal.setColor(r, QColor(c))
    for r in (role.WindowText, role.Text, role.ButtonText):  # greyed-out items read as such
        pal.setColor(QPalette.ColorGroup.Disabled, r, QColor("#77787d"))
    return pal


def wait_until(predicate: Any, timeout_s: float) -> bool:
    """Process events until ``predicate()`` is true or the time is up; returns the predicate."""
    from PySide6.QtWidgets import QApplication

    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        QApplication.processEvents()
        time.sleep(0.01)
    return True


def run_gui(
    project_path: str | None,
    model: str | None = None,
    screenshot: str | None = None,
    *,
    device: str | None = None,
    settings: Any = None,
    size: tuple[int, int] = (1400, 900),
    timeout_s: float = 300.0,
    window_hook: Any = None,
) -> int:
    """Open the review window.

    Parameters
    ----------
    project_path:
        A project folder or a dataset (imported into a project beside it the first time);
        ``None`` shows the start page.
    model:
        Model spec to load (``"tiny"``, a folder, a checkpoint); the project is then predicted in
        the background, the current image first.
    screenshot:
        Render the window into this PNG once loading (and prediction) is done, then exit.
    device:
        ``"cpu"``, ``"cuda"``, ... (default: the best available).
    settings:
        A ``QSettings`` to use instead of the user's (tests, screenshots).
    size:
        Window size in pixels (used for screenshots).
    timeout_s:
        Longest wait for loading before a screenshot fails.
    window_hook:
        Called with the window before the screenshot (scripts use it to stage a view).

    Returns
    -------
    int
        The process exit code.
    """
    _ensure_platform(screenshot)
    from fusereview.core.project import Project

    project = Project.open_or_import(project_path) if project_path else None  # errors before any window
    app = make_app()
    from fusereview.qt.main_window import MainWindow

    window = MainWindow(settings)
    if screenshot:
        window.resize(*size)
    if project is not None:
        window.open_project(project)
    if model:
        window.load_model(model, device)
    if not screenshot:
        window.show()
        return int(app.exec())

    window.show()
    errors: list[str] = []
    if model:
        loading: list[Any] = list(window.runner.jobs)
        for job in loading:
            job.failed.connect(errors.append)
        ready = wait_until(
            lambda: (
                bool(errors)
                or (window.predictor is not None and window.predict_job is None and not window.runner.jobs)
                if project is not None
                else bool(errors) or window.predictor is not None
            ),
            timeout_s,
        )
        if not ready:
            window.close()
            raise ScreenshotError(
                f"{screenshot}: the model did not load and predict within {timeout_s:.0f} s"
            )
        if errors:
            window.close()
            raise ScreenshotError(f"{screenshot}: {errors[0]}")
    if window_hook is not None:
        window_hook(window)
    wait_until(lambda: False, 0.2)  # let the first paint arrive
    if window.controller is not None:  # thumbnails of the visible rows (failures count as done)
        wait_until(lambda: window.controller.image_model.thumbnails_pending == 0, 10.0)
    out = Path(screenshot)
    out.parent.mkdir(parents=True, exist_ok=True)
    image = window.grab().toImage()
    tmp = out.with_name(out.name + ".tmp.png")
    ok = image.save(str(tmp), "PNG")
    window.close()
    if not ok:
        raise ScreenshotError(f"{screenshot}: could not write the PNG")
    os.replace(tmp, out)  # atomic: a half-written screenshot never replaces a good one
    print(f"screenshot: {out} ({image.width()}x{image.height()})", file=sys.stderr)
    return 0
