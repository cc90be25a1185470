"""Image overlays of per-image errors, drawn with OpenCV (the report's charts are in ``figures.py``).

True positives, false positives, duplicates and false negatives in fixed colours, on the image's
own pixels; the GUI's evaluation panel uses the same colours.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from fusereview.core.files import write_bytes_atomic
from fusereview.evaluation.errors import ImageErrors

# RGB colours (images are RGB throughout fusereview; converted to BGR only when written).
OUTCOME_COLORS = {
    "tp": (40, 200, 60),  # green: found
    "fp": (230, 40, 40),  # red: spurious
    "duplicates": (255, 160, 0),  # orange: found twice
    "fn": (40, 120, 255),  # blue: missed
}
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_BG = (255, 255, 255)
_AXIS = (40, 40, 40)


def _text(
    img: np.ndarray, text: str, org: tuple[int, int], scale: float = 0.45, color=_AXIS, anchor: str = "left"
) -> None:
    (w, h), _ = cv2.getTextSize(text, _FONT, scale, 1)
    x, y = org
    if anchor == "center":
        x -= w // 2
    elif anchor == "right":
        x -= w
    cv2.putText(img, text, (int(x), int(y + h // 2)), _FONT, scale, color, 1, cv2.LINE_AA)


def _decode(seg: Any, height: int, width: int) -> np.ndarray | None:
    """A COCO segmentation (polygons or RLE) as a bool mask, ``None`` when absent or unreadable."""
    if not seg:
        return None
    try:
        if isinstance(seg, dict):
            rle = dict(seg)
            if isinstance(rle.get("counts"), list):
                rle = mask_utils.frPyObjects(rle, height, width)
            elif isinstance(rle.get("counts"), str):
                rle["counts"] = rle["counts"].encode("ascii")
            return mask_utils.decode(rle).astype(bool)
        polys = [p for p in seg if len(p) >= 6]
        if not polys:
            return None
        return mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polys, height, width))).astype(bool)
    except (TypeError, ValueError, KeyError):
        return None  # an overlay without a mask still shows the box


def draw_overlay(
    image: np.ndarray, errors: ImageErrors, *, alpha: float = 0.35, show_tp: bool = True, min_width: int = 0
) -> np.ndarray:
    """Draw an image's outcomes on a copy of ``image`` (RGB): TP green, FP red, duplicates orange, FN blue.

    ``min_width`` enlarges small images first (by a whole factor, at most 4) so that boxes and
    scores stay readable in a report.
    """
    h, w = image.shape[:2]
    scale = 1
    if min_width and w < min_width:
        scale = min(4, -(-min_width // w))
    out = (
        cv2.resize(image, (w * scale, h * scale), interpolation=cv2.INTER_NEAREST)
        if scale > 1
        else image.copy()
    )
    layers: list[tuple[str, list[Any]]] = [
        ("fn", errors.false_negatives),
        ("fp", errors.false_positives),
        ("duplicates", errors.duplicates),
    ]
    if show_tp:
        layers.insert(0, ("tp", errors.true_positives))
    for kind, items in layers:
        color = np.array(OUTCOME_COLORS[kind], dtype=np.float32)
        for item in items:
            mask = _decode(item.segmentation, h, w)
            if mask is not None and mask.shape == (h, w):
                if scale > 1:
                    mask = np.kron(mask, np.ones((scale, scale), dtype=bool))
                out[mask] = (out[mask] * (1 - alpha) + color * alpha).astype(np.uint8)
            x, y, bw, bh = (v * scale for v in item.bbox)
            cv2.rectangle(out, (int(x), int(y)), (int(x + bw), int(y + bh)), OUTCOME_COLORS[kind], 2)
            if kind != "fn":
                _text(
                    out,
                    f"{item.score:.2f}",
                    (int(x) + 2, max(8, int(y) - 8)),
                    scale=0.4,
                    color=OUTCOME_COLORS[kind],
                )
    return out


def legend_strip(width: int) -> np.ndarray:
    """A white strip naming the overlay colours (put under an overlay)."""
    strip = np.full((22, width, 3), _BG, dtype=np.uint8)
    x = 6
    for kind, label in (
        ("tp", "true positive"),
        ("fp", "false positive"),
        ("duplicates", "duplicate"),
        ("fn", "missed"),
    ):
        cv2.rectangle(strip, (x, 6), (x + 12, 16), OUTCOME_COLORS[kind], -1)
        _text(strip, label, (x + 16, 11), scale=0.4)
        x += 20 + cv2.getTextSize(label, _FONT, 0.4, 1)[0][0] + 10
    return strip


def write_png(image: np.ndarray, out: Path) -> Path:
    """Write an RGB image as PNG atomically (temporary file in the same folder, fsync, rename)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError(f"could not encode {out} as PNG")
    write_bytes_atomic(buf.tobytes(), out)
    return out
