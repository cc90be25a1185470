"""Read COCO datasets (one json, or a Roboflow export folder), check them, and write COCO json safely.

Layouts read by :func:`load_dataset`
------------------------------------
- **roboflow**: a folder with ``train/``, ``valid/`` (or ``val/``) and ``test/``, each holding
  ``_annotations.coco.json`` and its images.
- **single**: one COCO json file (or a folder holding exactly one json), images beside it or in an
  ``images/`` folder next to it.

Quirks of real exports are handled and reported (``CocoSplit.quirks``), not rejected: a placeholder
category id 0 that no annotation uses, ids from 0, ``area`` equal to the bbox area, integer boxes a
little past the image edge, bbox-only annotations, polygons with a repeated closing point, degenerate
polygons, compressed and uncompressed RLE, odd file names, unknown fields (all kept).

Real errors (duplicate ids, dangling references, NaN, malformed segmentations, paths escaping the
dataset, ...) are collected *all* and raised together as one :class:`DatasetError`, each naming the
file and the JSON path of the field. Reading never writes anything.

Speed: loading must stay cheap for 10,000 images with 100,000 polygons, so checks run in one plain
Python pass plus numpy on the concatenated numbers; polygons are rasterised only where an RLE is
really needed (never in :func:`load_dataset`).
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import math
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from fusereview.core import geometry
from fusereview.core.errors import DatasetError, FusereviewError, Problem

__all__ = [
    "ROBOFLOW_JSON",
    "CocoSplit",
    "CocoWriteError",
    "Dataset",
    "check_dataset",
    "load_dataset",
    "resolve_image_path",
    "validate_dataset",
    "write_json_atomic",
]

#: The annotation file name of every split folder of a Roboflow COCO export.
ROBOFLOW_JSON = "_annotations.coco.json"

# Split folder -> split name. ``val/`` (other exporters) is read as "valid" (Roboflow's name).
_SPLIT_FOLDERS: tuple[tuple[str, str], ...] = (
    ("train", "train"),
    ("valid", "valid"),
    ("val", "valid"),
    ("test", "test"),
)

# How far (pixels, or this fraction of the image side if larger) a box may poke past the image edge
# and still be read as rounding (Roboflow writes integer x/y/w/h) and clipped, instead of an error.
_EDGE_TOLERANCE_PX = 2.0
_EDGE_TOLERANCE_FRACTION = 0.01

# Stop listing problems of one file after this many: a broken 100,000-annotation file would
# otherwise print 100,000 lines. The last line says how many more there were.
_MAX_PROBLEMS_PER_FILE = 1000

_MISSING = object()

# Set by _read_json on a file holding NaN or Infinity; popped again by _check_coco.
_NON_FINITE_KEY = "\x00fusereview-non-finite"

# Coordinates beyond this are not pixels of any image we accept (50 megapixels at most).
_MAX_COORD = 1e7


class CocoWriteError(FusereviewError):
    """A COCO file could not be written (or would not load back); the target is left untouched."""


@dataclass
class CocoSplit:
    """One COCO json of a dataset and where its images are.

    Attributes
    ----------
    name:
        ``"train"``, ``"valid"``, ``"test"``, or the json's stem for a single file.
    json_path:
        The annotation file.
    image_dir:
        The folder that ``images[].file_name`` is relative to.
    data:
        The parsed json, every unknown field kept; quirks normalised (see the module doc).
    quirks:
        Quirks found and handled (shown by ``fusereview info``); not errors.
    root:
        The dataset folder no image path may leave.
    """

    name: str
    json_path: Path
    image_dir: Path
    data: dict[str, Any]
    quirks: list[Problem] = field(default_factory=list)
    root: Path | None = None

    @property
    def images(self) -> list[dict[str, Any]]:
        """The ``images`` list of the json."""
        return self.data["images"]

    @property
    def annotations(self) -> list[dict[str, Any]]:
        """The ``annotations`` list of the json."""
        return self.data["annotations"]

    @property
    def categories(self) -> list[dict[str, Any]]:
        """Every category of the json, the placeholder included."""
        return self.data["categories"]

    def image_path(self, image: dict[str, Any]) -> Path:
        """The file of one entry of ``images`` (see :func:`resolve_image_path`)."""
        return resolve_image_path(self, image["file_name"])


@dataclass
class Dataset:
    """A COCO dataset: one or more splits sharing the same classes.

    Attributes
    ----------
    root:
        The folder the user opened (for a single json: the folder holding it).
    layout:
        ``"roboflow"`` or ``"single"``.
    splits:
        Split name -> :class:`CocoSplit`, in the order train, valid, test.
    """

    root: Path
    layout: str
    splits: dict[str, CocoSplit]

    def all_categories(self) -> list[dict[str, Any]]:
        """Every category (placeholders included), by id, first definition wins across splits."""
        seen: dict[int, dict[str, Any]] = {}
        for split in self.splits.values():
            for cat in split.categories:
                seen.setdefault(cat["id"], cat)
        return [seen[k] for k in sorted(seen)]

    def placeholder_category_ids(self) -> set[int]:
        """Ids of placeholder categories: id 0, supercategory ``"none"``, used by no annotation.

        Roboflow writes the project name as such a category; it is hidden from the user and kept
        on export so that the file stays what the user's other tools expect.
        """
        used: set[int] = set()
        for split in self.splits.values():
            used.update(a["category_id"] for a in split.annotations)
        return {c["id"] for c in self.all_categories() if _looks_like_placeholder(c) and c["id"] not in used}

    def real_categories(self) -> list[dict[str, Any]]:
        """The classes to show the user: every category but the unused placeholder."""
        hidden = self.placeholder_category_ids()
        return [c for c in self.all_categories() if c["id"] not in hidden]

    @property
    def quirks(self) -> list[Problem]:
        """Quirks of every split."""
        return [q for s in self.splits.values() for q in s.quirks]


def _looks_like_placeholder(cat: dict[str, Any]) -> bool:
    return cat.get("id") == 0 and str(cat.get("supercategory", "")).lower() == "none"


# --------------------------------------------------------------------------------------- discovery


def _split_name_for_file(json_path: Path) -> str:
    if json_path.name == ROBOFLOW_JSON:
        folder = json_path.parent.name
        return dict(_SPLIT_FOLDERS).get(folder, folder or "dataset")
    return json_path.name[: -len(".json")] if json_path.name.lower().endswith(".json") else json_path.stem


def _discover(path: Path) -> tuple[Path, str, list[tuple[str, Path]], list[Problem]]:
    """Find the json files of a dataset: (root, layout, [(split name, json path)], quirks)."""
    if not path.exists():
        raise DatasetError([Problem(str(path), "", "no such file or folder")])
    if path.is_file():
        return path.parent, "single", [(_split_name_for_file(path), path)], []
    quirks: list[Problem] = []
    found: list[tuple[str, Path]] = []
    problems: list[Problem] = []
    for folder, name in _SPLIT_FOLDERS:
        sub = path / folder
        if not sub.is_dir():
            continue
        j = sub / ROBOFLOW_JSON
        if not j.is_file():
            quirks.append(Problem(str(sub), "", f"split folder has no {ROBOFLOW_JSON}; skipped"))
            continue
        if any(n == name for n, _ in found):
            problems.append(
                Problem(str(j), "", f"both valid/ and val/ hold a '{name}' split; keep only one of them")
            )
            continue
        found.append((name, j))
    if problems:
        raise DatasetError(problems)
    if found:
        return path, "roboflow", found, quirks
    candidates = [path / ROBOFLOW_JSON] if (path / ROBOFLOW_JSON).is_file() else sorted(path.glob("*.json"))
    if len(candidates) == 1:
        return path, "single", [(_split_name_for_file(candidates[0]), candidates[0])], quirks
    if not candidates:
        raise DatasetError(
            [
                Problem(
                    str(path),
                    "",
                    f"no COCO annotations found (expected train/ valid/ test/ folders with {ROBOFLOW_JSON}, "
                    "or one .json file)",
                )
            ]
        )
    names = ", ".join(c.name for c in candidates[:5])
    raise DatasetError([Problem(str(path), "", f"several json files ({names}); name the one to open")])


def _pick_image_dir(json_path: Path, data: dict[str, Any]) -> Path:
    """The folder beside the json (Roboflow), or an ``images/`` folder next to it."""
    here = json_path.parent
    alt = here / "images"
    if not alt.is_dir():
        return here
    names = [
        im.get("file_name")
        for im in itertools.islice(data.get("images") or [], 5)
        if isinstance(im, dict)
        and isinstance(im.get("file_name"), str)
        and not _unsafe_file_name(im["file_name"])
    ]
    if names and not any((here / n).is_file() for n in names) and any((alt / n).is_file() for n in names):
        return alt
    return here


# ---------------------------------------------------------------------------------------- reading


def _read_json(json_path: Path) -> tuple[dict[str, Any] | None, list[Problem]]:
    label = str(json_path)
    try:
        raw = json_path.read_bytes()
    except OSError as exc:
        return None, [Problem(label, "", f"cannot read file: {exc.strerror or exc}")]
    if not raw.strip():
        return None, [Problem(label, "", "file is empty")]
    try:
        constants: list[str] = []

        def parse_constant(name: str) -> float:
            # NaN / Infinity are not JSON (Python's json accepts them): remember, report by path.
            constants.append(name)
            return float(name)

        data = json.loads(raw, parse_constant=parse_constant)
    except json.JSONDecodeError as exc:
        hint = " (the file looks truncated)" if exc.pos >= len(raw.rstrip()) - 1 else ""
        return None, [
            Problem(label, "", f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}{hint}")
        ]
    except UnicodeDecodeError:
        return None, [Problem(label, "", "not valid JSON: the file is not UTF-8 text")]
    except RecursionError:
        return None, [Problem(label, "", "not valid JSON: nested too deeply")]
    if isinstance(data, dict) and constants:
        data[_NON_FINITE_KEY] = True  # _check_coco reports where they are, then removes the mark
    if not isinstance(data, dict):
        return None, [
            Problem(
                label,
                "",
                f"top level is a JSON {type(data).__name__}, expected an object with images, annotations, categories",
            )
        ]
    return data, []


# Ids are stored in SQLite and numpy arrays: they must fit in a signed 64-bit integer.
_ID_LIMIT = 2**63


def _is_int(v: Any) -> bool:
    return type(v) is int and -_ID_LIMIT <= v < _ID_LIMIT


def _as_int_size(v: Any) -> int | None:
    """A positive integer width/height; integral floats (``512.0``) are accepted."""
    if type(v) is int:
        return v if v > 0 else None
    if type(v) is float and v.is_integer() and v > 0:
        return int(v)
    return None


def _unsafe_file_name(name: str) -> str | None:
    """Why a ``file_name`` may not be used (escapes the dataset folder), or None when it is fine."""
    # Fast path for the usual plain name (this runs for every image of a 10k-image file).
    if ".." not in name and "\x00" not in name and ":" not in name and not name.startswith(("/", "\\")):
        return None
    if "\x00" in name:
        return "file name contains a NUL character"
    for pure in (PurePosixPath(name), PureWindowsPath(name)):
        if pure.is_absolute() or pure.drive or pure.root:
            return "file name is an absolute path; it must be relative to the split folder"
        if ".." in pure.parts:
            return "file name goes up with '..' and could leave the dataset folder; refused"
    return None


class _Report:
    """Problems and quirks of one file, with the per-file cap on problems."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.problems: list[Problem] = []
        self.quirks: list[Problem] = []
        self.dropped = 0

    def problem(self, where: str, message: str) -> None:
        if len(self.problems) < _MAX_PROBLEMS_PER_FILE:
            self.problems.append(Problem(self.label, where, message))
        else:
            self.dropped += 1

    def quirk(self, where: str, message: str) -> None:
        self.quirks.append(Problem(self.label, where, message))

    def finish(self) -> None:
        if self.dropped:
            self.problems.append(Problem(self.label, "", f"... and {self.dropped} more problems not listed"))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _check_categories(data: dict[str, Any], rep: _Report) -> set[int]:
    cats = data.get("categories", _MISSING)
    ids: set[int] = set()
    if cats is _MISSING:
        rep.problem("categories", "missing: a COCO file lists its classes under 'categories'")
        return ids
    if not isinstance(cats, list):
        rep.problem("categories", f"must be a list, got {type(cats).__name__}")
        return ids
    for i, c in enumerate(cats):
        where = f"categories[{i}]"
        if not isinstance(c, dict):
            rep.problem(where, f"must be an object, got {type(c).__name__}")
            continue
        cid = c.get("id")
        if not _is_int(cid):
            rep.problem(f"{where}.id", f"must be an integer, got {cid!r}")
        elif cid in ids:
            rep.problem(f"{where}.id", f"duplicate category id {cid}")
        else:
            ids.add(cid)
        name = c.get("name")
        if not isinstance(name, str) or not name.strip():
            rep.problem(f"{where}.name", f"must be a non-empty string, got {name!r}")
    return ids


def _check_images(data: dict[str, Any], rep: _Report) -> dict[int, tuple[int, int]]:
    imgs = data.get("images", _MISSING)
    sizes: dict[int, tuple[int, int]] = {}
    if imgs is _MISSING:
        rep.problem("images", "missing: a COCO file lists its pictures under 'images'")
        return sizes
    if not isinstance(imgs, list):
        rep.problem("images", f"must be a list, got {type(imgs).__name__}")
        return sizes
    seen: set[int] = set()
    names: dict[str, int] = {}
    n_extra = 0
    for i, im in enumerate(imgs):
        where = f"images[{i}]"
        if not isinstance(im, dict):
            rep.problem(where, f"must be an object, got {type(im).__name__}")
            continue
        iid = im.get("id")
        ok = True
        if not _is_int(iid):
            rep.problem(f"{where}.id", f"must be an integer, got {iid!r}")
            ok = False
        elif iid in seen:
            rep.problem(f"{where}.id", f"duplicate image id {iid}")
            ok = False
        else:
            seen.add(iid)
        name = im.get("file_name")
        if not isinstance(name, str) or not name.strip():
            rep.problem(f"{where}.file_name", f"must be a non-empty string, got {name!r}")
        else:
            why = _unsafe_file_name(name)
            if why:
                rep.problem(f"{where}.file_name", f"{why}: {name!r}")
            elif name in names:
                rep.problem(f"{where}.file_name", f"{name!r} is listed twice (also images[{names[name]}])")
            else:
                names[name] = i
        w, h = _as_int_size(im.get("width")), _as_int_size(im.get("height"))
        if w is None:
            rep.problem(f"{where}.width", f"must be a positive integer, got {im.get('width')!r}")
        if h is None:
            rep.problem(f"{where}.height", f"must be a positive integer, got {im.get('height')!r}")
        if w is not None and h is not None:
            if type(im["width"]) is float or type(im["height"]) is float:
                im["width"], im["height"] = w, h
            if ok:
                sizes[iid] = (w, h)
        if "extra" in im:
            n_extra += 1
    if n_extra:
        rep.quirk("images", f"'extra' field on {_plural(n_extra, 'image')} (kept as is)")
    if seen and min(seen) == 0:
        rep.quirk("images", "image ids start at 0 (kept; remapped wherever pycocotools evaluates)")
    return sizes


def _number_rows_ok(rows: list[Any]) -> np.ndarray:
    """Per row (a list), whether every value is a real int/float (not bool, str, None, list)."""
    return np.array([all(type(v) is int or type(v) is float for v in r) for r in rows], dtype=bool)


def _check_annotations(
    data: dict[str, Any], rep: _Report, sizes: dict[int, tuple[int, int]], cat_ids: set[int]
) -> None:
    anns = data.get("annotations", _MISSING)
    if anns is _MISSING:
        rep.quirk("annotations", "no 'annotations' list: read as an unlabelled split")
        data["annotations"] = []
        return
    if not isinstance(anns, list):
        rep.problem("annotations", f"must be a list, got {type(anns).__name__}")
        return
    check_refs = "images" in data and isinstance(data["images"], list)
    check_cats = isinstance(data.get("categories"), list)

    seen: set[int] = set()
    box_rows: list[int] = []  # annotation index of each collected bbox
    box_vals: list[Any] = []
    no_box: list[int] = []
    poly_ann: list[int] = []  # annotation index of each collected polygon
    polys: list[list[Any]] = []
    rle_rows: list[int] = []
    degenerate: list[int] = []
    closing: list[int] = []
    bad_segs: set[int] = set()  # malformed polygon lists (reported), never cleaned
    bbox_only = 0
    crowd_missing = 0
    area_missing: list[int] = []
    img_size: list[tuple[int, int] | None] = [None] * len(anns)

    for i, a in enumerate(anns):
        if type(a) is not dict:
            rep.problem(f"annotations[{i}]", f"must be an object, got {type(a).__name__}")
            continue
        aid = a.get("id")
        if type(aid) is not int or not -_ID_LIMIT <= aid < _ID_LIMIT:
            rep.problem(f"annotations[{i}].id", f"must be an integer, got {aid!r}")
        elif aid in seen:
            rep.problem(f"annotations[{i}].id", f"duplicate annotation id {aid}")
        else:
            seen.add(aid)
        iid = a.get("image_id")
        size = sizes.get(iid) if type(iid) is int else None
        if size is None and check_refs:
            rep.problem(f"annotations[{i}].image_id", f"no image with id {iid!r}")
        img_size[i] = size
        cid = a.get("category_id")
        if check_cats and (type(cid) is not int or cid not in cat_ids):
            rep.problem(f"annotations[{i}].category_id", f"no category with id {cid!r}")
        b = a.get("bbox", _MISSING)
        if type(b) is list and len(b) == 4:
            box_rows.append(i)
            box_vals.append(b)
        elif b is _MISSING or b is None:
            no_box.append(i)
        else:
            rep.problem(f"annotations[{i}].bbox", f"must be [x, y, width, height], got {b!r}"[:200])
        seg = a.get("segmentation", _MISSING)
        t = type(seg)
        if t is list:
            n_good = 0
            malformed = False
            for j, poly in enumerate(seg):
                if type(poly) is not list:
                    rep.problem(
                        f"annotations[{i}].segmentation[{j}]",
                        f"a polygon must be a list of coordinates, got {type(poly).__name__}",
                    )
                    malformed = True
                    continue
                npoly = len(poly)
                if npoly % 2:
                    rep.problem(
                        f"annotations[{i}].segmentation[{j}]",
                        f"polygon has an odd number of coordinates ({npoly}); expected x, y pairs",
                    )
                    malformed = True
                elif npoly < 6:
                    degenerate.append(i)
                else:
                    n_good += 1
                    poly_ann.append(i)
                    polys.append(poly)
                    if npoly >= 8 and poly[0] == poly[-2] and poly[1] == poly[-1]:
                        closing.append(i)
            if malformed:
                bad_segs.add(i)
            elif n_good == 0:
                bbox_only += 1
        elif t is dict:
            rle_rows.append(i)
        elif seg is _MISSING or seg is None:
            bbox_only += 1
        else:
            rep.problem(
                f"annotations[{i}].segmentation",
                f"must be a list of polygons or an RLE object, got {t.__name__}",
            )
        crowd = a.get("iscrowd", _MISSING)
        if crowd is _MISSING:
            crowd_missing += 1
            a["iscrowd"] = 0
        elif crowd not in (0, 1) or type(crowd) is bool:
            rep.problem(f"annotations[{i}].iscrowd", f"must be 0 or 1, got {crowd!r}")
        area = a.get("area", _MISSING)
        if area is _MISSING or area is None:
            area_missing.append(i)
        elif type(area) not in (int, float) or not math.isfinite(area) or area < 0:
            rep.problem(f"annotations[{i}].area", f"must be a non-negative number, got {area!r}")

    n = len(anns)
    # ---- boxes, all at once -----------------------------------------------------------------
    boxes = np.full((n, 4), np.nan)
    if box_rows:
        rows = np.asarray(box_rows)
        if set(map(type, itertools.chain.from_iterable(box_vals))) <= {int, float}:
            ok = np.ones(len(box_vals), dtype=bool)  # the common case, checked in one C-level pass
        else:
            ok = _number_rows_ok(box_vals)
        for r in rows[~ok]:
            rep.problem(f"annotations[{r}].bbox", f"must be 4 numbers, got {anns[r]['bbox']!r}"[:200])
        arr = np.array([v for v, good in zip(box_vals, ok, strict=True) if good], dtype=np.float64).reshape(
            -1, 4
        )
        rows = rows[ok]
        finite = np.isfinite(arr).all(axis=1)
        for r in rows[~finite]:
            rep.problem(
                f"annotations[{r}].bbox", f"has a value that is not a finite number: {anns[r]['bbox']!r}"
            )
        rows, arr = rows[finite], arr[finite]
        neg = (arr[:, 2] < 0) | (arr[:, 3] < 0)
        for r in rows[neg]:
            rep.problem(
                f"annotations[{r}].bbox", f"width and height must not be negative: {anns[r]['bbox']!r}"
            )
        rows, arr = rows[~neg], arr[~neg]
        boxes[rows] = arr
        _check_box_edges(anns, rep, rows, arr, img_size)
    # ---- polygons, all at once --------------------------------------------------------------
    poly_area = np.zeros(n)
    bad_coords: set[int] = set()
    if polys:
        poly_area, bad_coords = _polygon_areas(rep, poly_ann, polys, n)
    if degenerate or closing:
        _clean_segmentations(anns, sorted(set(degenerate) | set(closing)), bad_coords | bad_segs)
    if closing:
        rep.quirk(
            "annotations", f"polygons repeating their first point at the end: {len(closing)} (kept; harmless)"
        )
    if degenerate:
        rep.quirk(
            f"annotations[{degenerate[0]}].segmentation",
            f"polygons of fewer than 3 points: {len(degenerate)} (dropped)",
        )
    # ---- RLE (rare: crowd annotations): checked one by one ------------------------------------
    rle_area = np.full(n, np.nan)
    n_uncompressed = 0
    for i in rle_rows:
        seg = anns[i]["segmentation"]
        size = img_size[i]
        try:
            rle = geometry.check_rle(seg, *(size[::-1] if size else (None, None)))
        except geometry.SegmentationError as exc:
            rep.problem(f"annotations[{i}].segmentation", str(exc))
            continue
        if isinstance(seg.get("counts"), list):
            n_uncompressed += 1
            anns[i]["segmentation"] = {"size": list(rle["size"]), "counts": rle["counts"].decode("ascii")}
        elif isinstance(seg.get("counts"), bytes):
            seg["counts"] = seg["counts"].decode("ascii")
        rle_area[i] = float(mask_utils.area(rle))
    if n_uncompressed:
        rep.quirk("annotations", f"uncompressed RLE masks: {n_uncompressed} (stored compressed)")
    if bbox_only:
        rep.quirk("annotations", f"annotations without a mask (bbox only): {bbox_only}")
    if crowd_missing:
        rep.quirk("annotations", f"annotations without 'iscrowd': {crowd_missing} (set to 0)")
    _fix_missing_boxes(anns, rep, no_box, boxes)
    _fix_areas(anns, rep, boxes, poly_area, rle_area, area_missing)
    if seen and min(seen) == 0:
        rep.quirk("annotations", "annotation ids start at 0 (kept; remapped wherever pycocotools evaluates)")


def _check_box_edges(
    anns: list[Any], rep: _Report, rows: np.ndarray, arr: np.ndarray, img_size: list[tuple[int, int] | None]
) -> None:
    """Report boxes that poke a little past the image edge (rounding); flag those far outside."""
    known = np.array([img_size[r] is not None for r in rows], dtype=bool)
    if not known.any():
        return
    rows, arr = rows[known], arr[known]
    wh = np.array([img_size[r] for r in rows], dtype=np.float64)
    tol = np.maximum(_EDGE_TOLERANCE_PX, _EDGE_TOLERANCE_FRACTION * wh)
    x0, y0 = arr[:, 0], arr[:, 1]
    x1, y1 = x0 + arr[:, 2], y0 + arr[:, 3]
    far = (x0 < -tol[:, 0]) | (y0 < -tol[:, 1]) | (x1 > wh[:, 0] + tol[:, 0]) | (y1 > wh[:, 1] + tol[:, 1])
    for r, (w, h) in zip(rows[far], wh[far], strict=True):
        rep.problem(
            f"annotations[{r}].bbox",
            f"box {anns[r]['bbox']!r} goes outside the {int(w)}x{int(h)} image by more than rounding "
            "(is the image's width/height right?)",
        )
    past = ~far & ((x0 < 0) | (y0 < 0) | (x1 > wh[:, 0]) | (y1 > wh[:, 1]))
    if past.any():
        # Kept as given (an untouched annotation exports unchanged); whoever draws or trains on a
        # box clips it to the image there.
        rep.quirk(
            f"annotations[{rows[np.flatnonzero(past)[0]]}].bbox",
            f"boxes a little past the image edge: {int(past.sum())} (rounding; kept as given)",
        )


def _polygon_areas(
    rep: _Report, poly_ann: list[int], polys: list[list[Any]], n: int
) -> tuple[np.ndarray, set[int]]:
    """Shoelace area per annotation (sum over its polygons), vectorised over every polygon at once.

    Also checks that every coordinate is a finite number; returns the areas and the indices of
    annotations with bad coordinates (reported here).
    """
    bad: set[int] = set()
    lengths = np.fromiter((len(p) for p in polys), dtype=np.int64, count=len(polys))
    owner = np.asarray(poly_ann, dtype=np.int64)
    # One C-level pass for the types, one for the values: 3x faster than np.array(list) on 100k
    # polygons. The type check matters: np.fromiter would quietly parse "1.5" or True as numbers.
    if not set(map(type, itertools.chain.from_iterable(polys))) <= {int, float}:
        # Rare: some coordinate is a string / null / bool / list. Find the culprits one by one.
        ok = _number_rows_ok(polys)
        for k in np.flatnonzero(~ok):
            rep.problem(f"annotations[{owner[k]}].segmentation", "polygon coordinates must be numbers")
            bad.add(int(owner[k]))
        polys = [p for p, good in zip(polys, ok, strict=True) if good]
        lengths, owner = lengths[ok], owner[ok]
        if not polys:
            return np.zeros(n), bad
    flat = np.fromiter(itertools.chain.from_iterable(polys), dtype=np.float64, count=int(lengths.sum()))
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    # Finite and of a size an image can have (1e30 would overflow the area to inf).
    finite_per_poly = np.logical_and.reduceat(np.isfinite(flat) & (np.abs(flat) < _MAX_COORD), starts)
    if not finite_per_poly.all():
        for k in np.flatnonzero(~finite_per_poly):
            rep.problem(
                f"annotations[{owner[k]}].segmentation",
                "polygon has a coordinate that is not a finite number of sensible size",
            )
        flat = np.where(
            np.isfinite(flat) & (np.abs(flat) < _MAX_COORD), flat, 0.0
        )  # reported; keep the maths quiet
    x, y = flat[0::2], flat[1::2]
    pstarts = starts // 2
    npts = lengths // 2
    nxt = np.arange(len(x)) + 1
    nxt[pstarts + npts - 1] = pstarts  # close each ring
    cross = x * y[nxt] - x[nxt] * y
    area = np.abs(np.add.reduceat(cross, pstarts)) * 0.5
    return np.bincount(owner, weights=area, minlength=n), bad


def _clean_segmentations(anns: list[Any], rows: list[int], skip: set[int]) -> None:
    """Drop degenerate polygons (fewer than 3 points; pycocotools cannot rasterise them).

    Same rule as :func:`geometry.clean_polygons`, done on the parsed lists without converting every
    coordinate (this runs on every annotation of a Roboflow export). ``skip``: annotations whose
    coordinates are malformed, reported as problems and left alone.
    """
    for i in rows:
        if i in skip:
            continue
        seg = anns[i]["segmentation"]
        # A repeated closing point is harmless to pycocotools and is kept, so that an exported
        # annotation the reviewer never touched is byte-for-byte the input's.
        if any(len(p) < 6 for p in seg):
            anns[i]["segmentation"] = [p for p in seg if len(p) >= 6]


def _all_numbers(seg: list[list[Any]]) -> bool:
    return all(type(p) is list for p in seg) and all(
        type(v) is int or type(v) is float for p in seg for v in p
    )


def _fix_missing_boxes(anns: list[Any], rep: _Report, no_box: list[int], boxes: np.ndarray) -> None:
    fixed = 0
    for i in no_box:
        seg = anns[i].get("segmentation")
        box = None
        if type(seg) is list and seg and _all_numbers(seg):
            pts = np.array(list(itertools.chain.from_iterable(seg)), dtype=np.float64).reshape(-1, 2)
            if len(pts):
                lo, hi = pts.min(axis=0), pts.max(axis=0)
                box = [float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1])]
        elif type(seg) is dict:
            try:
                box = list(geometry.rle_bbox(seg))
            except (geometry.SegmentationError, KeyError, TypeError, ValueError):
                box = None
        if box is None:
            rep.problem(f"annotations[{i}].bbox", "missing, and there is no mask to compute it from")
            continue
        anns[i]["bbox"] = box
        boxes[i] = box
        fixed += 1
    if fixed:
        rep.quirk("annotations", f"annotations without 'bbox': {fixed} (computed from the mask)")


def _fix_areas(
    anns: list[Any],
    rep: _Report,
    boxes: np.ndarray,
    poly_area: np.ndarray,
    rle_area: np.ndarray,
    area_missing: list[int],
) -> None:
    """Replace ``area`` by the mask area where it is missing or merely the bbox area.

    COCO evaluation buckets objects by ``area`` (small/medium/large): a bbox area in its place
    moves objects to the wrong bucket. The mask area used is the exact polygon area (computed
    vectorised), or the RLE pixel count.
    """
    n = len(anns)
    mask_area = np.where(np.isnan(rle_area), poly_area, rle_area)
    has_mask = (poly_area > 0) | ~np.isnan(rle_area)
    box_area = boxes[:, 2] * boxes[:, 3]
    given = np.array(
        [
            v if (type(v) is int or type(v) is float) else np.nan
            for v in (a.get("area") if type(a) is dict else None for a in anns)
        ],
        dtype=np.float64,
    ).reshape(n)
    with np.errstate(invalid="ignore"):
        is_box_area = (
            has_mask
            & np.isfinite(box_area)
            & (np.abs(given - box_area) <= 0.5)
            & (np.abs(mask_area - given) > np.maximum(1.0, 0.02 * given))
        )
    fix_rows = np.flatnonzero(is_box_area)
    for i, v in zip(fix_rows.tolist(), np.round(mask_area[fix_rows], 2).tolist(), strict=True):
        anns[i]["area"] = v
    if is_box_area.any():
        first = int(np.flatnonzero(is_box_area)[0])
        rep.quirk(
            f"annotations[{first}].area",
            f"'area' is the bbox area, not the mask area: {int(is_box_area.sum())} annotations "
            "(replaced by the mask area)",
        )
    filled = 0
    for i in area_missing:
        if has_mask[i]:
            anns[i]["area"] = round(float(mask_area[i]), 2)
        elif np.isfinite(box_area[i]):
            anns[i]["area"] = float(box_area[i])
        else:
            continue
        filled += 1
    if filled:
        rep.quirk("annotations", f"annotations without 'area': {filled} (computed from the mask or box)")


def _check_coco(data: dict[str, Any], label: str) -> tuple[list[Problem], list[Problem]]:
    """Check and normalise one parsed COCO dict; returns (problems, quirks)."""
    rep = _Report(label)
    non_finite = bool(data.pop(_NON_FINITE_KEY, False))
    cat_ids = _check_categories(data, rep)
    sizes = _check_images(data, rep)
    _check_annotations(data, rep, sizes, cat_ids)
    if isinstance(data.get("categories"), list) and isinstance(data.get("annotations"), list):
        used = {
            a.get("category_id")
            for a in data["annotations"]
            if isinstance(a, dict) and _is_int(a.get("category_id"))
        }
        for i, c in enumerate(data["categories"]):
            if isinstance(c, dict) and _looks_like_placeholder(c) and c.get("id") not in used:
                rep.quirk(
                    f"categories[{i}]",
                    f"placeholder class {c.get('name')!r} (id 0, supercategory 'none') is used by no "
                    "annotation: hidden, kept on export",
                )
    if non_finite:
        _report_non_finite(data, rep)
    rep.finish()
    return rep.problems, rep.quirks


def _report_non_finite(data: dict[str, Any], rep: _Report) -> None:
    """Report NaN / Infinity in fields not checked above (unknown fields too: they are written back)."""
    reported = [p.where for p in rep.problems]

    def walk(node: Any, where: str) -> None:
        if isinstance(node, float) and not math.isfinite(node):
            if not any(where == r or where.startswith((r + ".", r + "[")) for r in reported):
                rep.problem(where, f"{node} is not a JSON number (NaN and Infinity are not allowed)")
        elif isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{where}.{k}" if where else str(k))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{where}[{i}]")

    walk(data, "")


def _load(path: str | os.PathLike[str]) -> tuple[Dataset | None, list[Problem], list[CocoSplit]]:
    """Read every split, collecting all problems; the Dataset is None when any split failed."""
    p = Path(path)
    root, layout, found, discover_quirks = _discover(p)
    problems: list[Problem] = []
    splits: dict[str, CocoSplit] = {}
    parsed: list[CocoSplit] = []
    for name, json_path in found:
        data, errs = _read_json(json_path)
        if data is None:
            problems.extend(errs)
            continue
        errs, quirks = _check_coco(data, str(json_path))
        split = CocoSplit(
            name=name,
            json_path=json_path,
            image_dir=_pick_image_dir(json_path, data),
            data=data,
            quirks=(discover_quirks if not parsed else []) + quirks,
            root=root,
        )
        parsed.append(split)
        problems.extend(errs)
        splits[name] = split
    problems.extend(_check_categories_agree(parsed))
    if problems:
        return None, problems, parsed
    return Dataset(root=root, layout=layout, splits=splits), [], parsed


def _check_categories_agree(splits: list[CocoSplit]) -> list[Problem]:
    """The same category id must name the same class in every split (a project has one class list)."""
    problems: list[Problem] = []
    first: dict[int, tuple[str, str]] = {}
    for split in splits:
        cats = split.data.get("categories")
        if not isinstance(cats, list):
            continue
        for i, c in enumerate(cats):
            if not isinstance(c, dict) or type(c.get("id")) is not int or not isinstance(c.get("name"), str):
                continue
            seen = first.setdefault(c["id"], (c["name"], split.name))
            if seen[0] != c["name"]:
                problems.append(
                    Problem(
                        str(split.json_path),
                        f"categories[{i}].name",
                        f"category id {c['id']} is {c['name']!r} here but {seen[0]!r} in split {seen[1]!r}",
                    )
                )
    return problems


def load_dataset(path: str | os.PathLike[str]) -> Dataset:
    """Read a COCO dataset: a Roboflow export folder, a folder with one json, or a json file.

    Parameters
    ----------
    path:
        The folder (``train/``, ``valid/`` or ``val/``, ``test/``; or a folder with one json) or
        the json file.

    Returns
    -------
    Dataset
        Every split, its parsed json (unknown fields kept, quirks normalised) and its quirks.

    Raises
    ------
    DatasetError
        Listing every problem of every split (not only the first), each as
        ``file: json-path: message``. Image files are not opened here: see :func:`validate_dataset`.
    """
    dataset, problems, _ = _load(path)
    if dataset is None:
        raise DatasetError(problems)
    return dataset


def validate_dataset(
    path: str | os.PathLike[str],
    *,
    deep: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> list[Problem]:
    """Every problem that makes a dataset unusable, the image files included.

    Parameters
    ----------
    path:
        As for :func:`load_dataset`.
    deep:
        Also decode every image (slow: several ms per image). Without it, each image file's header
        and end are checked, which catches missing, empty, corrupt, truncated and huge files.
    progress:
        Called as ``progress(done, total)`` while image files are checked.

    Returns
    -------
    list of Problem
        Empty when the dataset is usable. Quirks are not problems (see ``Dataset.quirks``).
    """
    return check_dataset(path, deep=deep, progress=progress)[1]


def check_dataset(
    path: str | os.PathLike[str],
    *,
    deep: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Dataset | None, list[Problem]]:
    """:func:`validate_dataset` that also returns the loaded dataset (read once, not twice).

    Returns
    -------
    (Dataset or None, list of Problem)
        The dataset is ``None`` when its json files have problems; with only image-file problems
        it is returned with them.
    """
    from fusereview.core import images  # here, not at the top: load_dataset never opens an image

    try:
        dataset, problems, parsed = _load(path)
    except DatasetError as exc:
        return None, exc.problems
    todo = [
        (split, i, im)
        for split in parsed
        if isinstance(split.data.get("images"), list)
        for i, im in enumerate(split.data["images"])
        if isinstance(im, dict)
        and isinstance(im.get("file_name"), str)
        and im["file_name"].strip()
        and not _unsafe_file_name(im["file_name"])  # already reported
    ]
    for k, (split, i, im) in enumerate(todo):
        if progress is not None and (k % 50 == 0):
            progress(k, len(todo))
        label = str(split.json_path)
        where = f"images[{i}].file_name"
        file = resolve_image_path(split, im["file_name"])
        try:
            header = images.check_image_file(file)
            w, h = _as_int_size(im.get("width")), _as_int_size(im.get("height"))
            if w is None or h is None:
                continue  # already reported
            if (w, h) not in ((header.width, header.height), header.display_size):
                problems.append(
                    Problem(
                        label,
                        where,
                        f"{file}: the file is {header.width}x{header.height} pixels but the json says {w}x{h}",
                    )
                )
            elif deep:
                images.load_image(file, expected_size=(w, h))
        except images.ImageDecodeError as exc:
            problems.append(Problem(label, where, f"{exc.path}: {exc.reason}"))
    if progress is not None:
        progress(len(todo), len(todo))
    return dataset, problems


def resolve_image_path(split: CocoSplit, file_name: str) -> Path:
    """The file of an image, refusing names that would leave the dataset folder.

    Parameters
    ----------
    split:
        The split the image belongs to.
    file_name:
        ``images[].file_name`` as in the json (spaces, parentheses, unicode are fine).

    Raises
    ------
    DatasetError
        When the name is absolute or goes up with ``..`` (``../../x.jpg`` must never be read).
    """
    label = str(split.json_path)
    if not isinstance(file_name, str) or not file_name.strip():
        raise DatasetError([Problem(label, "file_name", f"must be a non-empty string, got {file_name!r}")])
    why = _unsafe_file_name(file_name)
    if why:
        raise DatasetError([Problem(label, "file_name", f"{why}: {file_name!r}")])
    path = split.image_dir / file_name
    root = split.root or split.json_path.parent
    # Lexical check as a second fence (symlinks the user placed inside the dataset are allowed).
    if os.path.commonpath([os.path.abspath(path), os.path.abspath(root)]) != os.path.abspath(root):
        raise DatasetError(
            [Problem(label, "file_name", f"file name leaves the dataset folder: {file_name!r}")]
        )
    return path


# ---------------------------------------------------------------------------------------- writing


def write_json_atomic(
    data: dict[str, Any], out: str | os.PathLike[str], *, validate_coco: bool = True, backup: bool = True
) -> Path:
    """Write a json file so that a crash can never leave a half-written or invalid file.

    The data go to a temporary file in the same folder, are flushed to disk (fsync), optionally
    loaded back with ``pycocotools.COCO``, and only then renamed over ``out`` (atomic on one
    file system). An existing ``out`` is first kept as ``out.bak-YYYYmmdd-HHMMSS``.

    Parameters
    ----------
    data:
        JSON-serialisable dict (NaN and Infinity are refused: they are not JSON).
    out:
        The target file; its folder must exist.
    validate_coco:
        Load the temporary file with pycocotools before the rename.
    backup:
        Keep the previous ``out`` (if any) as a timestamped backup beside it.

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    CocoWriteError
        When the data cannot be serialised, the folder is not writable, or pycocotools cannot load
        the result. ``out`` is then unchanged and no temporary file is left behind.
    """
    out = Path(out)
    if not out.parent.is_dir():
        raise CocoWriteError(f"{out}: folder {out.parent} does not exist")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    except OSError as exc:
        raise CocoWriteError(f"{out}: cannot write in {out.parent}: {exc.strerror or exc}") from None
    tmp = Path(tmp_name)
    try:
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
                f.flush()
                os.fsync(f.fileno())
        except (TypeError, ValueError) as exc:
            raise CocoWriteError(f"{out}: data cannot be written as JSON: {exc}") from None
        except OSError as exc:
            raise CocoWriteError(f"{out}: write failed: {exc.strerror or exc}") from None
        # mkstemp creates the file as 0600; the export must be as readable as the file it replaces.
        with contextlib.suppress(OSError):
            os.chmod(tmp, stat.S_IMODE(out.stat().st_mode) if out.exists() else 0o644)
        if validate_coco:
            _validate_with_pycocotools(tmp, out)
        if backup and out.exists():
            _backup(out)
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(out.parent)
    return out


def _validate_with_pycocotools(tmp: Path, out: Path) -> None:
    from pycocotools.coco import COCO

    try:
        # COCO() prints progress to stdout; a CLI that pipes json must not get it.
        with contextlib.redirect_stdout(io.StringIO()):
            coco = COCO(str(tmp))
        if not isinstance(coco.dataset.get("images"), list) or not isinstance(
            coco.dataset.get("categories"), list
        ):
            raise ValueError("'images' and 'categories' lists are required")
    except Exception as exc:  # pycocotools raises assorted errors (KeyError, AssertionError, ...)
        raise CocoWriteError(
            f"{out}: the written file does not load as COCO ({type(exc).__name__}: {exc})"
        ) from None


def _backup(out: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    bak = out.with_name(f"{out.name}.bak-{stamp}")
    k = 1
    while bak.exists():
        bak = out.with_name(f"{out.name}.bak-{stamp}-{k}")
        k += 1
    try:
        # A hard link keeps `out` in place until the rename: no moment without a file.
        os.link(out, bak)
    except OSError:
        shutil.copy2(out, bak)
    return bak


def _fsync_dir(folder: Path) -> None:
    """Persist the rename itself (POSIX); not possible on Windows, where it is skipped."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
