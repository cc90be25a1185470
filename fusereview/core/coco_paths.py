"""Image paths of a COCO split: names that would leave the dataset folder are refused.

Part of the COCO reader (:mod:`fusereview.core.coco` re-exports the public names).
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import TYPE_CHECKING

from fusereview.core.errors import DatasetError, Problem, short_repr

if TYPE_CHECKING:
    from fusereview.core.coco_model import CocoSplit


def unsafe_file_name(name: str) -> str | None:
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
        raise DatasetError(
            [Problem(label, "file_name", f"must be a non-empty string, got {short_repr(file_name)}")]
        )
    why = unsafe_file_name(file_name)
    if why:
        raise DatasetError([Problem(label, "file_name", f"{why}: {short_repr(file_name)}")])
    path = split.image_dir / file_name
    root = split.root or split.json_path.parent
    # Lexical check as a second fence (symlinks the user placed inside the dataset are allowed).
    if os.path.commonpath([os.path.abspath(path), os.path.abspath(root)]) != os.path.abspath(root):
        raise DatasetError(
            [Problem(label, "file_name", f"file name leaves the dataset folder: {short_repr(file_name)}")]
        )
    return path
