"""PNG plots drawn with OpenCV and numpy (evaluation must not import Qt; matplotlib is no dependency).

Simple line plots with axes, "nice" ticks, labels and a legend, and image overlays that show true
positives, false positives, duplicates and false negatives in fixed colours.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from fusereview.core.files import write_bytes_atomic
from fusereview.evaluation.errors import ImageErrors

# RGB colours (images are RGB throughout fusereview; converted to BGR only when written).
PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75), (227, 119, 194), (127, 127, 127)]  # fmt: skip
OUTCOME_COLORS = {
    "tp": (40, 200, 60),  # green: found
    "fp": (230, 40, 40),  # red: spurious
    "duplicates": (255, 160, 0),  # orange: found twice
    "fn": (40, 120, 255),  # blue: missed
}
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_BG = (255, 255, 255)
_AXIS = (40, 40, 40)
_GRID = (225, 225, 225)


@dataclass
class Series:
    """One line of a plot; ``None`` values leave a gap."""

    label: str
    xs: Sequence[float]
    ys: Sequence[float | None]
    color: tuple[int, int, int] | None = None
    markers: bool = False


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values covering [lo, hi] (1, 2, 2.5, 5 x 10^k steps)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0, 1.0]
    if hi <= lo:
        hi = lo + (abs(lo) if lo else 1.0)
    raw = (hi - lo) / max(count, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks = []
    v = start
    while v <= hi + step * 1e-9:
        ticks.append(round(v, 10))
        v += step
    if ticks[-1] < hi:
        ticks.append(round(v, 10))
    return ticks


def _fmt_tick(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1e4 or abs(v) < 1e-3:
        return f"{v:.1e}"
    return f"{v:.6g}" if v == int(v) else f"{v:.4g}"


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


def line_plot(
    series: Sequence[Series],
    *,
    title: str = "",
    xlabel: str = "",
    ylabel: str = "",
    size: tuple[int, int] = (800, 460),
    ylim: tuple[float, float] | None = None,
    xlim: tuple[float, float] | None = None,
) -> np.ndarray:
    """Draw a line plot; returns an RGB image (height x width x 3, uint8)."""
    width, height = size
    img = np.full((height, width, 3), _BG, dtype=np.uint8)
    left, right, top, bottom = 72, 20, 36, 52
    x0, x1, y0, y1 = left, width - right, top, height - bottom
    xs_all = [float(x) for s in series for x, y in zip(s.xs, s.ys, strict=True) if y is not None]
    ys_all = [float(y) for s in series for y in s.ys if y is not None and math.isfinite(y)]
    if xlim is None:
        xlim = (min(xs_all), max(xs_all)) if xs_all else (0.0, 1.0)
    if ylim is None:
        ylim = (min(ys_all), max(ys_all)) if ys_all else (0.0, 1.0)
    xt = nice_ticks(*xlim)
    yt = nice_ticks(*ylim)
    xmin, xmax = min(xlim[0], xt[0]), max(xlim[1], xt[-1])
    ymin, ymax = min(ylim[0], yt[0]), max(ylim[1], yt[-1])

    def px(x: float) -> int:
        return round(x0 + (x - xmin) / (xmax - xmin or 1) * (x1 - x0))

    def py(y: float) -> int:
        return round(y1 - (y - ymin) / (ymax - ymin or 1) * (y1 - y0))

    for t in yt:
        cv2.line(img, (x0, py(t)), (x1, py(t)), _GRID, 1)
        _text(img, _fmt_tick(t), (x0 - 6, py(t)), anchor="right")
    for t in xt:
        cv2.line(img, (px(t), y0), (px(t), y1), _GRID, 1)
        _text(img, _fmt_tick(t), (px(t), y1 + 12), anchor="center")
    cv2.rectangle(img, (x0, y0), (x1, y1), _AXIS, 1)
    if title:
        _text(img, title, (width // 2, 16), scale=0.55, anchor="center")
    if xlabel:
        _text(img, xlabel, ((x0 + x1) // 2, height - 14), anchor="center")
    if ylabel:
        (tw, th), _ = cv2.getTextSize(ylabel, _FONT, 0.45, 1)
        label = np.full((th + 8, tw + 4, 3), _BG, dtype=np.uint8)
        _text(label, ylabel, (2, (th + 8) // 2 - 1))
        label = cv2.rotate(label, cv2.ROTATE_90_COUNTERCLOCKWISE)
        lh, lw = label.shape[:2]
        ty = max(0, (y0 + y1) // 2 - lh // 2)
        img[ty : ty + lh, 4 : 4 + lw] = label[: height - ty]

    for i, s in enumerate(series):
        color = s.color or PALETTE[i % len(PALETTE)]
        run: list[tuple[int, int]] = []
        runs = [run]
        for x, y in zip(s.xs, s.ys, strict=True):
            if y is None or not math.isfinite(y):
                run = []
                runs.append(run)
                continue
            run.append((px(float(x)), py(float(y))))
        for pts in runs:
            if len(pts) > 1:
                cv2.polylines(img, [np.array(pts, dtype=np.int32)], False, color, 2, cv2.LINE_AA)
            if s.markers or len(pts) == 1:
                for p in pts:
                    cv2.circle(img, p, 3, color, -1, cv2.LINE_AA)
    # Legend, top right inside the axes.
    labelled = [(s.label, s.color or PALETTE[i % len(PALETTE)]) for i, s in enumerate(series) if s.label]
    if labelled:
        w = max(cv2.getTextSize(lbl, _FONT, 0.42, 1)[0][0] for lbl, _ in labelled) + 40
        h = 18 * len(labelled) + 8
        lx, ly = x1 - w - 8, y0 + 8
        cv2.rectangle(img, (lx, ly), (lx + w, ly + h), _BG, -1)
        cv2.rectangle(img, (lx, ly), (lx + w, ly + h), _GRID, 1)
        for j, (lbl, color) in enumerate(labelled):
            yy = ly + 13 + 18 * j
            cv2.line(img, (lx + 6, yy), (lx + 26, yy), color, 2, cv2.LINE_AA)
            _text(img, lbl, (lx + 32, yy), scale=0.42)
    return img


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
