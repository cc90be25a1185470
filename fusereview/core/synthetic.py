"""Synthetic fuse-box photos, exported the way Roboflow exports the customer's data.

Tests, the demo and the benchmarks need a dataset that looks like the first customer's (a Roboflow
COCO export of "fuse neutrals" in fuse-box photos) without shipping their photos. This module draws
one: a panel with DIN rails, rows of modules (breakers, fuse carriers, blanks, RCDs), labels,
screws, cables, a lighting gradient, blur and noise; among the modules sit the objects to find, the
*fuse neutrals*: a dark link with a brass bar across it and two screws. They are made distinctive
on purpose, so that a tiny SAM3 trained from scratch at 224 px can learn them in minutes.

The export copies Roboflow's quirks, because the importer must handle them:

* a placeholder category with id 0 (``"fuse-neutrals"``, supercategory ``"none"``) that no
  annotation uses, and the real class ``"fuse neutrals"`` (id 1, supercategory ``"fuse-neutrals"``);
* image and annotation ids that start at 0 in every split;
* ``area`` equal to the bbox area (not the mask area); bbox x/y truncated to integers;
* polygon masks, some with a repeated closing point;
* file names like ``IMG_0001_jpg.rf.<hash>.jpg``, one with spaces and parentheses;
* an ``extra`` field on images (``{"name": <original file name>}``), ``info`` and ``licenses``.

Masks agree with the pixels exactly: each fuse neutral is painted through the mask that
pycocotools rasterises from the very polygon written to the json (``cv2.fillPoly`` and
pycocotools disagree by up to a pixel along edges, so painting through ``cv2.fillPoly`` alone
would not be exact).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from fusereview.core.errors import FusereviewError
from fusereview.core.files import make_temp_dir, write_text_atomic

CLASS_NAME = "fuse neutrals"
PLACEHOLDER_NAME = "fuse-neutrals"
ANNOTATION_FILE = "_annotations.coco.json"
SPLIT_NAMES = ("train", "valid", "test")
# Roboflow stamps every export with one date; a fixed one keeps the output deterministic.
EXPORT_DATE = "2024-03-12T10:27:40+00:00"

_SHIFT = 4  # cv2 fixed-point bits: sub-pixel drawing of float geometry
_ONE = 1 << _SHIFT

RGB = tuple[int, int, int]


class SynthError(FusereviewError):
    """The synthetic dataset cannot be generated with the given settings or output path."""


# --------------------------------------------------------------------------------------------
# small drawing helpers (RGB uint8 canvases, float geometry)
# --------------------------------------------------------------------------------------------


def _fixed(points: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(points, dtype=np.float64) * _ONE).astype(np.int32).reshape(-1, 1, 2)


def _fill(img: np.ndarray, points: np.ndarray, colour: Sequence[int]) -> None:
    cv2.fillPoly(img, [_fixed(points)], tuple(int(c) for c in colour), cv2.LINE_AA, _SHIFT)


def _rect(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


def _circle(img: np.ndarray, centre: Sequence[float], radius: float, colour: Sequence[int]) -> None:
    c = tuple(round(v * _ONE) for v in centre)
    cv2.circle(img, c, round(radius * _ONE), tuple(int(v) for v in colour), -1, cv2.LINE_AA, _SHIFT)


def _line(
    img: np.ndarray, p0: Sequence[float], p1: Sequence[float], colour: Sequence[int], thickness: int = 1
) -> None:
    a = tuple(round(v * _ONE) for v in p0)
    b = tuple(round(v * _ONE) for v in p1)
    cv2.line(img, a, b, tuple(int(v) for v in colour), max(1, thickness), cv2.LINE_AA, _SHIFT)


def _screw(img: np.ndarray, centre: Sequence[float], radius: float, rng: np.random.Generator) -> None:
    _circle(img, (centre[0] + radius * 0.25, centre[1] + radius * 0.3), radius, (90, 90, 90))  # shade
    _circle(img, centre, radius, (188, 190, 192))
    angle = rng.uniform(0, math.pi)
    d = np.array([math.cos(angle), math.sin(angle)]) * radius * 0.8
    c = np.asarray(centre, dtype=np.float64)
    _line(img, c - d, c + d, (70, 70, 72), 1)


def _jitter(rng: np.random.Generator, colour: Sequence[int], amount: int) -> RGB:
    r, g, b = (
        max(0, min(255, int(c) + int(d)))
        for c, d in zip(colour, rng.integers(-amount, amount + 1, 3), strict=True)
    )
    return (r, g, b)


def _shade(colour: Sequence[int], factor: float) -> RGB:
    # plain Python: called thousands of times per image, where np.clip's overhead dominates
    r, g, b = (max(0, min(255, round(c * factor))) for c in colour)
    return (r, g, b)


def _polygon_area(points: np.ndarray) -> float:
    x, y = points[:, 0], points[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _clip_polygon(points: np.ndarray, size: int) -> np.ndarray:
    """Clip a polygon to the image square (Sutherland-Hodgman), so no vertex lies outside."""
    out = [tuple(p) for p in points]
    for axis, limit, keep_below in (
        (0, 0.0, False),
        (0, float(size), True),
        (1, 0.0, False),
        (1, float(size), True),
    ):
        src, out = out, []
        if not src:
            break
        for i, cur in enumerate(src):
            prev = src[i - 1]
            cur_in = cur[axis] <= limit if keep_below else cur[axis] >= limit
            prev_in = prev[axis] <= limit if keep_below else prev[axis] >= limit
            if cur_in != prev_in:
                t = (limit - prev[axis]) / (cur[axis] - prev[axis])
                out.append((prev[0] + t * (cur[0] - prev[0]), prev[1] + t * (cur[1] - prev[1])))
            if cur_in:
                out.append(cur)
    return np.array(out, dtype=np.float64).reshape(-1, 2)


def _rasterise(polygons: list[list[float]], size: int) -> np.ndarray:
    """The mask pycocotools makes of these polygons: the definition of the annotation's pixels."""
    rles = mask_utils.frPyObjects(polygons, size, size)
    return mask_utils.decode(mask_utils.merge(rles)).astype(bool)


# --------------------------------------------------------------------------------------------
# scene layout (panel coordinates, before the camera transform)
# --------------------------------------------------------------------------------------------


@dataclass
class _Slot:
    """A place on a DIN rail; ``kind`` is what gets mounted there."""

    x0: float
    width: float
    rail_y: float
    kind: str  # "standard" (breaker, carrier, blank or fuse neutral), "rcd" or "gap"


@dataclass
class _Row:
    rail_y: float
    module_h: float
    slots: list[_Slot]


def _layout(rng: np.random.Generator, canvas: int, u: float) -> list[_Row]:
    """Rows of DIN rail down the panel, each filled left to right with module slots."""
    rows: list[_Row] = []
    pitch = rng.uniform(128, 160) * u
    y = rng.uniform(0.02, 0.1) * canvas + pitch / 2
    while y < canvas - pitch / 3:
        module_h = rng.uniform(78, 94) * u
        slot_w = rng.uniform(34, 44) * u
        slots: list[_Slot] = []
        x = rng.uniform(-30, 0) * u
        while x < canvas:
            r = rng.random()
            if r < 0.06:
                kind, width = "gap", rng.uniform(20, 60) * u
            elif r < 0.14:
                kind, width = "rcd", 2 * slot_w
            else:
                kind, width = "standard", slot_w
            slots.append(_Slot(x, width, y, kind))
            x += width + rng.uniform(0.5, 2.5) * u
        rows.append(_Row(y, module_h, slots))
        y += pitch
    return rows


@dataclass
class _Target:
    """One fuse neutral: its outline and inner parts in image coordinates."""

    outline: np.ndarray  # (16, 2), the annotation polygon before clipping
    bar: np.ndarray  # (4, 2)
    top_edge: tuple[np.ndarray, np.ndarray]
    screws: list[np.ndarray]
    screw_r: float
    body: RGB
    brass: RGB
    panel_footprint: np.ndarray  # outline in panel coordinates (for the drop shadow)


def _target_local(rng: np.random.Generator, slot_w: float, u: float) -> dict[str, Any]:
    """A fuse neutral's shape centred at the origin: a chamfered dark body, a brass bar that sticks out."""
    p = rng.uniform(3, 6) * u  # how far the bar sticks out on each side
    w = slot_w - 2 * p - rng.uniform(1, 4) * u
    h = rng.uniform(36, 54) * u
    c = rng.uniform(2, 4) * u
    bar_h = rng.uniform(8, 12) * u
    b0 = rng.uniform(-0.15, 0.1) * h - bar_h / 2
    b1 = b0 + bar_h
    hw, hh = w / 2, h / 2
    outline = np.array(
        [
            [-hw + c, -hh], [hw - c, -hh], [hw, -hh + c], [hw, b0], [hw + p, b0], [hw + p, b1], [hw, b1],
            [hw, hh - c], [hw - c, hh], [-hw + c, hh], [-hw, hh - c], [-hw, b1], [-hw - p, b1],
            [-hw - p, b0], [-hw, b0], [-hw, -hh + c],
        ],
        dtype=np.float64,
    )  # fmt: skip
    bar = _rect(-hw - p, b0, hw + p, b1)
    sx = hw - max(3.5 * u, 0.22 * w)
    screws = [np.array([-sx, (b0 + b1) / 2]), np.array([sx, (b0 + b1) / 2])]
    top_edge = (np.array([-hw + c, -hh + 1.0 * u]), np.array([hw - c, -hh + 1.0 * u]))
    return {"outline": outline, "bar": bar, "screws": screws, "top_edge": top_edge, "bar_h": bar_h}


# --------------------------------------------------------------------------------------------
# painting
# --------------------------------------------------------------------------------------------

_PANEL_COLOURS: list[RGB] = [
    (206, 206, 200),
    (214, 205, 186),
    (222, 222, 216),
    (190, 194, 198),
    (200, 196, 182),
]
_BREAKER_COLOURS: list[RGB] = [(236, 236, 230), (228, 226, 214), (240, 238, 232), (214, 216, 218)]
_TOGGLE_COLOURS: list[RGB] = [(30, 30, 32), (52, 52, 56), (38, 84, 170), (170, 34, 30), (232, 232, 228)]
_CARRIER_DOTS: list[RGB] = [(245, 245, 245), (40, 90, 200), (230, 200, 40), (200, 40, 35), (40, 150, 70)]
_BODY_COLOURS: list[RGB] = [(22, 22, 26), (30, 32, 38), (18, 26, 64), (26, 36, 78), (36, 34, 40)]
_BRASS_COLOURS: list[RGB] = [(204, 164, 70), (214, 182, 96), (190, 150, 62), (200, 200, 196), (222, 196, 120)]
_CABLE_COLOURS: list[RGB] = [
    (128, 74, 34),
    (46, 76, 168),
    (120, 122, 126),
    (34, 34, 36),
    (172, 36, 30),
    (60, 150, 60),
]
_CIRCUITS = [
    "LIGHTS",
    "SOCKETS",
    "COOKER",
    "KITCHEN",
    "SHOWER",
    "BOILER",
    "GARAGE",
    "UPSTAIRS",
    "IMM",
    "SMOKE",
]


def _paint_panel(
    rng: np.random.Generator, canvas: int, u: float, rows: list[_Row], target_slots: set[tuple[int, int]],
    shadows: list[np.ndarray], view: np.ndarray,
) -> np.ndarray:  # fmt: skip
    """Paint the panel (everything but the fuse neutrals and cables) in panel coordinates.

    ``view`` is ``(x0, y0, x1, y1)``, the panel region the camera sees: modules outside it are not
    drawn (most of the canvas is outside the picture; drawing it would double the time).
    """

    def seen(x0: float, y0: float, x1: float, y1: float) -> bool:
        return x1 >= view[0] and x0 <= view[2] and y1 >= view[1] and y0 <= view[3]

    base = _jitter(rng, _PANEL_COLOURS[rng.integers(len(_PANEL_COLOURS))], 6)
    # low-frequency mottling so the back plate is not a flat colour (made small, then enlarged)
    small = np.clip(np.float32(base) + rng.normal(0, 6, (6, 6, 1)).astype(np.float32), 0, 255).astype(
        np.uint8
    )
    # (cubic in one step from 6x6 to the canvas is 25x slower than this two-step enlargement)
    small = cv2.resize(small, (48, 48), interpolation=cv2.INTER_CUBIC)
    img = cv2.resize(small, (canvas, canvas), interpolation=cv2.INTER_LINEAR)

    # drop shadows of every module (fuse neutrals included), darkened through a blurred mask
    shadow = np.zeros((canvas, canvas), np.uint8)
    off = np.array([3.0, 4.0]) * u
    for row in rows:
        for slot in row.slots:
            y0, y1 = row.rail_y - row.module_h / 2, row.rail_y + row.module_h / 2
            if slot.kind != "gap" and seen(slot.x0, y0, slot.x0 + slot.width + 10 * u, y1 + 10 * u):
                _fill(shadow, _rect(slot.x0, y0, slot.x0 + slot.width, y1) + off, (255,))
    for footprint in shadows:
        _fill(shadow, footprint + off, (255,))

    counter = 1
    modules: list[tuple[_Slot, _Row]] = []
    for ri, row in enumerate(rows):
        y_top = row.rail_y - row.module_h / 2
        # cable trunking between rows, with its slotted cover
        if ri > 0:
            prev = rows[ri - 1]
            ty0 = prev.rail_y + prev.module_h / 2 + 8 * u
            ty1 = y_top - 22 * u
            if ty1 - ty0 > 12 * u:
                duct = _jitter(rng, (168, 170, 172), 8)
                _fill(img, _rect(0, ty0, canvas, ty1), duct)
                _line(img, (0, ty0), (canvas, ty0), _shade(duct, 1.15), 2)
                for x in np.arange(rng.uniform(0, 12 * u), canvas, 14 * u):
                    _fill(img, _rect(x, ty0 + 3 * u, x + 5 * u, ty1 - 3 * u), _shade(duct, 0.9))
        # label strip above the row, one circuit name per module
        ly0, ly1 = y_top - 18 * u, y_top - 6 * u
        _fill(img, _rect(0, ly0, canvas, ly1), _jitter(rng, (244, 242, 232), 5))
        # the DIN rail: bright top edge, slots along it
        rail = _jitter(rng, (176, 178, 182), 6)
        _fill(img, _rect(0, row.rail_y - 7 * u, canvas, row.rail_y + 7 * u), rail)
        _line(
            img, (0, row.rail_y - 6 * u), (canvas, row.rail_y - 6 * u), _shade(rail, 1.25), max(1, int(2 * u))
        )
        for x in np.arange(rng.uniform(0, 20 * u), canvas, 25 * u):
            _fill(img, _rect(x, row.rail_y - 2 * u, x + 12 * u, row.rail_y + 2.5 * u), _shade(rail, 0.6))
        for si, slot in enumerate(row.slots):
            if slot.kind == "gap" or not seen(slot.x0, ly0, slot.x0 + slot.width, y_top + row.module_h):
                continue
            if rng.random() < 0.8:
                text = str(counter) if rng.random() < 0.5 else _CIRCUITS[rng.integers(len(_CIRCUITS))]
                scale = 0.26 * u
                (tw, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
                org = (int(slot.x0 + max(1.0, (slot.width - tw) / 2)), int(ly1 - 3 * u))
                cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (40, 40, 60), 1, cv2.LINE_AA)
            counter += 1
            if (ri, si) not in target_slots:  # fuse neutrals are painted later, through their masks
                modules.append((slot, row))

    # screws holding the back plate
    for _ in range(rng.integers(2, 7)):
        _screw(img, rng.uniform(0, canvas, 2), rng.uniform(4, 6) * u, rng)

    # shadows fall on the plate and rails; the modules are painted on top of them
    # (cv2 arithmetic on uint8: several times faster than numpy floats on a canvas this size)
    keep = 255 - cv2.convertScaleAbs(cv2.GaussianBlur(shadow, (0, 0), 3 * u), alpha=0.45)
    img = cv2.multiply(img, cv2.merge([keep, keep, keep]), scale=1.0 / 255.0)
    for slot, row in modules:
        _paint_module(img, rng, slot, row, u)
    return img


def _paint_module(img: np.ndarray, rng: np.random.Generator, slot: _Slot, row: _Row, u: float) -> None:
    x0, x1 = slot.x0, slot.x0 + slot.width
    y0, y1 = row.rail_y - row.module_h / 2, row.rail_y + row.module_h / 2
    cx = (x0 + x1) / 2
    r = rng.random()
    if slot.kind == "rcd" or r < 0.58:
        body = _jitter(rng, _BREAKER_COLOURS[rng.integers(len(_BREAKER_COLOURS))], 4)
        _fill(img, _rect(x0, y0, x1, y1), _shade(body, 0.9))
        # raised front face
        fy0, fy1 = y0 + 0.22 * row.module_h, y1 - 0.22 * row.module_h
        _fill(img, _rect(x0 + 2 * u, fy0, x1 - 2 * u, fy1), body)
        _line(img, (x0 + 2 * u, fy0), (x1 - 2 * u, fy0), _shade(body, 1.08), 1)
        # terminal screws top and bottom
        terminals = [x0 + slot.width / 4, x1 - slot.width / 4] if slot.kind == "rcd" else [cx]
        for xs in terminals:
            _circle(img, (xs, y0 + 8 * u), 4 * u, (60, 60, 62))
            _circle(img, (xs, y1 - 8 * u), 4 * u, (60, 60, 62))
            _screw(img, (xs, y0 + 8 * u), 2.6 * u, rng)
            _screw(img, (xs, y1 - 8 * u), 2.6 * u, rng)
        toggle = _TOGGLE_COLOURS[rng.integers(len(_TOGGLE_COLOURS))]
        tw = min(12 * u, 0.35 * slot.width)
        up = rng.random() < 0.85
        ty = row.rail_y - (7 if up else -2) * u
        _fill(
            img,
            _rect(cx - tw / 2 - 1.5 * u, ty - 9 * u, cx + tw / 2 + 1.5 * u, ty + 9 * u),
            _shade(body, 0.7),
        )
        _fill(img, _rect(cx - tw / 2, ty - 7 * u, cx + tw / 2, ty + 3 * u), toggle)
        _line(img, (cx - tw / 2, ty - 6 * u), (cx + tw / 2, ty - 6 * u), _shade(toggle, 1.6), 1)
        text = "RCD 30mA" if slot.kind == "rcd" else rng.choice(["B6", "B16", "B32", "C20", "B40"])
        cv2.putText(
            img, str(text), (int(x0 + 4 * u), int(fy1 - 3 * u)), cv2.FONT_HERSHEY_SIMPLEX,
            0.24 * u, (50, 50, 50), 1, cv2.LINE_AA,
        )  # fmt: skip
        if slot.kind == "rcd":
            _circle(
                img,
                (x1 - 9 * u, fy0 + 8 * u),
                4 * u,
                (226, 196, 40) if rng.random() < 0.5 else (60, 100, 200),
            )
        # a thin coloured brand stripe
        if rng.random() < 0.5:
            _fill(img, _rect(x0 + 2 * u, fy1 - 2 * u, x1 - 2 * u, fy1), _jitter(rng, (40, 90, 170), 30))
    elif r < 0.86:
        # rewireable fuse carrier: cream ceramic, a rating dot, two silver screws
        body = _jitter(rng, (226, 216, 196), 8)
        cy0, cy1 = y0 + 6 * u, y1 - 6 * u
        c = 4 * u
        _fill(img, np.array([[x0 + c, cy0], [x1 - c, cy0], [x1, cy0 + c], [x1, cy1 - c], [x1 - c, cy1],
                             [x0 + c, cy1], [x0, cy1 - c], [x0, cy0 + c]]), body)  # fmt: skip
        _fill(img, _rect(x0 + 4 * u, cy0 + 14 * u, x1 - 4 * u, cy1 - 14 * u), _shade(body, 0.93))
        _circle(img, (cx, row.rail_y - 10 * u), 5 * u, _CARRIER_DOTS[rng.integers(len(_CARRIER_DOTS))])
        _screw(img, (cx, cy0 + 7 * u), 3 * u, rng)
        _screw(img, (cx, cy1 - 7 * u), 3 * u, rng)
    else:
        # blank cover plate
        plate = _jitter(rng, (196, 198, 200), 8)
        _fill(img, _rect(x0, y0 + 10 * u, x1, y1 - 10 * u), plate)
        for k in range(3):
            yy = row.rail_y - 8 * u + k * 8 * u
            _line(img, (x0 + 4 * u, yy), (x1 - 4 * u, yy), _shade(plate, 0.85), 1)


def _paint_target(img: np.ndarray, target: _Target, mask: np.ndarray, u: float) -> None:
    """Paint one fuse neutral into ``img`` exactly over ``mask`` (its annotation's pixels)."""
    # work on the object's own window: copying the whole image per object is the slow part
    size = img.shape[0]
    lo = np.floor(target.outline.min(axis=0)).astype(int) - 3
    hi = np.ceil(target.outline.max(axis=0)).astype(int) + 4
    x0, y0 = max(0, int(lo[0])), max(0, int(lo[1]))
    x1, y1 = min(size, int(hi[0])), min(size, int(hi[1]))
    if x1 <= x0 or y1 <= y0:
        return
    o = np.array([x0, y0], dtype=np.float64)
    win = mask[y0:y1, x0:x1]
    layer = img[y0:y1, x0:x1].copy()
    layer[win] = target.body
    _fill(layer, target.outline - o, target.body)
    _line(
        layer,
        target.top_edge[0] - o,
        target.top_edge[1] - o,
        _shade(target.body, 2.2),
        max(1, round(1.5 * u)),
    )
    _fill(layer, target.bar - o, target.brass)
    _line(layer, target.bar[0] - o, target.bar[1] - o, _shade(target.brass, 1.18), 1)
    for s in target.screws:
        c = s - o
        _circle(layer, c, target.screw_r + 0.8 * u, _shade(target.brass, 0.7))
        _circle(layer, c, target.screw_r, (206, 208, 210))
        slot = np.array([target.screw_r * 0.75, 0.0])
        _line(layer, c - slot, c + slot, (80, 80, 84), 1)
    img[y0:y1, x0:x1][win] = layer[win]


def _cable_points(
    rng: np.random.Generator, size: int, terminals: list[tuple[np.ndarray, np.ndarray]]
) -> np.ndarray:
    """A cable from an edge of the picture into a module's terminal, as a sampled cubic Bezier.

    ``terminals`` holds ``(point, direction)`` pairs in image coordinates: the cable arrives along
    ``direction`` (out of the module's top or bottom), as wiring does. Without terminals in view it
    ends somewhere inside the picture.
    """
    side = rng.integers(4)
    t = rng.uniform(0.05, 0.95) * size
    p0 = np.array([(t, -10.0), (size + 10.0, t), (t, size + 10.0), (-10.0, t)][side])
    if terminals:
        p3, direction = terminals[int(rng.integers(len(terminals)))]
        p2 = p3 + direction * rng.uniform(0.08, 0.25) * size
    else:
        p3 = rng.uniform(0.1, 0.9, 2) * size
        p2 = p3 + rng.uniform(-0.3, 0.3, 2) * size
    p1 = p0 + rng.uniform(-0.3, 0.3, 2) * size
    s = np.linspace(0, 1, 48)[:, None]
    return (1 - s) ** 3 * p0 + 3 * (1 - s) ** 2 * s * p1 + 3 * (1 - s) * s**2 * p2 + s**3 * p3


def _lighting(rng: np.random.Generator, img: np.ndarray, u: float) -> np.ndarray:
    """Camera look: uneven light, colour cast, vignette, slight blur, sensor noise."""
    size = img.shape[0]
    # the light field is smooth: compute it on a coarse grid and upsample (much faster)
    n = 64
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32) / (n - 1) - 0.5
    phi = rng.uniform(0, 2 * math.pi)
    field = 1.0 + rng.uniform(-0.35, 0.35) * (xx * math.cos(phi) + yy * math.sin(phi))
    field *= 1.0 - rng.uniform(0.1, 0.35) * (xx**2 + yy**2) * 2
    hx, hy = rng.uniform(-0.4, 0.4, 2)
    field += rng.uniform(0.0, 0.12) * np.exp(-((xx - hx) ** 2 + (yy - hy) ** 2) / 0.04)
    field *= rng.uniform(0.88, 1.06)
    tint = 1.0 + np.array([1.0, 0.0, -1.0]) * rng.uniform(-0.05, 0.07)  # warm or cool light
    field = cv2.resize(
        (field[..., None] * tint).astype(np.float32), (size, size), interpolation=cv2.INTER_LINEAR
    )
    out = cv2.multiply(img, field, dtype=cv2.CV_32F)
    out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.45, 0.9) * max(u, 0.5))
    # luminance noise (one channel for all three): a third of the cost of per-channel noise
    noise = rng.standard_normal((size, size), dtype=np.float32)
    out = cv2.scaleAdd(cv2.merge([noise, noise, noise]), float(rng.uniform(2.0, 5.0)), out)
    return np.clip(out + 0.5, 0, 255, out=out).astype(np.uint8)


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------


def render_image(
    rng: np.random.Generator, size: int = 512, *, camera_effects: bool = True
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Draw one synthetic fuse-box photo and the fuse neutrals in it.

    Parameters
    ----------
    rng:
        The random generator; the same generator state gives the same image.
    size:
        Width and height in pixels. Geometry scales with ``size / 512``.
    camera_effects:
        ``False`` skips the uneven light, blur and noise, so that every pixel of an object's
        ``mask`` keeps the colour it was painted with (for checking masks against pixels).

    Returns
    -------
    image:
        ``(size, size, 3)`` uint8 RGB.
    objects:
        One dict per fuse neutral: ``segmentation`` (list of polygons, flat ``[x0, y0, x1, y1, ...]``,
        rounded to 2 decimals, no repeated closing point), ``bbox`` (exact xywh extent of the polygons),
        ``mask`` (bool ``(size, size)``: exactly the pixels pycocotools rasterises from
        ``segmentation``, which are exactly the pixels painted as the object before the camera
        effects), ``area`` (mask pixels), ``truncated`` (cut by the image border), ``occluded``
        (partly hidden by a cable).
    """
    if size < 64:
        raise SynthError(f"size: images must be at least 64 pixels wide, got {size}")
    u = size / 512.0
    canvas = round(size * 1.4)  # room for the camera's rotation, zoom-out and shift

    # camera: panel coordinates -> image coordinates (small rotation, zoom, shift)
    theta = math.radians(rng.uniform(-4.0, 4.0))
    zoom = rng.uniform(0.9, 1.15)
    a = zoom * np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    shift = size / 2 + rng.uniform(-0.06, 0.06, 2) * size
    camera = np.hstack([a, (shift - a @ np.array([canvas / 2, canvas / 2]))[:, None]])

    def to_image(points: np.ndarray) -> np.ndarray:
        return points @ camera[:, :2].T + camera[:, 2]

    rows = _layout(rng, canvas, u)

    # choose the fuse neutrals among standard slots whose centre the camera sees
    candidates: list[tuple[int, int]] = []
    candidate_centres: list[np.ndarray] = []
    for ri, row in enumerate(rows):
        for si, slot in enumerate(row.slots):
            if slot.kind == "standard":
                centre = to_image(np.array([[slot.x0 + slot.width / 2, row.rail_y]]))[0]
                if np.all(centre > -0.01 * size) and np.all(centre < 1.01 * size):
                    candidates.append((ri, si))
                    candidate_centres.append(centre)
    n_targets = min(len(candidates), int(rng.integers(2, 9)))
    # two of them well inside the picture, so that (almost) every image has whole fuse neutrals;
    # the others anywhere, edges included
    inner = [i for i, c in enumerate(candidate_centres) if np.all(c > 0.1 * size) and np.all(c < 0.9 * size)]
    first = [int(i) for i in rng.permutation(inner)[:2]]
    rest = [i for i in range(len(candidates)) if i not in first]
    picked = first + [int(i) for i in rng.permutation(rest)[: n_targets - len(first)]]
    chosen = [candidates[i] for i in sorted(picked)]

    targets: list[_Target] = []
    target_slots: set[tuple[int, int]] = set()
    kept_polys: list[np.ndarray] = []
    for ri, si in chosen:
        slot, row = rows[ri].slots[si], rows[ri]
        local = _target_local(rng, slot.width, u)
        spin = math.radians(rng.uniform(-2.5, 2.5))
        rot = np.array([[math.cos(spin), -math.sin(spin)], [math.sin(spin), math.cos(spin)]])
        centre = np.array([slot.x0 + slot.width / 2, row.rail_y + rng.uniform(-4, 4) * u])

        def place(points: np.ndarray, rot: np.ndarray = rot, centre: np.ndarray = centre) -> np.ndarray:
            return points @ rot.T + centre

        footprint = place(local["outline"])
        outline = np.round(to_image(footprint), 2)
        clipped = _clip_polygon(outline, size)
        # a sliver at the border is not a labelled object (nor painted): keep a third or more
        if len(clipped) < 3 or _polygon_area(clipped) < max(0.35 * _polygon_area(outline), 40 * u * u):
            continue
        target_slots.add((ri, si))
        kept_polys.append(clipped)
        targets.append(
            _Target(
                outline=outline,
                bar=to_image(place(local["bar"])),
                top_edge=(
                    to_image(place(local["top_edge"][0][None]))[0],
                    to_image(place(local["top_edge"][1][None]))[0],
                ),
                screws=[to_image(place(s[None]))[0] for s in local["screws"]],
                screw_r=min(3.2 * u, local["bar_h"] * 0.32) * zoom,
                body=_jitter(rng, _BODY_COLOURS[rng.integers(len(_BODY_COLOURS))], 6),
                brass=_jitter(rng, _BRASS_COLOURS[rng.integers(len(_BRASS_COLOURS))], 10),
                panel_footprint=footprint,
            )
        )

    # the panel region the camera sees (image corners mapped back), with a margin for blur
    inverse = cv2.invertAffineTransform(camera)
    corners = np.array([[0, 0], [size, 0], [size, size], [0, size]], dtype=np.float64)
    seen = corners @ inverse[:, :2].T + inverse[:, 2]
    view = np.concatenate([seen.min(axis=0) - 8 * u, seen.max(axis=0) + 8 * u])
    panel = _paint_panel(rng, canvas, u, rows, target_slots, [t.panel_footprint for t in targets], view)
    img = cv2.warpAffine(panel, camera, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)

    full_masks = [_rasterise([np.round(p, 2).ravel().tolist()], size) for p in kept_polys]
    # each object's window (checks on windows, not on whole images: much faster)
    windows = []
    for p in kept_polys:
        lo, hi = np.floor(p.min(axis=0)).astype(int), np.ceil(p.max(axis=0)).astype(int) + 1
        windows.append((slice(max(0, lo[1]), hi[1]), slice(max(0, lo[0]), hi[0])))
    full_areas = [int(m.sum()) for m in full_masks]

    # module terminals in view (top and bottom screws), where cables go
    up = a @ np.array([0.0, -1.0])  # the panel's "up" in the picture
    terminals: list[tuple[np.ndarray, np.ndarray]] = []
    for ri, row in enumerate(rows):
        for si, slot in enumerate(row.slots):
            if slot.kind == "gap" or (ri, si) in target_slots:
                continue
            for sign in (-1.0, 1.0):
                p = to_image(
                    np.array([[slot.x0 + slot.width / 2, row.rail_y + sign * (row.module_h / 2 - 8 * u)]])
                )[0]
                if np.all(p > 0) and np.all(p < size):
                    terminals.append((p, -sign * up / zoom))

    # cables: accepted only if no fuse neutral loses more than 40 % of itself behind all of them
    cables: list[tuple[np.ndarray, int, RGB, np.ndarray]] = []
    hidden = np.zeros((size, size), bool)
    for _ in range(int(rng.integers(1, 6))):
        pts = _cable_points(rng, size, terminals)
        thick = max(2, round(rng.uniform(4, 8) * u))
        cmask = np.zeros((size, size), np.uint8)
        # the mask is drawn wider than the cable, so the anti-aliased rim is inside it
        cv2.polylines(cmask, [_fixed(pts)], False, 1, thick + 2, cv2.LINE_8, _SHIFT)
        cbool = cmask.astype(bool)
        if any(
            np.count_nonzero(m[w] & (cbool[w] | hidden[w])) > 0.4 * area
            for m, w, area in zip(full_masks, windows, full_areas, strict=True)
        ):
            continue
        hidden |= cbool
        cables.append((pts, thick, _CABLE_COLOURS[rng.integers(len(_CABLE_COLOURS))], cbool))

    objects: list[dict[str, Any]] = []
    painted = np.zeros((size, size), bool)
    for target, clipped, full, win in zip(targets, kept_polys, full_masks, windows, strict=True):
        truncated = len(clipped) != len(target.outline) or not np.allclose(clipped, target.outline)
        occluded = bool((full[win] & hidden[win]).any())
        if occluded:
            polygons = _visible_polygons(full & ~hidden, u)
            if not polygons:
                continue
        else:
            polygons = [np.round(clipped, 2).ravel().tolist()]
        mask = _rasterise(polygons, size)
        if not mask.any():
            continue
        _paint_target(img, target, mask, u)
        painted |= mask
        xs = np.concatenate([np.asarray(p[0::2]) for p in polygons])
        ys = np.concatenate([np.asarray(p[1::2]) for p in polygons])
        bbox = [round(float(v), 2) for v in (xs.min(), ys.min(), xs.max() - xs.min(), ys.max() - ys.min())]
        objects.append(
            {
                "segmentation": polygons,
                "bbox": bbox,
                "mask": mask,
                "area": int(mask.sum()),
                "truncated": bool(truncated),
                "occluded": occluded,
            }
        )

    for pts, thick, colour, cbool in cables:
        layer = img.copy()
        cv2.polylines(layer, [_fixed(pts)], False, _shade(colour, 0.75), thick, cv2.LINE_AA, _SHIFT)
        cv2.polylines(layer, [_fixed(pts)], False, colour, max(1, thick - 2), cv2.LINE_AA, _SHIFT)
        if colour == (60, 150, 60):  # earth: green with yellow stripes
            for k in range(0, len(pts) - 4, 8):
                cv2.polylines(
                    layer,
                    [_fixed(pts[k : k + 4])],
                    False,
                    (214, 196, 40),
                    max(1, thick - 2),
                    cv2.LINE_AA,
                    _SHIFT,
                )
        hl = pts - np.array([0.0, thick * 0.2])
        cv2.polylines(
            layer, [_fixed(hl)], False, _shade(colour, 1.5), max(1, thick // 4), cv2.LINE_AA, _SHIFT
        )
        where = cbool & ~painted
        img[where] = layer[where]

    return (_lighting(rng, img, u) if camera_effects else img), objects


def _visible_polygons(visible: np.ndarray, u: float) -> list[list[float]]:
    """Outlines of the visible parts of a partly hidden object, as COCO polygons.

    Traced on the mask enlarged 2x: the contour through the centres of the enlarged boundary
    pixels, mapped back with ``(c + 0.5) / 2``, runs along the original pixels' edges, so
    pycocotools rasterises it back to exactly ``visible`` (a contour traced at 1x runs through
    pixel centres and loses about half a pixel all round).
    """
    ys, xs = np.nonzero(visible)
    if len(ys) == 0:
        return []
    y0, x0 = int(ys.min()), int(xs.min())
    crop = visible[y0 : int(ys.max()) + 1, x0 : int(xs.max()) + 1].astype(np.uint8)
    up = np.pad(np.kron(crop, np.ones((2, 2), np.uint8)), 1)
    contours, _ = cv2.findContours(up, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    polygons = []
    for contour in contours:
        if cv2.contourArea(contour) < 4 * 12 * u * u:
            continue  # a crumb left between two cables is not worth a polygon
        pts = (contour.reshape(-1, 2).astype(np.float64) - 1 + 0.5) / 2 + [x0, y0]
        if len(pts) >= 3:
            polygons.append(np.round(pts, 2).ravel().tolist())
    return polygons


def split_counts(n_images: int, fractions: Sequence[float] = (0.7, 0.2, 0.1)) -> tuple[int, int, int]:
    """How many images go to train, valid and test (each at least one).

    Parameters
    ----------
    n_images:
        Total number of images, at least 3.
    fractions:
        Train, valid and test fractions, non-negative, summing to 1.

    Returns
    -------
    tuple[int, int, int]
        Image counts; 35 images at 0.7/0.2/0.1 give 24/7/4 like the customer's export.
    """
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
        raise SynthError(
            f"splits: need three non-negative fractions (train, valid, test) summing to 1, got {tuple(fractions)}"
        )
    if n_images < 3:
        raise SynthError(f"images: need at least 3 (one per split), got {n_images}")
    valid = max(1, round(n_images * fractions[1]))
    test = max(1, round(n_images * fractions[2]))
    train = n_images - valid - test
    if train < 1:
        raise SynthError(f"images: {n_images} images leave none for train with splits {tuple(fractions)}")
    return train, valid, test


def _original_name(index: int) -> str:
    # one name like a phone's "copy" of a photo: spaces and parentheses, which Roboflow keeps
    return "fuse box (2).jpg" if index == 1 else f"IMG_{index + 1:04d}.jpg"


def roboflow_file_name(original: str, seed: int, index: int) -> str:
    """Roboflow's renaming: ``IMG_0001.jpg`` -> ``IMG_0001_jpg.rf.<32 hex>.jpg``."""
    stem, dot, ext = original.rpartition(".")
    digest = hashlib.md5(f"fusereview-synth:{seed}:{index}".encode()).hexdigest()
    return f"{stem}_{ext}.rf.{digest}.{ext}" if dot else f"{original}.rf.{digest}"


def _coco_header() -> dict[str, Any]:
    return {
        "info": {
            "year": "2024",
            "version": "1",
            "description": "Exported from roboflow.com (synthetic: fusereview synth)",
            "contributor": "",
            "url": "https://public.roboflow.com/object-detection/undefined",
            "date_created": EXPORT_DATE,
        },
        "licenses": [{"id": 1, "url": "https://creativecommons.org/licenses/by/4.0/", "name": "CC BY 4.0"}],
        "categories": [
            {"id": 0, "name": PLACEHOLDER_NAME, "supercategory": "none"},
            {"id": 1, "name": CLASS_NAME, "supercategory": PLACEHOLDER_NAME},
        ],
        "images": [],
        "annotations": [],
    }


def _roboflow_annotation(
    ann_id: int, image_id: int, obj: dict[str, Any], repeat_close: bool
) -> dict[str, Any]:
    """Roboflow's way of writing an object: integer x/y, bbox area as ``area``."""
    x, y, w, h = obj["bbox"]
    bx, by = math.floor(x), math.floor(y)
    bw, bh = round(w, 3), round(h, 3)
    segmentation = [list(p) for p in obj["segmentation"]]
    if repeat_close:
        segmentation = [p + p[:2] for p in segmentation]
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": 1,
        "bbox": [bx, by, bw, bh],
        "area": round(bw * bh, 3),
        "segmentation": segmentation,
        "iscrowd": 0,
    }


def _readme(images: int, size: int, seed: int, counts: Sequence[int]) -> str:
    return (
        "Synthetic fuse-box dataset (fusereview synth)\n"
        f"images: {images} ({size}x{size}), seed: {seed}, "
        f"train/valid/test: {counts[0]}/{counts[1]}/{counts[2]}\n"
        f"class: {CLASS_NAME!r}; layout and quirks of a Roboflow COCO segmentation export.\n"
        "Regenerate with: fusereview synth OUT_DIR "
        f"--images {images} --size {size} --seed {seed}\n"
    )


def generate_dataset(
    out_dir: str | Path,
    *,
    images: int = 35,
    size: int = 512,
    seed: int = 0,
    splits: Sequence[float] = (0.7, 0.2, 0.1),
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write a synthetic fuse-box dataset in the Roboflow COCO layout.

    ``out_dir/{train,valid,test}/`` each hold ``_annotations.coco.json`` and their JPEG images;
    ``README.dataset.txt`` and ``README.roboflow.txt`` sit at the top, as in a Roboflow download.
    The whole folder is written under a temporary name and renamed into place, so a failure or an
    interruption leaves nothing half-written.

    Parameters
    ----------
    out_dir:
        The folder to create. It must not exist, or be empty.
    images:
        Number of images in all splits together (at least 3).
    size:
        Image width and height in pixels (64 to 4096).
    seed:
        Random seed; the same arguments give byte-identical files.
    splits:
        Train, valid and test fractions.
    progress:
        Called as ``progress(done, total)`` after each image.

    Returns
    -------
    Path
        ``out_dir``.

    Raises
    ------
    SynthError
        Bad settings, or ``out_dir`` exists and is not an empty folder. Nothing is written then.
    """
    out = Path(out_dir)
    if not 64 <= int(size) <= 4096:
        raise SynthError(f"size: must be between 64 and 4096 pixels, got {size}")
    if seed < 0:
        raise SynthError(f"seed: must be zero or positive, got {seed}")
    counts = split_counts(images, splits)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SynthError(f"{out}: already exists and is not an empty folder; choose a new output folder")
    parent = out.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = make_temp_dir(parent, prefix=f".{out.name}.")
    except OSError as exc:
        raise SynthError(f"{out}: cannot create the output folder ({exc.strerror or exc})") from exc

    try:
        _write_dataset(tmp, images=images, size=size, seed=seed, counts=counts, progress=progress)
        if out.exists():
            out.rmdir()  # empty (checked above); rename cannot replace a folder on every platform
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _write_dataset(
    root: Path, *, images: int, size: int, seed: int, counts: Sequence[int],
    progress: Callable[[int, int], None] | None,
) -> None:  # fmt: skip
    # one child generator per image: image k does not depend on how many images come before it
    children = np.random.SeedSequence(seed).spawn(images)
    quirk_rng = np.random.default_rng([seed, 1])
    index = 0
    for split, count in zip(SPLIT_NAMES, counts, strict=True):
        split_dir = root / split
        split_dir.mkdir()
        coco = _coco_header()
        for image_id in range(count):
            rgb, objects = render_image(np.random.default_rng(children[index]), size)
            original = _original_name(index)
            file_name = roboflow_file_name(original, seed, index)
            ok, jpeg = cv2.imencode(
                ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92]
            )
            if not ok:
                raise SynthError(f"{split_dir / file_name}: JPEG encoding failed")
            (split_dir / file_name).write_bytes(jpeg.tobytes())
            coco["images"].append(
                {
                    "id": image_id,
                    "license": 1,
                    "file_name": file_name,
                    "height": size,
                    "width": size,
                    "date_captured": EXPORT_DATE,
                    "extra": {"name": original},
                }
            )
            for obj in objects:
                repeat_close = bool(quirk_rng.random() < 0.3)
                coco["annotations"].append(
                    _roboflow_annotation(len(coco["annotations"]), image_id, obj, repeat_close)
                )
            index += 1
            if progress is not None:
                progress(index, images)
        _write_json(coco, split_dir / ANNOTATION_FILE)
    (root / "README.dataset.txt").write_text(_readme(images, size, seed, counts), encoding="utf-8")
    (root / "README.roboflow.txt").write_text(
        "This dataset imitates a Roboflow export (COCO Segmentation format). It was generated, not downloaded.\n",
        encoding="utf-8",
    )


def _write_json(data: dict[str, Any], path: Path) -> None:
    """Atomically (a reader never sees a half-written json), compact separators."""
    write_text_atomic(json.dumps(data, separators=(",", ":")), path)


def generate_coco_stress(
    n_images: int, n_annotations: int, out_json: str | Path, *, seed: int = 0, size: int = 512,
    vertices: int = 8,
) -> Path:  # fmt: skip
    """Write a large Roboflow-style COCO json quickly, for import benchmarks (no image files).

    Geometry is drawn with numpy in one go: each annotation is a jittered ``vertices``-gon inside
    its image, its bbox exactly the polygon's extent (x/y truncated to integers like Roboflow),
    ``area`` the bbox area; ids start at 0; the placeholder category 0 is present and unused;
    about a third of the polygons repeat their closing point.

    Parameters
    ----------
    n_images, n_annotations:
        How many images and annotations (10,000 x 100,000 takes a few seconds).
    out_json:
        The file to write (atomically; an existing file is replaced).
    seed:
        Random seed.
    size:
        Width and height recorded for every image.
    vertices:
        Points per polygon (at least 3).

    Returns
    -------
    Path
        ``out_json``.
    """
    if n_images < 1 or n_annotations < 0:
        raise SynthError(
            f"n_images: need at least one image and zero or more annotations, got {n_images}, {n_annotations}"
        )
    if vertices < 3:
        raise SynthError(f"vertices: a polygon needs at least 3 points, got {vertices}")
    out = Path(out_json)
    rng = np.random.default_rng(seed)
    coco = _coco_header()
    coco["images"] = [
        {
            "id": i,
            "license": 1,
            "file_name": roboflow_file_name(f"IMG_{i + 1:05d}.jpg", seed, i),
            "height": size,
            "width": size,
            "date_captured": EXPORT_DATE,
            "extra": {"name": f"IMG_{i + 1:05d}.jpg"},
        }
        for i in range(n_images)
    ]
    image_ids = np.sort(rng.integers(0, n_images, n_annotations))
    radius = rng.uniform(0.02, 0.08, (n_annotations, 1)) * size
    centre = rng.uniform(0.0, 1.0, (n_annotations, 2)) * (size - 2 * radius) + radius
    angles = np.linspace(0, 2 * np.pi, vertices, endpoint=False)[None, :] + rng.uniform(
        0, 2 * np.pi, (n_annotations, 1)
    )
    r = radius * rng.uniform(0.7, 1.0, (n_annotations, vertices))
    xs = np.round(centre[:, :1] + r * np.cos(angles), 2)
    ys = np.round(centre[:, 1:] + r * np.sin(angles), 2)
    flat = np.stack([xs, ys], axis=2).reshape(n_annotations, 2 * vertices)
    x0, y0 = xs.min(axis=1), ys.min(axis=1)
    w, h = np.round(xs.max(axis=1) - x0, 3), np.round(ys.max(axis=1) - y0, 3)
    area = np.round(w * h, 3)
    close = rng.random(n_annotations) < 0.3
    polys = flat.tolist()
    boxes = np.stack([np.floor(x0), np.floor(y0), w, h], axis=1).tolist()
    coco["annotations"] = [
        {
            "id": i,
            "image_id": img,
            "category_id": 1,
            "bbox": [int(b[0]), int(b[1]), b[2], b[3]],
            "area": a,
            "segmentation": [p + p[:2] if c else p],
            "iscrowd": 0,
        }
        for i, (img, b, a, p, c) in enumerate(
            zip(image_ids.tolist(), boxes, area.tolist(), polys, close.tolist(), strict=True)
        )
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    _write_json(coco, out)
    return out
