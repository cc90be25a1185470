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

Where the code lives (this module re-exports the public names, so ``fusereview.core.coco`` is the
one import every caller uses):

- :mod:`~fusereview.core.coco_model`: :class:`CocoSplit`, :class:`Dataset`, ``ROBOFLOW_JSON``;
- :mod:`~fusereview.core.coco_paths`: :func:`resolve_image_path` (names leaving the dataset refused);
- :mod:`~fusereview.core.coco_layout`: finding the splits (Roboflow folders or one json), parsing;
- :mod:`~fusereview.core.coco_checks`, :mod:`~fusereview.core.coco_annotations`,
  :mod:`~fusereview.core.coco_report`: the checks and the per-file problem report;
- :mod:`~fusereview.core.coco_quirks`: the quirk fixes applied to the parsed json;
- :mod:`~fusereview.core.coco_load`: :func:`load_dataset`, :func:`validate_dataset`, :func:`check_dataset`;
- :mod:`~fusereview.core.coco_write`: :func:`write_json_atomic`, :class:`CocoWriteError`.
"""

from __future__ import annotations

from fusereview.core.coco_load import check_dataset, load_dataset, validate_dataset
from fusereview.core.coco_model import ROBOFLOW_JSON, CocoSplit, Dataset
from fusereview.core.coco_paths import resolve_image_path
from fusereview.core.coco_write import CocoWriteError, write_json_atomic

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
