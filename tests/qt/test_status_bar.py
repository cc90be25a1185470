"""The status bar says what the canvas does."""

from __future__ import annotations


def test_status_bar_shows_the_zoom(window) -> None:
    window.view.set_zoom(2.0)
    assert window.zoom_label.text() == "zoom 200%"
    window.view.actual_size()
    assert window.zoom_label.text() == "zoom 100%"
