"""Reading COCO / Roboflow datasets: quirks handled (not rejected), unknown fields kept, atomic writes."""

from __future__ import annotations

import itertools
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from coco_samples import (
    CLASS_NAME,
    load_json,
    make_roboflow_dataset,
    make_single_dataset,
    save_json,
    tree_hash,
)

from fusereview.core import geometry
from fusereview.core.coco import (
    CocoWriteError,
    check_dataset,
    load_dataset,
    resolve_image_path,
    validate_dataset,
    write_json_atomic,
)
from fusereview.core.errors import DatasetError


def _quirk_text(ds: Any) -> str:
    return "\n".join(str(q) for q in ds.quirks)


def test_roboflow_export_with_every_quirk_loads(tmp_path: Path) -> None:
    root = make_roboflow_dataset(tmp_path)
    before = tree_hash(root)
    ds = load_dataset(root)
    assert tree_hash(root) == before  # reading never writes
    assert ds.layout == "roboflow" and ds.root == root
    assert list(ds.splits) == ["train", "valid", "test"]
    assert [c["name"] for c in ds.real_categories()] == [CLASS_NAME]
    assert ds.placeholder_category_ids() == {0}
    assert [c["id"] for c in ds.all_categories()] == [0, 1]  # placeholder kept for export
    text = _quirk_text(ds)
    for words in (
        "placeholder class 'fuse-neutrals'",
        "image ids start at 0",
        "annotation ids start at 0",
        "'area' is the bbox area",
        "past the image edge",
        "without a mask (bbox only)",
        "repeating their first point",
        "fewer than 3 points",
        "uncompressed RLE",
        "'extra' field",
    ):
        assert words in text, words
    assert validate_dataset(root) == []


def test_quirks_are_normalised_in_the_data(tmp_path: Path) -> None:
    root = make_roboflow_dataset(tmp_path)
    raw = load_json(root / "train/_annotations.coco.json")
    split = load_dataset(root).splits["train"]
    anns = {a["id"]: a for a in split.annotations}
    w = split.images[0]["width"]

    # box poking 1 px past the right edge: rounding, kept as given (exports unchanged)
    x, _, bw, _ = anns[0]["bbox"]
    assert x + bw == w + 1 and anns[0]["bbox"] == raw["annotations"][0]["bbox"]
    # degenerate polygon dropped; the repeated closing point is harmless and kept
    assert len(raw["annotations"][0]["segmentation"]) == 2
    assert anns[0]["segmentation"] == [raw["annotations"][0]["segmentation"][0]]
    closed = raw["annotations"][0]["segmentation"][0]
    assert closed[:2] == closed[-2:]
    # `area` was the bbox area; the triangle's real area is half of it
    tri = anns[4]
    assert raw["annotations"][4]["area"] == tri["bbox"][2] * tri["bbox"][3]
    assert tri["area"] == pytest.approx(tri["bbox"][2] * tri["bbox"][3] / 2)
    assert tri["area"] == pytest.approx(geometry.polygons_area(tri["segmentation"]))
    # uncompressed RLE now compressed, same pixels; compressed RLE untouched
    crowd = anns[3]
    assert isinstance(crowd["segmentation"]["counts"], str) and crowd["iscrowd"] == 1
    assert isinstance(raw["annotations"][3]["segmentation"]["counts"], list)
    mask = geometry.rle_to_mask(crowd["segmentation"])
    bx, by, bw2, bh2 = raw["annotations"][3]["bbox"]
    assert mask.sum() == bw2 * bh2 and mask[by : by + bh2, bx : bx + bw2].all()
    assert anns[2]["segmentation"] == raw["annotations"][2]["segmentation"]
    # bbox-only annotation stays bbox-only
    assert anns[1]["segmentation"] == []


def test_unknown_fields_survive_a_round_trip(tmp_path: Path) -> None:
    root = make_roboflow_dataset(tmp_path)
    raw = load_json(root / "train/_annotations.coco.json")
    split = load_dataset(root).splits["train"]
    out = tmp_path / "out"
    out.mkdir()
    written = write_json_atomic(split.data, out / "_annotations.coco.json")
    back = load_json(written)
    for key in ("info", "licenses", "x_custom"):
        assert back[key] == raw[key]
    assert [im["extra"] for im in back["images"]] == [im["extra"] for im in raw["images"]]
    assert [im["date_captured"] for im in back["images"]] == [im["date_captured"] for im in raw["images"]]
    assert [a["x_note"] for a in back["annotations"]] == [a["x_note"] for a in raw["annotations"]]
    assert back["categories"] == raw["categories"]  # placeholder kept
    assert [a["id"] for a in back["annotations"]] == [a["id"] for a in raw["annotations"]]  # ids kept, from 0
    # reading the written file again finds no quirk left to fix in the geometry
    for f in raw["images"]:
        shutil.copy(root / "train" / f["file_name"], out / f["file_name"])
    again = load_dataset(out / "_annotations.coco.json")
    text = _quirk_text(again)
    assert "bbox area" not in text
    assert again.splits["out"].data == back


def test_clean_coco_has_no_quirks_and_val_folder_is_valid(tmp_path: Path) -> None:
    root = make_roboflow_dataset(tmp_path, quirks=False, splits={"train": 2, "val": 1})
    ds = load_dataset(root)
    assert list(ds.splits) == ["train", "valid"]
    assert ds.splits["valid"].json_path.parent.name == "val"
    assert ds.quirks == []
    assert ds.placeholder_category_ids() == set()


def test_single_json_with_images_folder(tmp_path: Path) -> None:
    js = make_single_dataset(tmp_path, 3)
    for path in (js, js.parent):  # the file, or the folder holding only it
        ds = load_dataset(path)
        assert ds.layout == "single" and list(ds.splits) == ["instances"]
        split = ds.splits["instances"]
        assert split.image_dir == js.parent / "images"
        assert split.image_path(split.images[0]).is_file()
    assert validate_dataset(js) == []


def test_single_roboflow_split_folder_is_named_after_it(tmp_path: Path) -> None:
    root = make_roboflow_dataset(tmp_path, splits={"valid": 1})
    ds = load_dataset(root / "valid")
    assert ds.layout == "single" and list(ds.splits) == ["valid"]
    ds = load_dataset(root / "valid" / "_annotations.coco.json")
    assert list(ds.splits) == ["valid"]


def test_folders_without_an_obvious_json_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no such file"):
        load_dataset(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="no COCO annotations found"):
        load_dataset(empty)
    (empty / "a.json").write_text("{}")
    (empty / "b.json").write_text("{}")
    with pytest.raises(DatasetError, match=r"several json files \(a.json, b.json\)"):
        load_dataset(empty)


def test_missing_optional_fields_are_filled(tmp_path: Path) -> None:
    js = make_single_dataset(tmp_path, 1)
    data = load_json(js)
    a = data["annotations"][0]
    del a["bbox"], a["area"], a["iscrowd"]
    a["segmentation"] = [[2, 3, 12, 3, 12, 8, 2, 8]]
    data["images"][0]["width"] = float(data["images"][0]["width"])  # 64.0
    save_json(js, data)
    ds = load_dataset(js)
    ann = ds.splits["instances"].annotations[0]
    assert ann["bbox"] == [2.0, 3.0, 10.0, 5.0]
    assert ann["area"] == 50.0 and ann["iscrowd"] == 0
    assert ds.splits["instances"].images[0]["width"] == 64
    text = _quirk_text(ds)
    assert "without 'bbox'" in text and "without 'area'" in text and "without 'iscrowd'" in text


def test_unlabelled_split_without_annotations_key(tmp_path: Path) -> None:
    js = make_single_dataset(tmp_path, 1)
    data = load_json(js)
    del data["annotations"]
    save_json(js, data)
    ds = load_dataset(js)
    assert ds.splits["instances"].annotations == []
    assert "unlabelled" in _quirk_text(ds)


def test_resolve_image_path_keeps_odd_names(tmp_path: Path) -> None:
    root = make_roboflow_dataset(tmp_path)
    split = load_dataset(root).splits["train"]
    name = split.images[0]["file_name"]
    assert " " in name and "(" in name
    assert resolve_image_path(split, name) == root / "train" / name
    assert resolve_image_path(split, name).is_file()


def test_check_dataset_returns_the_dataset_once(tmp_path: Path) -> None:
    root = make_roboflow_dataset(tmp_path)
    seen: list[tuple[int, int]] = []
    ds, problems = check_dataset(root, deep=True, progress=lambda d, t: seen.append((d, t)))
    assert problems == [] and ds is not None and ds.layout == "roboflow"
    assert seen[-1] == (6, 6)


# ------------------------------------------------------------------------------------ writing


def test_write_json_atomic_keeps_a_backup_and_leaves_no_temp(tmp_path: Path) -> None:
    data = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "x"}], "é": "ü"}
    out = tmp_path / "out.json"
    assert write_json_atomic(data, out) == out
    assert json.loads(out.read_text(encoding="utf-8")) == data
    if os.name == "posix":
        assert out.stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600
    first = out.read_bytes()
    data2 = dict(data, version=2)
    write_json_atomic(data2, out)
    backups = list(tmp_path.glob("out.json.bak-*"))
    assert len(backups) == 1 and backups[0].read_bytes() == first
    write_json_atomic(data2, out)
    assert len(list(tmp_path.glob("out.json.bak-*"))) == 2  # same second: a distinct name
    write_json_atomic(data2, out, backup=False)
    assert len(list(tmp_path.glob("out.json.bak-*"))) == 2
    assert not list(tmp_path.glob(".*tmp"))


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"images": [], "annotations": [], "categories": [], "x": float("nan")}, "cannot be written as JSON"),
        ({"images": [], "annotations": [], "categories": [], "x": object()}, "cannot be written as JSON"),
        ({"images": {}, "annotations": [], "categories": []}, "does not load as COCO"),
        ({"images": [], "annotations": [{"id": 1}], "categories": []}, "does not load as COCO"),
    ],
)
def test_write_json_atomic_failure_leaves_target_untouched(tmp_path: Path, data: dict, match: str) -> None:
    out = tmp_path / "keep.json"
    out.write_text('{"old": true}')
    with pytest.raises(CocoWriteError, match=match):
        write_json_atomic(data, out)
    assert out.read_text() == '{"old": true}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.json"]


def test_write_json_atomic_without_validation_and_missing_folder(tmp_path: Path) -> None:
    write_json_atomic({"anything": [1]}, tmp_path / "a.json", validate_coco=False)
    assert load_json(tmp_path / "a.json") == {"anything": [1]}
    with pytest.raises(CocoWriteError, match="does not exist"):
        write_json_atomic({}, tmp_path / "no" / "a.json")


# ------------------------------------------------------------------------------------ speed


def test_large_roboflow_file_is_normalised(tmp_path: Path) -> None:
    """10,000 Roboflow-style polygon annotations: every area fixed (speed: tests/benchmarks/bench_project.py)."""
    rng = np.random.default_rng(0)
    n_img, n_ann = 1000, 10000
    t = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    unit = np.stack([np.cos(t), np.sin(t)], 1)
    centres = rng.uniform(40, 470, (n_ann, 1, 2))
    radii = rng.uniform(5, 30, (n_ann, 1, 1))
    rings = np.round(centres + radii * unit, 2).reshape(n_ann, -1).tolist()
    corners = (centres[:, 0] - radii[:, 0]).astype(int).tolist()
    sides = (2 * radii[:, 0, 0]).astype(int) + 1
    anns = [
        {
            "id": k,
            "image_id": k % n_img,
            "category_id": 1,
            "bbox": [*corners[k], int(sides[k]), int(sides[k])],
            "area": int(sides[k]) ** 2,
            "segmentation": [ring + ring[:2]],
            "iscrowd": 0,
        }
        for k, ring in enumerate(rings)
    ]
    data = {
        "images": [{"id": i, "file_name": f"{i}.jpg", "width": 512, "height": 512} for i in range(n_img)],
        "annotations": anns,
        "categories": [
            {"id": 0, "name": "p", "supercategory": "none"},
            {"id": 1, "name": "f", "supercategory": "p"},
        ],
    }
    js = tmp_path / "big.json"
    js.write_text(json.dumps(data))
    ds = load_dataset(js)
    anns_out = ds.splits["big"].annotations
    # the repeated closing point is kept (exports unchanged); the area is the polygon's own
    assert all(len(a["segmentation"][0]) == 26 for a in itertools.islice(anns_out, 100))
    exact = geometry.polygons_area(anns_out[0]["segmentation"])
    assert anns_out[0]["area"] == pytest.approx(exact, abs=0.01)
