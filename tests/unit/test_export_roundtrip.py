"""COCO in, COCO out: a Roboflow export survives import and export unchanged, through the CLI too."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools.coco import COCO
from test_project import box_mask, make_project, make_roboflow

from fusereview.cli import main
from fusereview.core import geometry
from fusereview.core.project import Project, ProjectError
from fusereview.core.project_export import write_text_atomic
from fusereview.core.records import Detection, ReviewState
from fusereview.core.synthetic import generate_dataset

SPLITS = ("train", "valid", "test")


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def test_cli_roundtrip_is_exact_with_unknown_fields(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    dataset = make_roboflow(tmp_path / "fuses")
    project_dir = tmp_path / "proj"
    assert main(["import", str(dataset), "--project", str(project_dir)]) == 0
    assert "imported 7 images and 14 annotations" in capsys.readouterr().out
    out = tmp_path / "export"
    assert main(["export", str(project_dir), "--out", str(out)]) == 0
    for split in SPLITS:
        original = _load(dataset / split / "_annotations.coco.json")
        exported = _load(out / split / "_annotations.coco.json")
        # everything: info, licenses, custom top-level key, image extra, custom annotation keys,
        # the placeholder category, the ids (from 0), bbox, segmentation, area, iscrowd
        assert exported == original
        COCO(str(out / split / "_annotations.coco.json"))  # pycocotools loads it


def test_roboflow_quirks_keep_bbox_and_mask(tmp_path: Path) -> None:
    dataset = generate_dataset(tmp_path / "synth", images=5, size=96, seed=3)
    out = tmp_path / "export"
    with Project.open_or_import(dataset) as project:
        project.export_coco(out)
    for split in SPLITS:
        src = dataset / split / "_annotations.coco.json"
        original, exported = _load(src), _load(out / split / "_annotations.coco.json")
        assert exported["categories"] == original["categories"]  # placeholder kept
        assert exported["images"] == original["images"]
        assert [a["id"] for a in exported["annotations"]] == [a["id"] for a in original["annotations"]]
        gt, back = COCO(str(src)), COCO(str(out / split / "_annotations.coco.json"))
        for a, b in zip(original["annotations"], exported["annotations"], strict=True):
            assert b["bbox"] == a["bbox"]
            assert b["segmentation"] == a["segmentation"]
            assert np.array_equal(gt.annToMask(a), back.annToMask(b))


def test_reviewed_annotations_are_exported_with_new_ids(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    image = project.images("train")[0]
    holed = Detection((4, 4, 30, 30), 0.7, box_mask(4, 4, 30, 30, hole=True), 1, "fuse neutrals")
    yy, xx = np.mgrid[:64, :64]
    # a disk, not a rectangle: the loader takes an area equal to the bbox area for Roboflow's quirk
    disk = geometry.mask_to_rle((yy - 45) ** 2 + (xx - 45) ** 2 <= 36)
    solid = Detection((39, 39, 52, 52), 0.4, disk, 1, "fuse neutrals")
    p1, p2 = project.store_predictions(image.id, "tiny-1", "k", [holed, solid])
    project.decide(p1.id, ReviewState.ACCEPTED)
    project.decide(p2.id, ReviewState.ACCEPTED)
    data = project.to_coco_dict("train")
    new = data["annotations"][-2:]
    assert [a["id"] for a in new] == [8, 9]  # train held annotation ids 0..7
    assert all(a["image_id"] == 0 and a["iscrowd"] == 0 for a in new)
    assert isinstance(new[0]["segmentation"], dict) and isinstance(new[1]["segmentation"], list)
    assert new[0]["area"] == geometry.rle_area(p1.mask) and new[1]["area"] == geometry.rle_area(disk)
    assert new[0]["fusereview"] == {"model": "tiny-1", "score": 0.7, "prediction_id": p1.id}
    (written,) = project.export_coco(tmp_path / "train.json", split="train")
    coco = COCO(str(written))
    assert coco.annToMask(coco.anns[8]).sum() == geometry.rle_area(p1.mask)
    # export -> import -> export is stable
    again = Project.create(tmp_path / "again", _single_dataset(written))
    assert again.to_coco_dict() == _load(written)
    project.close()
    again.close()


def _single_dataset(path: Path):  # a one-json dataset, loaded the way the CLI loads it
    from fusereview.core.coco import load_dataset

    return load_dataset(path)


def test_merged_file_uses_unique_ids_and_split_folders(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    (written,) = project.export_coco(tmp_path / "all.json")
    data = _load(written)
    assert len(data["images"]) == 7 and len({im["id"] for im in data["images"]}) == 7
    assert len({a["id"] for a in data["annotations"]}) == 14
    root = project.dataset_root
    assert all((root / im["file_name"]).is_file() for im in data["images"])
    assert data["images"][4]["file_name"].startswith("valid/")
    coco = COCO(str(written))
    assert len(coco.getAnnIds(imgIds=[data["images"][-1]["id"]])) == 2
    project.close()


def test_only_reviewed_drops_images_with_pending_predictions(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    project = make_project(tmp_path)
    first, _second = project.images("valid")
    (pending,) = project.store_predictions(first.id, "m", "k", [Detection((0, 0, 4, 4), 0.5, None, 1)])
    root = project.root
    project.close()
    out = tmp_path / "valid.json"
    assert main(["export", str(root), "--out", str(out), "--split", "valid", "--only-reviewed"]) == 0
    data = _load(out)
    assert [im["id"] for im in data["images"]] == [1]
    assert {a["image_id"] for a in data["annotations"]} == {1}
    with Project.open(root) as again:
        again.decide(pending.id, ReviewState.REJECTED)
        again.export_coco(out, split="valid", only_reviewed=True)
    assert [im["id"] for im in _load(out)["images"]] == [0, 1]
    assert len(list(tmp_path.glob("valid.json.bak-*"))) == 1  # the first export was kept


def test_atomic_write_leaves_target_alone_when_invalid(tmp_path: Path) -> None:
    out = tmp_path / "x.json"
    out.write_text('{"images": [], "annotations": [], "categories": []}')
    before = out.read_text()
    with pytest.raises(ProjectError, match="does not load in pycocotools"):
        write_text_atomic('{"images": [], "annotations": [{"image_id": 1}]', out)
    assert out.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["export", str(tmp_path), "--out", str(tmp_path / "o.json")]) == 1
    assert "not a project folder" in capsys.readouterr().err
    dataset = make_roboflow(tmp_path / "fuses")
    assert main(["import", str(dataset)]) == 0
    assert main(["import", str(dataset)]) == 1
    assert "already exists" in capsys.readouterr().err
    # a dataset path finds its project beside it
    assert main(["export", str(dataset), "--out", str(tmp_path / "t.json"), "--split", "test"]) == 0
    assert main(["export", str(dataset), "--out", str(tmp_path / "t.json"), "--split", "nope"]) == 1
    assert "no split 'nope'" in capsys.readouterr().err


def test_folder_export_replaces_no_split_unless_all_validate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path)
    out = tmp_path / "export"
    project.export_coco(out)
    before = {s: (out / s / "_annotations.coco.json").read_text() for s in SPLITS}
    project.add_annotation(project.images("train")[0].id, 1, bbox=[1, 1, 2, 2])
    project.add_annotation(project.images("test")[0].id, 1, bbox=[1, 1, 2, 2])
    from fusereview.core import project_export

    real = project_export.validate_with_pycocotools

    def fail_on_test(path: Path) -> None:
        if path.parent.name == "test":
            raise ProjectError(f"{path}: simulated failure")
        real(path)

    monkeypatch.setattr(project_export, "validate_with_pycocotools", fail_on_test)
    with pytest.raises(ProjectError, match="simulated failure"):
        project.export_coco(out)
    assert {s: (out / s / "_annotations.coco.json").read_text() for s in SPLITS} == before
    assert sorted(p.name for p in out.rglob("*")) == sorted([*SPLITS, *["_annotations.coco.json"] * 3])
    project.close()
