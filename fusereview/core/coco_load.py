"""Loading and validating a COCO dataset: every split read, every problem collected at once.

Part of the COCO reader (:mod:`fusereview.core.coco` re-exports the public names).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from fusereview.core.coco_checks import check_categories_agree, check_coco
from fusereview.core.coco_layout import discover, pick_image_dir, read_json
from fusereview.core.coco_model import CocoSplit, Dataset
from fusereview.core.coco_paths import resolve_image_path, unsafe_file_name
from fusereview.core.coco_report import as_int_size, cap_problems, has_lone_surrogate
from fusereview.core.errors import DatasetError, Problem


def _load(path: str | os.PathLike[str]) -> tuple[Dataset | None, list[Problem], list[CocoSplit]]:
    """Read every split, collecting all problems; the Dataset is None when any split failed."""
    p = Path(path)
    root, layout, found, discover_quirks = discover(p)
    problems: list[Problem] = []
    splits: dict[str, CocoSplit] = {}
    parsed: list[CocoSplit] = []
    for name, json_path in found:
        data, errs = read_json(json_path)
        if data is None:
            problems.extend(errs)
            continue
        errs, quirks = check_coco(data, str(json_path))
        split = CocoSplit(
            name=name,
            json_path=json_path,
            image_dir=pick_image_dir(json_path, data),
            data=data,
            quirks=(discover_quirks if not parsed else []) + quirks,
            root=root,
        )
        parsed.append(split)
        problems.extend(errs)
        splits[name] = split
    problems.extend(check_categories_agree(parsed))
    if problems:
        return None, problems, parsed
    return Dataset(root=root, layout=layout, splits=splits), [], parsed


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
        and not unsafe_file_name(im["file_name"])  # already reported
        and not has_lone_surrogate(im["file_name"])  # already reported
    ]
    for k, (split, i, im) in enumerate(todo):
        if progress is not None and (k % 50 == 0):
            progress(k, len(todo))
        label = str(split.json_path)
        where = f"images[{i}].file_name"
        file = resolve_image_path(split, im["file_name"])
        try:
            header = images.check_image_file(file)
            w, h = as_int_size(im.get("width")), as_int_size(im.get("height"))
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
    return dataset, cap_problems(problems)
