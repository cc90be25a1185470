"""The synthetic fuse-box generator: determinism, Roboflow layout and quirks, masks that match pixels."""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from fusereview.cli import main
from fusereview.core.synthetic import (
    ANNOTATION_FILE,
    SynthError,
    generate_coco_stress,
    generate_dataset,
    render_image,
    split_counts,
)

ROBOFLOW_NAME = re.compile(r"^(?P<stem>.+)_(?P<ext>jpg)\.rf\.[0-9a-f]{32}\.jpg$")


def _raster(segmentation: list[list[float]], h: int, w: int) -> np.ndarray:
    return mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(segmentation, h, w))).astype(bool)


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def _looks_like_its_mask(image: np.ndarray, mask: np.ndarray, others: np.ndarray) -> bool:
    """Inside the mask the dark body shows; just outside it, the lighter panel does.

    Compares the share of dark pixels (darker than 0.6x the ring's median) in the mask's core (one pixel in from the edge,
    which blur and JPEG mix with the surroundings) with that in a ring just outside the mask.
    A mask shifted or grown by a few pixels off the painted object fails this.
    """
    k = np.ones((3, 3), np.uint8)
    m = mask.astype(np.uint8)
    core = cv2.erode(m, k).astype(bool)
    ring = cv2.dilate(m, k, iterations=3).astype(bool) & ~cv2.dilate(m, k).astype(bool) & ~others
    luma = _luma(image)
    dark = luma < 0.6 * float(np.median(luma[ring]))  # relative: some pictures are dimly lit
    inside, outside = float(dark[core].mean()), float(dark[ring].mean())
    return inside >= 0.3 and outside <= inside - 0.15


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "fuses"
    return generate_dataset(out, images=6, size=256, seed=3)


def _load(root: Path, split: str) -> dict:
    return json.loads((root / split / ANNOTATION_FILE).read_text(encoding="utf-8"))


def test_split_counts_follow_the_customers_export() -> None:
    assert split_counts(35) == (24, 7, 4)
    assert split_counts(3) == (1, 1, 1)
    assert sum(split_counts(100)) == 100
    with pytest.raises(SynthError, match="images"):
        split_counts(2)
    with pytest.raises(SynthError, match="splits"):
        split_counts(10, (0.5, 0.2, 0.2))


def test_render_image_is_deterministic_by_seed() -> None:
    a, objs_a = render_image(np.random.default_rng(7), 256)
    b, objs_b = render_image(np.random.default_rng(7), 256)
    c, _ = render_image(np.random.default_rng(8), 256)
    assert a.shape == (256, 256, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert [o["segmentation"] for o in objs_a] == [o["segmentation"] for o in objs_b]
    assert not np.array_equal(a, c)


def test_masks_are_the_polygons_and_the_pixels() -> None:
    n_objects = n_occluded = n_truncated = 0
    for seed in range(8):
        image, objects = render_image(np.random.default_rng(seed), 256)
        assert 1 <= len(objects) <= 8
        union = np.zeros((256, 256), bool)
        for obj in objects:
            # the mask is exactly what pycocotools makes of the polygons
            assert np.array_equal(obj["mask"], _raster(obj["segmentation"], 256, 256))
            assert obj["area"] == int(obj["mask"].sum()) > 0
            assert not (union & obj["mask"]).any(), "fuse neutrals never overlap"
            union |= obj["mask"]
            x, y, w, h = obj["bbox"]
            ys, xs = np.nonzero(obj["mask"])
            assert x - 1 <= xs.min() and xs.max() <= x + w + 1 and y - 1 <= ys.min() and ys.max() <= y + h + 1
            for poly in obj["segmentation"]:
                pts = np.asarray(poly).reshape(-1, 2)
                assert len(pts) >= 3 and pts.min() >= 0 and pts.max() <= 256
            n_objects += 1
            n_occluded += obj["occluded"]
            n_truncated += obj["truncated"]
        for obj in objects:
            # (a piece cut by the border or half hidden by a cable can be mostly brass bar: no contrast rule)
            if not obj["truncated"] and not obj["occluded"]:
                assert _looks_like_its_mask(image, obj["mask"], union & ~obj["mask"])

    # the set exercises every case: plain, cut by the border, hidden by a cable
    assert n_objects >= 16 and n_occluded >= 1 and n_truncated >= 1


def _body_colour_only_inside(image: np.ndarray, mask: np.ndarray, min_share: float = 0.3) -> bool:
    """The object's body colour (its mask's commonest colour) fills much of the mask, none around it."""
    colours, counts = np.unique(image[mask], axis=0, return_counts=True)
    body = colours[counts.argmax()]
    is_body = np.all(image == body, axis=2)
    around = cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool) & ~mask
    return bool(is_body[mask].mean() >= min_share and not is_body[around].any())


def test_masks_match_painted_pixels_exactly() -> None:
    """Without the camera effects the paint is exact: a mask one pixel off would show."""
    checked = 0
    for seed in range(5):
        image, objects = render_image(np.random.default_rng(seed), 256, camera_effects=False)
        for obj in objects:
            mask = obj["mask"]
            if obj["truncated"]:
                # a piece at the border may be mostly brass bar; np.roll wraps: no moved masks
                assert _body_colour_only_inside(image, mask, min_share=0.05)
                continue
            assert _body_colour_only_inside(image, mask)
            # (3 px down: the top rows carry the bevel highlight, not the body colour)
            for shift, axis in ((3, 0), (-1, 0), (1, 1), (-1, 1)):
                assert not _body_colour_only_inside(image, np.roll(mask, shift, axis=axis))
            checked += 1
    assert checked >= 16


def test_dataset_layout_and_roboflow_quirks(dataset: Path) -> None:
    assert sorted(p.name for p in dataset.iterdir()) == [
        "README.dataset.txt", "README.roboflow.txt", "test", "train", "valid",
    ]  # fmt: skip
    counts = {}
    originals = []
    repeated_closing = 0
    for split in ("train", "valid", "test"):
        data = _load(dataset, split)
        assert set(data) == {"info", "licenses", "categories", "images", "annotations"}
        assert data["info"]["description"].startswith("Exported from roboflow.com")
        assert data["licenses"][0]["id"] == 1
        assert data["categories"] == [
            {"id": 0, "name": "fuse-neutrals", "supercategory": "none"},
            {"id": 1, "name": "fuse neutrals", "supercategory": "fuse-neutrals"},
        ]
        counts[split] = len(data["images"])
        assert [im["id"] for im in data["images"]] == list(range(len(data["images"])))
        assert [a["id"] for a in data["annotations"]] == list(range(len(data["annotations"])))
        for im in data["images"]:
            m = ROBOFLOW_NAME.match(im["file_name"])
            assert m, im["file_name"]
            assert im["extra"]["name"] == f"{m['stem']}.{m['ext']}"
            assert (im["width"], im["height"]) == (256, 256)
            assert (dataset / split / im["file_name"]).stat().st_size > 1000
            originals.append(im["extra"]["name"])
        for ann in data["annotations"]:
            assert ann["category_id"] == 1, "the placeholder category 0 is never used"
            x, y, w, h = ann["bbox"]
            assert isinstance(x, int) and isinstance(y, int)
            assert ann["area"] == pytest.approx(w * h, abs=1e-2)
            assert ann["iscrowd"] == 0
            for poly in ann["segmentation"]:
                repeated_closing += poly[:2] == poly[-2:]
    assert counts == {"train": 4, "valid": 1, "test": 1}
    assert "fuse box (2).jpg" in originals
    assert repeated_closing >= 1


def test_every_split_loads_in_pycocotools_and_pixels_match(dataset: Path) -> None:
    checked = 0
    for split in ("train", "valid", "test"):
        coco = COCO(str(dataset / split / ANNOTATION_FILE))
        assert coco.getCatIds() == [0, 1]
        for image_id in coco.getImgIds():
            info = coco.loadImgs(image_id)[0]
            bgr = cv2.imread(str(dataset / split / info["file_name"]), cv2.IMREAD_COLOR)
            assert bgr is not None and bgr.shape == (256, 256, 3)
            anns = coco.loadAnns(coco.getAnnIds(imgIds=image_id))
            masks = [coco.annToMask(a).astype(bool) for a in anns]
            union = np.any(masks, axis=0) if masks else np.zeros((256, 256), bool)
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            for a, m in zip(anns, masks, strict=True):
                # a whole fuse neutral is one 16-point outline (17 with the closing point repeated);
                # pieces cut by the border or by a cable can be mostly brass bar: no contrast rule
                if len(a["segmentation"]) == 1 and len(a["segmentation"][0]) in (32, 34):
                    assert _looks_like_its_mask(rgb, m, union & ~m)
                    checked += 1
    assert checked >= 10


def test_same_seed_same_bytes_and_other_seed_differs(dataset: Path, tmp_path: Path) -> None:
    again = generate_dataset(tmp_path / "again", images=6, size=256, seed=3)
    other = generate_dataset(tmp_path / "other", images=3, size=128, seed=4)
    files = sorted(p.relative_to(dataset) for p in dataset.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for rel in files:
        assert (dataset / rel).read_bytes() == (again / rel).read_bytes(), rel
    assert _load(dataset, "train") != _load(other, "train")


def test_refuses_a_folder_in_use_and_leaves_it_alone(tmp_path: Path) -> None:
    out = tmp_path / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(SynthError, match="busy"):
        generate_dataset(out, images=3, size=128)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy"], "no temporary folder left behind"
    for bad, field in (({"images": 2}, "images"), ({"size": 16}, "size"), ({"seed": -1}, "seed")):
        with pytest.raises(SynthError, match=field):
            generate_dataset(tmp_path / "new", **bad)
        assert not (tmp_path / "new").exists()


def test_an_empty_folder_is_filled(tmp_path: Path) -> None:
    out = tmp_path / "empty"
    out.mkdir()
    generate_dataset(out, images=3, size=128, seed=1)
    assert (out / "train" / ANNOTATION_FILE).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]


def test_coco_stress_is_valid_and_has_the_quirks(tmp_path: Path) -> None:
    out = generate_coco_stress(50, 400, tmp_path / "big" / "stress.json", seed=1)
    data = json.loads(out.read_text())
    assert len(data["images"]) == 50 and len(data["annotations"]) == 400
    assert data["images"][0]["id"] == 0 and data["annotations"][0]["id"] == 0
    assert [c["id"] for c in data["categories"]] == [0, 1]
    closing = 0
    for ann in data["annotations"]:
        x, y, w, h = ann["bbox"]
        assert isinstance(x, int) and isinstance(y, int) and ann["area"] == pytest.approx(w * h, abs=1e-2)
        pts = np.asarray(ann["segmentation"][0]).reshape(-1, 2)
        assert pts.min() >= 0 and pts.max() <= 512
        assert x <= pts[:, 0].min() < x + 1 and pts[:, 0].max() == pytest.approx(
            pts[:, 0].min() + w, abs=1e-2
        )
        closing += bool(np.array_equal(pts[0], pts[-1]))
    assert 0 < closing < 400
    coco = COCO(str(out))
    assert len(coco.getAnnIds()) == 400
    assert out.read_bytes() == generate_coco_stress(50, 400, tmp_path / "again.json", seed=1).read_bytes()
    with pytest.raises(SynthError, match="n_images"):
        generate_coco_stress(0, 10, tmp_path / "bad.json")
    assert not (tmp_path / "bad.json").exists()


def test_synth_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    assert main(["synth", str(out), "--images", "3", "--size", "128", "--seed", "2"]) == 0
    assert "train/valid/test 1/1/1" in capsys.readouterr().out
    assert len(_load(out, "valid")["images"]) == 1
    assert main(["synth", str(out), "--images", "3"]) == 1
    assert "already exists" in capsys.readouterr().err


def test_output_reads_back_through_the_importer(dataset: Path) -> None:
    from fusereview.core.coco import load_dataset, validate_dataset

    loaded = load_dataset(dataset)
    assert loaded.layout == "roboflow"
    assert [c["name"] for c in loaded.real_categories()] == ["fuse neutrals"]
    assert validate_dataset(dataset) == []
