"""Text reads on the application's dark frame (the platform's light palette drew dark grey on it)."""

from __future__ import annotations

import numpy as np
from PySide6.QtWidgets import QLabel


def _luminance(rgb: np.ndarray) -> np.ndarray:
    c = rgb / 255.0
    c = np.where(c <= 0.03928, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return c @ np.array([0.2126, 0.7152, 0.0722])


def _contrast(image, rect) -> float:
    """WCAG contrast between the commonest colour in ``rect`` (the ground) and the pixel farthest from it."""
    img = image.convertToFormat(image.Format.Format_RGB32)
    arr = np.frombuffer(img.constBits(), dtype=np.uint8).reshape(img.height(), img.bytesPerLine() // 4, 4)
    crop = arr[rect.top() : rect.bottom() + 1, rect.left() : rect.right() + 1, 2::-1].reshape(-1, 3)
    colours, counts = np.unique(crop, axis=0, return_counts=True)
    ground = _luminance(colours[counts.argmax()].astype(float))
    lum = _luminance(crop.astype(float))
    text = lum[np.abs(lum - ground).argmax()]
    hi, lo = max(text, ground), min(text, ground)
    return float((hi + 0.05) / (lo + 0.05))


def test_start_page_and_status_bar_text_read_on_the_dark_frame(qtbot, qapp, settings) -> None:
    from fusereview.qt.app import style_app
    from fusereview.qt.main_window import MainWindow

    saved = (qapp.style().name(), qapp.palette(), qapp.styleSheet())
    style_app(qapp)  # what the application does at start (the suite's app is a plain one)
    try:
        w = MainWindow(settings)
        qtbot.addWidget(w)
        w.resize(1366, 768)
        w.show()
        qtbot.waitExposed(w)
        shot = w.grab().toImage()
        labels = [lb for lb in w.start_page.findChildren(QLabel) if lb.text() and lb.isVisible()]
        assert len(labels) >= 3
        for label in labels:
            rect = label.rect().translated(label.mapTo(w, label.rect().topLeft()))
            assert _contrast(shot, rect) >= 4.5, f"{label.text()!r} does not read on its background"
        w.statusBar().showMessage("a status message")
        qtbot.wait(50)
        bar = w.statusBar()
        shot = w.grab().toImage()
        rect = bar.rect().translated(bar.mapTo(w, bar.rect().topLeft()))
        assert _contrast(shot, rect) >= 4.5
        w.close()
    finally:
        qapp.setStyle(saved[0])
        qapp.setPalette(saved[1])
        qapp.setStyleSheet(saved[2])
