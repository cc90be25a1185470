"""The COCO dataset types: a split (one json and its image folder) and a dataset (its splits).

Part of the COCO reader (:mod:`fusereview.core.coco` re-exports the public names).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fusereview.core.coco_paths import resolve_image_path
from fusereview.core.errors import Problem

#: The annotation file name of every split folder of a Roboflow COCO export.
ROBOFLOW_JSON = "_annotations.coco.json"


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
        return {c["id"] for c in self.all_categories() if looks_like_placeholder(c) and c["id"] not in used}

    def real_categories(self) -> list[dict[str, Any]]:
        """The classes to show the user: every category but the unused placeholder."""
        hidden = self.placeholder_category_ids()
        return [c for c in self.all_categories() if c["id"] not in hidden]

    @property
    def quirks(self) -> list[Problem]:
        """Quirks of every split."""
        return [q for s in self.splits.values() for q in s.quirks]


def looks_like_placeholder(cat: dict[str, Any]) -> bool:
    return cat.get("id") == 0 and str(cat.get("supercategory", "")).lower() == "none"
