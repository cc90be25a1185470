"""Run by test_real_window.py in a subprocess: the main window through Qt's xcb plugin on an X server.

Opens the demo project (predictions of three images by the shipped demo model), shows the
window, reviews with real key presses (QTest through the X server's input path), grabs the X
screen itself and writes what it drew: ``{"platform", "screen", "overlays": [...]}`` as JSON on
stdout, the PNG next to it. A Qt that cannot load xcb (a missing system library) exits non-zero
before anything is printed: that is a failure of the test, never a skip.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(workdir: str, out_png: str) -> int:
    from PySide6.QtCore import QPointF, QSettings, Qt
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtTest import QTest

    from fusereview.demo.project import demo_model_dir, prepare_demo_project
    from fusereview.models import load_predictor, predict_project
    from fusereview.qt.app import make_app, wait_until
    from fusereview.qt.main_window import MainWindow

    app = make_app()
    platform = app.platformName()
    if platform != "xcb":
        print(f"platform is {platform!r}, not xcb", file=sys.stderr)
        return 2
    project = prepare_demo_project(workdir)
    predictor = load_predictor(str(demo_model_dir()), device="cpu")
    predict_project(project, predictor, image_ids=[img.id for img in project.images()[:3]], threshold=0.3)
    settings = QSettings(str(Path(workdir) / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings)
    window.resize(1366, 768)
    window.open_project(project)
    window.show()
    window.activateWindow()
    if not wait_until(lambda: window.isActiveWindow() and window.view.isVisible(), 10):
        print("the window never became active on the X server", file=sys.stderr)
        return 3
    window.view.setFocus()
    c = window.controller
    c.set_queue_filter(matched=None)  # every prediction, labelled objects too
    c.go_to_row(0)
    first = c.selected
    QTest.keyClick(window.view, Qt.Key.Key_N)
    moved = c.selected != first
    QTest.keyClick(window.view, Qt.Key.Key_A)  # accept (or agree): the status bar says which
    message = window.statusBar().currentMessage()
    QTest.keyClick(window.view, Qt.Key.Key_F)
    wait_until(lambda: False, 0.5)  # let the X server receive the paint
    c.select(None)
    wait_until(lambda: False, 0.5)
    screen = QGuiApplication.primaryScreen()
    shot = screen.grabWindow(0)  # the X root window: what the server shows, not a widget render
    shot.save(out_png, "PNG")
    overlays = []
    for ov in c.ctx.overlays:
        x0, y0, _, y1 = ov.box
        left = window.view.viewport().mapToGlobal(window.view.mapFromScene(QPointF(x0, (y0 + 3 * y1) / 4)))
        overlays.append({"key": list(ov.key), "state": ov.state, "left_edge": [left.x(), left.y()]})
    print(
        json.dumps(
            {
                "platform": platform,
                "screen": [shot.width(), shot.height()],
                "window": [window.width(), window.height()],
                "moved_with_n": moved,
                "message": message,
                "overlays": overlays,
            }
        )
    )
    window.close()
    project.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
