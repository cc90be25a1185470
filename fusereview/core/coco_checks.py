"""Checks of one COCO json's categories and images, and of the whole file (every problem collected).

Part of the COCO reader (:mod:`fusereview.core.coco` re-exports the public names). Annotations are
checked in :mod:`fusereview.core.coco_annotations`.
"""

from __future__ import annotations

from typing import Any

from fusereview.core.coco_annotations import check_annotations
from fusereview.core.coco_layout import NON_FINITE_KEY
from fusereview.core.coco_model import CocoSplit, looks_like_placeholder
from fusereview.core.coco_paths import unsafe_file_name
from fusereview.core.coco_report import MISSING, Report, as_int_size, has_lone_surrogate, is_int, plural
from fusereview.core.coco_values import SURROGATE, check_kept_values, report_non_finite
from fusereview.core.errors import Problem, short_repr


def check_categories(data: dict[str, Any], rep: Report) -> set[int]:
    cats = data.get("categories", MISSING)
    ids: set[int] = set()
    if cats is MISSING:
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
        if not is_int(cid):
            rep.problem(f"{where}.id", f"must be an integer, got {short_repr(cid)}")
        elif cid in ids:
            rep.problem(f"{where}.id", f"duplicate category id {cid}")
        else:
            ids.add(cid)
        name = c.get("name")
        if not isinstance(name, str) or not name.strip():
            rep.problem(f"{where}.name", f"must be a non-empty string, got {short_repr(name)}")
        elif has_lone_surrogate(name):
            rep.problem(f"{where}.name", f"{short_repr(name)}: {SURROGATE}")
    return ids


def check_images(data: dict[str, Any], rep: Report) -> dict[int, tuple[int, int]]:
    imgs = data.get("images", MISSING)
    sizes: dict[int, tuple[int, int]] = {}
    if imgs is MISSING:
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
        if not is_int(iid):
            rep.problem(f"{where}.id", f"must be an integer, got {short_repr(iid)}")
            ok = False
        elif iid in seen:
            rep.problem(f"{where}.id", f"duplicate image id {iid}")
            ok = False
        else:
            seen.add(iid)
        name = im.get("file_name")
        if not isinstance(name, str) or not name.strip():
            rep.problem(f"{where}.file_name", f"must be a non-empty string, got {short_repr(name)}")
        elif has_lone_surrogate(name):
            rep.problem(f"{where}.file_name", f"{short_repr(name)}: {SURROGATE}")
        else:
            why = unsafe_file_name(name)
            if why:
                rep.problem(f"{where}.file_name", f"{why}: {short_repr(name)}")
            elif name in names:
                rep.problem(
                    f"{where}.file_name", f"{short_repr(name)} is listed twice (also images[{names[name]}])"
                )
            else:
                names[name] = i
        w, h = as_int_size(im.get("width")), as_int_size(im.get("height"))
        if w is None:
            rep.problem(f"{where}.width", f"must be a positive integer, got {short_repr(im.get('width'))}")
        if h is None:
            rep.problem(f"{where}.height", f"must be a positive integer, got {short_repr(im.get('height'))}")
        if w is not None and h is not None:
            if type(im["width"]) is float or type(im["height"]) is float:
                im["width"], im["height"] = w, h
            if ok:
                sizes[iid] = (w, h)
        if "extra" in im:
            n_extra += 1
    if n_extra:
        rep.quirk("images", f"'extra' field on {plural(n_extra, 'image')} (kept as is)")
    if seen and min(seen) == 0:
        rep.quirk("images", "image ids start at 0 (kept; remapped wherever pycocotools evaluates)")
    return sizes


def check_coco(data: dict[str, Any], label: str) -> tuple[list[Problem], list[Problem]]:
    """Check and normalise one parsed COCO dict; returns (problems, quirks)."""
    rep = Report(label)
    non_finite = bool(data.pop(NON_FINITE_KEY, False))
    cat_ids = check_categories(data, rep)
    sizes = check_images(data, rep)
    check_annotations(data, rep, sizes, cat_ids)
    if isinstance(data.get("categories"), list) and isinstance(data.get("annotations"), list):
        used = {
            a.get("category_id")
            for a in data["annotations"]
            if isinstance(a, dict) and is_int(a.get("category_id"))
        }
        for i, c in enumerate(data["categories"]):
            if isinstance(c, dict) and looks_like_placeholder(c) and c.get("id") not in used:
                rep.quirk(
                    f"categories[{i}]",
                    f"placeholder class {short_repr(c.get('name'))} (id 0, supercategory 'none') is used by no "
                    "annotation: hidden, kept on export",
                )
    check_kept_values(data, rep)
    if non_finite:
        report_non_finite(data, rep)
    rep.finish()
    return rep.problems, rep.quirks


def check_categories_agree(splits: list[CocoSplit]) -> list[Problem]:
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
                        f"category id {c['id']} is {short_repr(c['name'])} here but {short_repr(seen[0])} in split {short_repr(seen[1])}",
                    )
                )
    return problems
