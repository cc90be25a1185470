"""The evaluation panel's "send to review" narrows the image list to the images with errors."""

from __future__ import annotations

from fusereview.qt.models.image_list import ImageIdRole


def test_review_set_from_the_evaluation_panel(window, qtbot) -> None:
    images = window.project.images()
    window.show_workspace("evaluate")
    qtbot.waitUntil(lambda: window.evaluation_panel is not None, timeout=10_000)
    fns = [{"image_id": images[2].id, "bbox": [1, 1, 5, 5], "category_id": 1}]
    fps = [{"image_id": images[4].id, "bbox": [1, 1, 5, 5], "category_id": 1, "score": 0.1}]
    window.evaluation_panel.reviewRequested.emit(fns, fps)  # what its button sends
    shown = [
        window.review.image_proxy.index(r, 0).data(ImageIdRole)
        for r in range(window.review.image_proxy.rowCount())
    ]
    assert shown == [images[2].id, images[4].id]
    assert window.controller.image_id == images[2].id
    assert window.review.review_set_button.isVisibleTo(window)
    window.review.review_set_button.click()
    assert window.review.image_proxy.rowCount() == len(
        images
    ) and not window.review.review_set_button.isVisibleTo(window)
