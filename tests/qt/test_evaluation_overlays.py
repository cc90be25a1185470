"""An image picked in the evaluation panel opens with its misses and false positives outlined."""

from __future__ import annotations

from PySide6.QtCore import QRectF
from PySide6.QtGui import QImage, QPainter

MAGENTA, CYAN = "#ff00ff", "#00ffff"


def _render(scene, w: int, h: int) -> QImage:
    image = QImage(w, h, QImage.Format.Format_RGB32)
    painter = QPainter(image)
    scene.render(painter, QRectF(0, 0, w, h), QRectF(0, 0, w, h))
    painter.end()
    return image


def _count(image: QImage, y: int, x0: int, x1: int, rgb: tuple[int, int, int]) -> int:
    n = 0
    for x in range(x0, x1):
        c = image.pixelColor(x, y)
        if abs(c.red() - rgb[0]) < 60 and abs(c.green() - rgb[1]) < 60 and abs(c.blue() - rgb[2]) < 60:
            n += 1
    return n


def test_picked_image_shows_misses_and_false_positives_in_their_colours(window, qtbot) -> None:
    images = window.project.images()
    target = images[3]
    window.show_workspace("evaluate")
    qtbot.waitUntil(lambda: window.evaluation_panel is not None, timeout=10_000)
    overlays = {
        "false_negatives": [{"bbox": [20, 30, 60, 50], "category_id": 1, "annotation_id": 1}],
        "false_positives": [{"bbox": [120, 100, 40, 40], "category_id": 1, "score": 0.2}],
        "duplicates": [],
        "true_positives": [{"bbox": [5, 5, 10, 10], "category_id": 1, "score": 0.9, "iou": 0.8}],
        "colors": {"false_negatives": MAGENTA, "false_positives": CYAN, "duplicates": "#ffff00"},
    }
    window.evaluation_panel.imageActivated.emit(target.id, overlays)  # what a click in its list sends
    assert window.controller.image_id == target.id
    assert len(window.scene.error_items) == 2  # true positives are not outlined
    before = _render(window.scene, target.width, target.height)
    assert _count(before, 30, 20, 80, (255, 0, 255)) >= 10, "the missed object's dashed outline"
    assert _count(before, 100, 120, 160, (0, 255, 255)) >= 8, "the false positive's dashed outline"
    assert _count(before, 30, 20, 80, (0, 255, 255)) == 0
    window.review.open_image_from_list(images[0].id)  # another photo: the outlines belong to the old one
    assert window.scene.error_items == []
