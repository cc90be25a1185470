"""Checks of the values fusereview keeps without interpreting (unknown fields, ``info``, ``licenses``).

Part of the COCO reader (:mod:`fusereview.core.coco` re-exports the public names). Such values are
stored as JSON text and written back on export, so they must be what every JSON tool reads back:
no NaN or Infinity (``1e400`` parses as Infinity), no lone UTF-16 surrogate (``"\\ud800"``: no file
system, database or UTF-8 encoder takes it), and no nesting so deep that reading the exported file
would exceed Python's recursion limit. The walks are iterative: a 900-level list cannot crash them.
"""

from __future__ import annotations

import math
from typing import Any

from fusereview.core.coco_report import Report, has_lone_surrogate

#: Nesting allowed inside one kept field. COCO itself needs 3 (segmentation -> polygon -> number);
#: the export adds 3 levels around it, and Python's json reader stops near 1,000.
MAX_FIELD_DEPTH = 64

# The fields the checks interpret; everything else of these objects is kept as is.
_CHECKED_TOP = frozenset(("images", "annotations", "categories"))
_CHECKED_IMAGE = frozenset(("id", "file_name", "width", "height"))
_CHECKED_ANNOTATION = frozenset(("id", "image_id", "category_id", "bbox", "segmentation", "area", "iscrowd"))
_CHECKED_CATEGORY = frozenset(("id", "name"))


def check_kept_values(data: dict[str, Any], rep: Report) -> None:
    """Report non-finite numbers, lone surrogates and too-deep nesting in every kept field."""
    for key, value in data.items():
        if key not in _CHECKED_TOP:
            check_field(key, value, str(key), rep)
    for name, keys in (
        ("images", _CHECKED_IMAGE),
        ("annotations", _CHECKED_ANNOTATION),
        ("categories", _CHECKED_CATEGORY),
    ):
        items = data.get(name)
        if type(items) is not list:
            continue
        for i, obj in enumerate(items):
            # the common object has only checked keys: one C-level subset test, nothing walked
            if type(obj) is not dict or obj.keys() <= keys:
                continue
            for key, value in obj.items():
                if key not in keys:
                    check_field(key, value, f"{name}[{i}].{key}", rep)


def check_field(key: str, value: Any, where: str, rep: Report) -> None:
    """Check one kept field (its key and everything under it); problems go to ``rep``."""
    if has_lone_surrogate(key):
        rep.problem(where, SURROGATE)
        return
    stack: list[tuple[Any, str, int]] = [(value, where, 0)]
    while stack:
        node, path, depth = stack.pop()
        t = type(node)
        if t is float:
            if not math.isfinite(node):
                rep.problem(path, f"{node} is not a JSON number ({_NON_FINITE})")
        elif t is str:
            if has_lone_surrogate(node):
                rep.problem(path, SURROGATE)
        elif t is dict or t is list:
            if depth >= MAX_FIELD_DEPTH:
                rep.problem(
                    where,
                    f"nested more than {MAX_FIELD_DEPTH} levels deep: an export holding it could not "
                    "be read back by JSON readers",
                )
                return
            if t is dict:
                for k, v in node.items():
                    if has_lone_surrogate(k):
                        rep.problem(path, SURROGATE)
                    stack.append((v, f"{path}.{k}", depth + 1))
            else:
                stack.extend((v, f"{path}[{j}]", depth + 1) for j, v in enumerate(node))


_NON_FINITE = "NaN, Infinity and numbers beyond +-1.8e308 are not allowed"
SURROGATE = (
    "text holds a lone UTF-16 surrogate (such as \\ud800), which is not valid Unicode: "
    "no file system or database can store it"
)


def report_non_finite(data: dict[str, Any], rep: Report) -> None:
    """Report NaN / Infinity anywhere not reported above (known fields too: they are written back)."""
    reported = {p.where for p in rep.problems}

    def covered(where: str) -> bool:
        # a problem reported at this path or at one of its ancestors covers it
        while where:
            if where in reported:
                return True
            cut = max(where.rfind("."), where.rfind("["))
            where = where[:cut] if cut > 0 else ""
        return False

    stack: list[tuple[Any, str]] = [(data, "")]
    while stack:
        node, where = stack.pop()
        if type(node) is float:
            if not math.isfinite(node) and not covered(where):
                rep.problem(where, f"{node} is not a JSON number ({_NON_FINITE})")
        elif type(node) is dict:
            stack.extend((v, f"{where}.{k}" if where else str(k)) for k, v in node.items())
        elif type(node) is list:
            stack.extend((v, f"{where}[{i}]") for i, v in enumerate(node))
