"""The canvas's reduced-size overview shows an EXIF-rotated photo exactly as load_image does.

A square phone photo (3024x3024, orientation 6) was once shown rotated: OpenCV's ``imread``
applies the EXIF rotation, while ``load_image`` applies it only when the dataset's width and
height are the rotated ones (ADR 0011).
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from coco_samples import jpeg_with_orientation

from fusereview.core.images import load_image
from fusereview.qt.canvas.scene import OVERVIEW_MAX_SIDE, decode_overview, overview_step


def _photo(path: Path, width: int, height: int, orientation: int) -> Path:
    rgb = np.full((height, width, 3), 30, np.uint8)
    rgb[: height // 4, : width // 4] = (230, 20, 20)  # a red block in the stored top-left corner
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    path.write_bytes(jpeg_with_orientation(jpeg.tobytes(), orientation))
    return path


def _red_corner(img: np.ndarray) -> str:
    h, w = img.shape[:2]
    corners = {
        "top-left": img[h // 10, w // 10],
        "top-right": img[h // 10, w - w // 10],
        "bottom-left": img[h - h // 10, w // 10],
        "bottom-right": img[h - h // 10, w - w // 10],
    }
    return next(name for name, px in corners.items() if px[0] > 150 and px[1] < 100)


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        ((3024, 3024), (3024, 3024)),  # iPhone square photo, orientation 6: annotated as stored
        ((3200, 2400), (2400, 3200)),  # the dataset's size is the rotated one: rotate
        ((3200, 2400), (3200, 2400)),  # the dataset's size is the stored one: as stored
    ],
)
def test_overview_matches_load_image(
    tmp_path: Path, stored: tuple[int, int], expected: tuple[int, int]
) -> None:
    path = _photo(tmp_path / "photo.jpg", *stored, orientation=6)
    full = load_image(path, expected_size=expected)
    step = overview_step(*expected, OVERVIEW_MAX_SIDE)
    assert step > 1
    small = decode_overview(path, *expected, step)
    assert small is not None
    assert small.shape[:2] == (-(-expected[1] // step), -(-expected[0] // step))
    assert _red_corner(small) == _red_corner(full)


def test_overview_of_a_fifo_does_not_hang(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "photo.jpg"
    os.mkfifo(fifo)
    assert decode_overview(fifo, 3200, 3200, 2) is None  # the full decode then reports it
