"""Small COCO datasets on disk for tests (any engineer's tests may import these; keep them stable).

Everything is deterministic and tiny (64x48 images by default), so a test can build a dataset in
``tmp_path`` in a few milliseconds. The images show the annotated objects (white shapes on a dark
background), so model and evaluation tests can use them too.

Main entry points
-----------------
- :func:`make_roboflow_dataset` -- a Roboflow export folder (``train/ valid/ test/``) with or without
  the quirks of real exports.
- :func:`make_single_dataset` -- one json + an ``images/`` folder.
- :func:`write_image` / :func:`jpeg_with_orientation` -- image files of any kind.
- :func:`tree_hash` -- a hash of a whole folder, to prove that nothing on disk changed.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path
from typing import Any

import cv2
import numpy as np

#: The class name of the first customer's data set.
CLASS_NAME = "fuse neutrals"
#: Roboflow's placeholder category (the project name, id 0, supercategory "none").
PLACEHOLDER = {"id": 0, "name": "fuse-neutrals", "supercategory": "none"}


def tree_hash(folder: Path) -> str:
    """SHA-256 over every file's relative path and bytes under ``folder`` (sorted).

    Files over 64 MiB (the sparse multi-GB "images" of the bad-input tests) count by size and
    modification time instead of bytes; symlinks by their target, never followed (one may point at
    ``/dev/zero``).
    """
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        h.update(str(p.relative_to(folder)).encode("utf-8", "surrogateescape"))
        if p.is_symlink():
            h.update(str(p.readlink()).encode("utf-8", "surrogateescape"))
        elif p.is_file():
            st = p.stat()
            h.update(p.read_bytes() if st.st_size <= 64 << 20 else f"{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()


def encode_image(img: np.ndarray, ext: str = ".png") -> bytes:
    """Encode an image (BGR / gray / BGRA as OpenCV wants it) to file bytes."""
    ok, buf = cv2.imencode(ext, img)
    if not ok:
        raise RuntimeError(f"OpenCV cannot encode {ext}")
    return buf.tobytes()


def jpeg_with_orientation(jpeg: bytes, orientation: int) -> bytes:
    """Insert an EXIF APP1 segment with the given orientation tag (1..8) into JPEG bytes."""
    tiff = (
        b"II*\x00"
        + struct.pack("<I", 8)
        + struct.pack("<H", 1)
        + struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0)
        + struct.pack("<I", 0)
    )
    payload = b"Exif\x00\x00" + tiff
    app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return jpeg[:2] + app1 + jpeg[2:]


def object_boxes(index: int, width: int, height: int, count: int = 2) -> list[tuple[int, int, int, int]]:
    """Deterministic, non-overlapping integer ``xywh`` boxes for image number ``index``."""
    boxes = []
    bw, bh = max(4, width // 4), max(4, height // 3)
    for k in range(count):
        x = (3 + 7 * index + k * (bw + 4)) % max(1, width - bw - 2) + 1
        y = (2 + 5 * index + k * 3) % max(1, height - bh - 2) + 1
        boxes.append((x, y, bw, bh))
    return boxes


def render(width: int, height: int, boxes: list[tuple[int, int, int, int]], seed: int = 0) -> np.ndarray:
    """A BGR image: dark noisy background, one white-ish rectangle per box."""
    rng = np.random.default_rng(seed)
    img = rng.integers(10, 60, size=(height, width, 3), dtype=np.uint8)
    for x, y, w, h in boxes:
        img[y : y + h, x : x + w] = (220, 230, 240)
    return img


def write_image(path: Path, img: np.ndarray) -> Path:
    """Write an image (BGR/gray/BGRA, uint8 or uint16) by its extension; any characters in the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_image(img, path.suffix.lower()))
    return path


def _rect_polygon(x: int, y: int, w: int, h: int, closed: bool) -> list[float]:
    pts = [x, y, x + w, y, x + w, y + h, x, y + h]
    if closed:
        pts += [x, y]
    return [float(v) for v in pts]


def make_split(
    folder: Path,
    n_images: int,
    *,
    quirks: bool = True,
    size: tuple[int, int] = (64, 48),
    first_index: int = 0,
    json_name: str = "_annotations.coco.json",
    image_subdir: str = "",
    ext: str = ".jpg",
) -> Path:
    """Write one split (images + COCO json) into ``folder``; returns the json path.

    With ``quirks=True`` the json has the quirks of a real Roboflow export: placeholder category 0,
    ids from 0, ``area`` = bbox area, a box 1 px past the right edge, a bbox-only annotation,
    closing points repeated, a degenerate 2-point polygon, a compressed and an uncompressed RLE,
    file names with spaces and parentheses, an ``extra`` field on images and unknown fields at
    every level. With ``quirks=False`` it is a plain, clean COCO file (ids from 1, one category).
    """
    width, height = size
    folder.mkdir(parents=True, exist_ok=True)
    base = 0 if quirks else 1
    cat_id = 1
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    ann_id = base
    for k in range(n_images):
        index = first_index + k
        name = f"fuse box ({index})_jpg.rf.{index:04x}{ext}" if quirks else f"img_{index:03d}{ext}"
        boxes = object_boxes(index, width, height)
        write_image(folder / image_subdir / name, render(width, height, boxes, seed=index))
        image: dict[str, Any] = {"id": k + base, "file_name": name, "width": width, "height": height}
        if quirks:
            image["license"] = 1
            image["date_captured"] = "2024-05-01T10:00:00+00:00"
            image["extra"] = {"name": f"fuse box ({index}).jpg"}
        images.append(image)
        for j, (x, y, w, h) in enumerate(boxes):
            ann: dict[str, Any] = {
                "id": ann_id,
                "image_id": image["id"],
                "category_id": cat_id,
                "bbox": [x, y, w, h],
                "segmentation": [_rect_polygon(x, y, w, h, closed=quirks)],
                "area": float(w * h),
                "iscrowd": 0,
            }
            if quirks:
                # A triangle inside the box: its real area is half the box, `area` says the whole box.
                ann["segmentation"] = [
                    [float(x), float(y), float(x + w), float(y), float(x), float(y + h), float(x), float(y)]
                ]
                ann["x_note"] = f"custom field {ann_id}"
                if k == 0 and j == 0:
                    ann["segmentation"].append([1.0, 1.0, 2.0, 2.0])  # degenerate: 2 points
                    ann["bbox"] = [x, y, width - x + 1, h]  # integer box 1 px past the right edge
                    ann["area"] = float((width - x + 1) * h)
                if k == 0 and j == 1:
                    ann["segmentation"] = []  # bbox only
                if k == 1 and j == 0:
                    m = np.zeros((height, width), dtype=np.uint8)
                    m[y : y + h, x : x + w] = 1
                    from pycocotools import mask as mask_utils

                    rle = mask_utils.encode(np.asfortranarray(m))
                    ann["segmentation"] = {"size": [height, width], "counts": rle["counts"].decode("ascii")}
                    ann["area"] = float(w * h)
                if k == 1 and j == 1:
                    flat = np.zeros((height, width), dtype=np.uint8)
                    flat[y : y + h, x : x + w] = 1
                    counts, prev, run = [], 0, 0
                    for v in flat.flatten(order="F"):
                        if v != prev:
                            counts.append(run)
                            run, prev = 0, v
                        run += 1
                    counts.append(run)
                    ann["segmentation"] = {"size": [height, width], "counts": counts}
                    ann["iscrowd"] = 1
            annotations.append(ann)
            ann_id += 1
    categories = (
        [dict(PLACEHOLDER), {"id": cat_id, "name": CLASS_NAME, "supercategory": PLACEHOLDER["name"]}]
        if quirks
        else [{"id": cat_id, "name": CLASS_NAME, "supercategory": "fuse"}]
    )
    data: dict[str, Any] = {"images": images, "annotations": annotations, "categories": categories}
    if quirks:
        data = {
            "info": {"year": "2024", "version": "3", "description": "Exported from roboflow.com"},
            "licenses": [
                {"id": 1, "url": "https://creativecommons.org/licenses/by/4.0/", "name": "CC BY 4.0"}
            ],
            "x_custom": {"kept": True},
            **data,
        }
    json_path = folder / json_name
    json_path.write_text(json.dumps(data, indent=1), encoding="utf-8")
    return json_path


def make_roboflow_dataset(
    tmp_path: Path,
    quirks: bool = True,
    *,
    splits: dict[str, int] | None = None,
    size: tuple[int, int] = (64, 48),
    name: str = "fuse-neutrals.coco",
) -> Path:
    """A Roboflow COCO export folder under ``tmp_path``; returns the dataset folder.

    Parameters
    ----------
    tmp_path:
        Where to create it (the folder ``tmp_path / name`` must not exist).
    quirks:
        Include the quirks of real exports (see :func:`make_split`).
    splits:
        Split folder name -> number of images; default ``{"train": 3, "valid": 2, "test": 1}``.
        Use ``"val"`` as a key to get the other exporters' folder name.
    size:
        ``(width, height)`` of every image.
    """
    root = tmp_path / name
    root.mkdir(parents=True)
    first = 0
    for split, n in (splits or {"train": 3, "valid": 2, "test": 1}).items():
        make_split(root / split, n, quirks=quirks, size=size, first_index=first)
        first += n
    return root


def make_single_dataset(
    tmp_path: Path, n_images: int = 2, *, quirks: bool = False, size: tuple[int, int] = (64, 48)
) -> Path:
    """One COCO json (``instances.json``) with its images in an ``images/`` folder; returns the json path."""
    root = tmp_path / "single"
    return make_split(
        root, n_images, quirks=quirks, size=size, json_name="instances.json", image_subdir="images"
    )


def load_json(path: Path) -> dict[str, Any]:
    """Read a json file."""
    return json.loads(path.read_text(encoding="utf-8"))


def save_json(path: Path, data: Any) -> None:
    """Write a json file (plain, non-atomic: for building test inputs)."""
    path.write_text(json.dumps(data), encoding="utf-8")
