"""Turn a loaded COCO :class:`~fusereview.core.coco.Dataset` into rows of the project database.

Speed matters here (10,000 images and 100,000 polygons in well under 10 s on two cores): every
row is checked with a few ``isinstance`` tests, its JSON fields are stored as JSON text as they
are (no pycocotools work per row: a ground-truth ``area``/``bbox`` is kept as given), and all rows
go in with ``executemany`` inside the caller's single transaction.
"""

from __future__ import annotations

import contextlib
import math
import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fusereview.core.errors import DatasetError, Problem
from fusereview.core.project_records import dumps

#: Keys of an image / annotation object that the project owns (stored in columns, not in ``extra``).
IMAGE_KEYS = ("id", "file_name", "width", "height")
ANNOTATION_KEYS = ("id", "image_id", "category_id", "bbox", "segmentation", "area", "iscrowd")
#: Keys of a COCO json that are stored as rows; every other top-level key is kept verbatim.
TABLE_KEYS = ("images", "annotations", "categories")
#: Stop collecting after this many problems: a broken 100k-annotation file must still fail fast.
MAX_PROBLEMS = 200

_NUMBER_TYPES = frozenset((int, float))
_IMAGE_KEY_SET = frozenset(IMAGE_KEYS)
_ANNOTATION_KEY_SET = frozenset(ANNOTATION_KEYS)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _extra(obj: dict, owned: frozenset[str]) -> str | None:
    """The object's keys that we do not own, as JSON text (``None`` when there are none)."""
    if obj.keys() <= owned:  # the common case (a Roboflow annotation), decided in C
        return None
    return dumps({k: v for k, v in obj.items() if k not in owned})


def _relative(path: Path, root: Path, lexical_root: Path | None = None) -> str:
    """``path`` relative to the dataset root when it is inside it, else absolute (both as text).

    Inside is decided on the path as the dataset names it first (``lexical_root`` is the root as
    given): a split folder that is a symlink the user placed in the dataset stays inside it, so that
    predict reads its images as validate did (one rule: symlinks inside the dataset are followed).
    """
    if lexical_root is not None:
        with contextlib.suppress(ValueError):
            return Path(os.path.abspath(path)).relative_to(os.path.abspath(lexical_root)).as_posix()
    try:
        return Path(path).resolve().relative_to(root).as_posix()
    except ValueError:
        return str(Path(path).resolve())


def merge_categories(dataset: Any) -> tuple[list[dict], set[int]]:
    """Every category of every split (by id, first-seen order) and the ids of the placeholders.

    Raises
    ------
    DatasetError
        When two splits give one category id different names.
    """
    real_ids = {int(c["id"]) for c in dataset.real_categories()}
    merged: dict[int, dict] = {}
    problems: list[Problem] = []
    for split in dataset.splits.values():
        for i, cat in enumerate(split.data.get("categories", [])):
            where = f"categories[{i}]"
            if (
                not isinstance(cat, dict)
                or not _is_int(cat.get("id"))
                or not isinstance(cat.get("name"), str)
            ):
                problems.append(
                    Problem(str(split.json_path), where, "a category needs an integer id and a name")
                )
                continue
            seen = merged.get(cat["id"])
            if seen is None:
                merged[cat["id"]] = cat
            elif seen.get("name") != cat["name"]:
                problems.append(
                    Problem(
                        str(split.json_path),
                        f"{where}.name",
                        f"category id {cat['id']} is {cat['name']!r} here but {seen.get('name')!r} in another split",
                    )
                )
    if problems:
        raise DatasetError(problems)
    placeholders = {cid for cid in merged if cid not in real_ids}
    return list(merged.values()), placeholders


def insert_dataset(conn: sqlite3.Connection, dataset: Any, root: Path) -> dict[str, int]:
    """Insert every split, category, image and annotation of ``dataset``; returns counts.

    Runs inside the caller's transaction, so a problem found half-way leaves nothing behind.

    Raises
    ------
    DatasetError
        Listing every malformed field found (file and JSON path), up to :data:`MAX_PROBLEMS`.
    """
    categories, placeholders = merge_categories(dataset)
    conn.executemany(
        "INSERT INTO categories (id, name, supercategory, prompt, placeholder, position, raw)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (
                c["id"],
                c["name"],
                str(c.get("supercategory", "") or ""),
                c["name"],
                int(c["id"] in placeholders),
                pos,
                dumps(c),
            )
            for pos, c in enumerate(categories)
        ],
    )
    category_ids = {c["id"] for c in categories}
    problems: list[Problem] = []
    n_images = n_annotations = 0
    next_image_id = 1
    for position, (name, split) in enumerate(dataset.splits.items()):
        data = split.data
        file = str(split.json_path)
        top = {k: v for k, v in data.items() if k not in TABLE_KEYS}
        image_rows, coco_to_project = _image_rows(data.get("images", []), name, file, next_image_id, problems)
        next_image_id += len(image_rows)
        ann_rows, max_ann_id = _annotation_rows(
            data.get("annotations", []), file, coco_to_project, category_ids, problems
        )
        if len(problems) >= MAX_PROBLEMS:
            break
        conn.execute(
            "INSERT INTO splits (name, position, json_path, image_dir, top, next_ann_coco_id)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                name,
                position,
                _relative(split.json_path, root, split.root),
                _relative(split.image_dir, root, split.root),
                dumps(top),
                max_ann_id + 1,
            ),
        )
        conn.executemany(
            "INSERT INTO images (id, split, coco_id, file_name, width, height, extra) VALUES (?, ?, ?, ?, ?, ?, ?)",
            image_rows,
        )
        conn.executemany(
            "INSERT INTO annotations (image_id, coco_id, category_id, bbox, segmentation, area, iscrowd, source, extra)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, 'gt', ?)",
            ann_rows,
        )
        n_images += len(image_rows)
        n_annotations += len(ann_rows)
    if problems:
        raise DatasetError(problems[:MAX_PROBLEMS])
    return {
        "splits": len(dataset.splits),
        "images": n_images,
        "annotations": n_annotations,
        "categories": len(categories) - len(placeholders),
    }


def _image_rows(
    images: Iterable[Any], split: str, file: str, first_id: int, problems: list[Problem]
) -> tuple[list[tuple], dict[int, int]]:
    rows: list[tuple] = []
    coco_to_project: dict[int, int] = {}
    for i, img in enumerate(images):
        if not isinstance(img, dict):
            problems.append(Problem(file, f"images[{i}]", "an image must be a JSON object"))
            continue
        cid, fname, w, h = img.get("id"), img.get("file_name"), img.get("width"), img.get("height")
        if not _is_int(cid):
            problems.append(Problem(file, f"images[{i}].id", f"image id must be an integer, got {cid!r}"))
            continue
        if cid in coco_to_project:
            problems.append(Problem(file, f"images[{i}].id", f"image id {cid} appears twice"))
            continue
        if not isinstance(fname, str) or not fname:
            problems.append(Problem(file, f"images[{i}].file_name", "file_name must be a non-empty string"))
            continue
        if not (_is_int(w) and _is_int(h) and w > 0 and h > 0):
            problems.append(
                Problem(
                    file, f"images[{i}].width", f"width and height must be positive integers, got {w!r}x{h!r}"
                )
            )
            continue
        pid = first_id + len(rows)
        coco_to_project[cid] = pid
        try:
            extra = _extra(img, _IMAGE_KEY_SET)
        except ValueError as exc:
            problems.append(
                Problem(file, f"images[{i}]", f"holds a value that is not a finite number ({exc})")
            )
            continue
        rows.append((pid, split, cid, fname, w, h, extra))
    return rows, coco_to_project


def _annotation_problem(
    ann: Any, coco_to_project: dict[int, int], category_ids: set[int], seen_ids: set[int]
) -> tuple[str, str] | None:
    """The first malformed field of one annotation as ``(field, message)``, or ``None``."""
    if type(ann) is not dict:
        return "", "an annotation must be a JSON object"
    aid = ann.get("id")
    if type(aid) is not int:
        return ".id", f"annotation id must be an integer, got {aid!r}"
    if aid in seen_ids:
        return ".id", f"annotation id {aid} appears twice"
    if ann.get("image_id") not in coco_to_project:
        return ".image_id", f"no image has id {ann.get('image_id')!r}"
    if ann.get("category_id") not in category_ids:
        return ".category_id", f"no category has id {ann.get('category_id')!r}"
    bbox = ann.get("bbox")
    # type() against a frozenset: bool (a subclass of int) is refused, and it is fast
    if not (type(bbox) is list and len(bbox) == 4 and _NUMBER_TYPES.issuperset(map(type, bbox))):
        return ".bbox", f"bbox must be 4 numbers [x, y, w, h], got {bbox!r}"
    if type(ann.get("segmentation", [])) not in (list, dict):
        return ".segmentation", "segmentation must be polygons or an RLE object"
    area = ann.get("area")
    if type(area) not in _NUMBER_TYPES or not math.isfinite(area):
        return ".area", f"area must be a finite number, got {area!r}"
    if ann.get("iscrowd", 0) not in (0, 1) or type(ann.get("iscrowd", 0)) is bool:
        return ".iscrowd", f"iscrowd must be 0 or 1, got {ann.get('iscrowd')!r}"
    return None


def _annotation_rows(
    annotations: Iterable[Any],
    file: str,
    coco_to_project: dict[int, int],
    category_ids: set[int],
    problems: list[Problem],
) -> tuple[list[tuple], int]:
    rows: list[tuple] = []
    seen_ids: set[int] = set()
    max_id = -1
    for i, ann in enumerate(annotations):
        problem = _annotation_problem(ann, coco_to_project, category_ids, seen_ids)
        if problem is not None:
            problems.append(Problem(file, f"annotations[{i}]{problem[0]}", problem[1]))
            if len(problems) >= MAX_PROBLEMS:
                break
            continue
        aid = ann["id"]
        seen_ids.add(aid)
        try:
            # bbox and segmentation in one encoder call (the per-call cost is a third of the
            # import); the bbox is a flat list of numbers, so its text ends at the first "]"
            geometry = dumps([ann["bbox"], ann.get("segmentation", [])])
            extra = _extra(ann, _ANNOTATION_KEY_SET)
        except ValueError as exc:  # NaN or Infinity somewhere: not JSON
            problems.append(
                Problem(file, f"annotations[{i}]", f"holds a value that is not a finite number ({exc})")
            )
            continue
        cut = geometry.index("]") + 1
        rows.append(
            (
                coco_to_project[ann["image_id"]],
                aid,
                ann["category_id"],
                geometry[1:cut],
                geometry[cut + 1 : -1],
                ann["area"],
                ann.get("iscrowd", 0),
                extra,
            )
        )
        if aid > max_id:
            max_id = aid
    return rows, max_id
