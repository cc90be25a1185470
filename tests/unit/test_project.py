"""The project database: import, reopen, images, prompts, annotations, predictions, decisions, runs."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from fusereview.core import geometry
from fusereview.core.coco import load_dataset
from fusereview.core.errors import DatasetError, FusereviewError
from fusereview.core.events import Event
from fusereview.core.project import Project, ProjectError, UnknownIdError, default_project_dir
from fusereview.core.records import Detection, ReviewState

SIZE = 64


def _polygon(x: float, y: float, w: float, h: float) -> list[list[float]]:
    return [[x, y, x + w, y, x + w, y + h, x, y + h]]


def make_split(name: str, n_images: int, *, first_ann_id: int = 0) -> dict[str, Any]:
    """One Roboflow-style COCO dict: ids from 0, placeholder class, unknown fields everywhere."""
    images, annotations = [], []
    ann_id = first_ann_id
    for i in range(n_images):
        images.append(
            {
                "id": i,
                "license": 1,
                "file_name": f"{name}_{i}_jpg.rf.abc.png",
                "height": SIZE,
                "width": SIZE,
                "date_captured": "2024-01-01T00:00:00+00:00",
                "extra": {"name": f"orig_{i}.jpg", "user_tags": ["t"]},
            }
        )
        for k in range(2):
            x, y = 4 + 20 * k, 6 + i
            annotations.append(
                {
                    "id": ann_id,
                    "image_id": i,
                    "category_id": 1,
                    "bbox": [x, y, 12, 10],
                    "area": 120,
                    "segmentation": _polygon(x, y, 12, 10),
                    "iscrowd": 0,
                    "custom_key": {"note": f"a{ann_id}"},
                }
            )
            ann_id += 1
    return {
        "info": {"year": "2024", "version": "3", "description": "Exported from roboflow.com"},
        "licenses": [{"id": 1, "url": "https://creativecommons.org/licenses/by/4.0/", "name": "CC BY 4.0"}],
        "categories": [
            {"id": 0, "name": "fuse-neutrals", "supercategory": "none"},
            {"id": 1, "name": "fuse neutrals", "supercategory": "fuse-neutrals"},
        ],
        "images": images,
        "annotations": annotations,
        "custom_top": [1, 2, 3],
    }


def make_roboflow(root: Path, counts: tuple[int, ...] = (4, 2, 1)) -> Path:
    """A Roboflow export folder with real (tiny) image files."""
    for name, n in zip(("train", "valid", "test"), counts, strict=False):
        folder = root / name
        folder.mkdir(parents=True)
        data = make_split(name, n)
        (folder / "_annotations.coco.json").write_text(json.dumps(data))
        for i, img in enumerate(data["images"]):
            pixels = np.full((SIZE, SIZE, 3), 40 * i, np.uint8)
            cv2.imwrite(str(folder / img["file_name"]), pixels)
    return root


def make_project(tmp_path: Path, counts: tuple[int, ...] = (4, 2, 1)) -> Project:
    dataset = make_roboflow(tmp_path / "fuses", counts)
    return Project.create(default_project_dir(dataset), load_dataset(dataset), source=dataset)


def box_mask(x0: int, y0: int, x1: int, y1: int, *, hole: bool = False) -> dict:
    m = np.zeros((SIZE, SIZE), bool)
    m[y0:y1, x0:x1] = True
    if hole:
        m[y0 + 3 : y1 - 3, x0 + 3 : x1 - 3] = False
    return geometry.mask_to_rle(m)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    p = make_project(tmp_path)
    yield p
    p.close()


# ------------------------------------------------------------------------------------------ create/open
def test_import_creates_project_beside_dataset(project: Project, tmp_path: Path) -> None:
    assert project.root == (tmp_path / "fuses.fusereview").resolve()
    assert {p.name for p in project.root.iterdir()} >= {"project.db", "runs", "models", "exports"}
    assert project.splits() == ["train", "valid", "test"]
    assert project.counts()["images"] == 7 and project.counts()["annotations"] == 14
    # the placeholder is hidden; the prompt defaults to the name
    cats = project.categories()
    assert [(c.id, c.name, c.prompt) for c in cats] == [(1, "fuse neutrals", "fuse neutrals")]
    # project ids are unique although every split numbers its images from 0
    ids = [im.id for im in project.images()]
    assert len(set(ids)) == 7
    valid = project.images("valid")
    assert [project.coco_image_id(im.id) for im in valid] == [0, 1]
    assert project.image_path(valid[0].id) == tmp_path / "fuses" / "valid" / "valid_0_jpg.rf.abc.png"
    assert Path(valid[0].path) == project.image_path(valid[0].id)


def test_reopen_is_instant_and_keeps_everything(project: Project) -> None:
    project.set_prompt(1, "brass neutral terminal")
    root = project.root
    project.close()
    again = Project.open(root)
    assert again.categories()[0].prompt == "brass neutral terminal"
    assert len(again.annotations()) == 14
    assert Project.open_or_import(root).root == root
    again.close()


def test_open_or_import_reuses_the_dataset_project(tmp_path: Path) -> None:
    dataset = make_roboflow(tmp_path / "fuses")
    first = Project.open_or_import(dataset)
    first.set_prompt(1, "neutral")
    first.close()
    second = Project.open_or_import(dataset)
    assert second.root == default_project_dir(dataset)
    assert second.categories()[0].prompt == "neutral"  # opened, not imported again
    second.close()


def test_create_refuses_existing_project(project: Project) -> None:
    dataset = load_dataset(project.dataset_root)
    with pytest.raises(ProjectError, match="already exists"):
        Project.create(project.root, dataset)


def test_open_errors_name_the_folder(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match="no project here"):
        Project.open(tmp_path)
    (tmp_path / "project.db").write_text("this is not sqlite, just text padding " * 20)
    with pytest.raises(ProjectError, match="not a fusereview project"):
        Project.open(tmp_path)


def test_bad_dataset_lists_fields_and_writes_nothing(tmp_path: Path) -> None:
    dataset = make_roboflow(tmp_path / "fuses")
    loaded = load_dataset(dataset)
    anns = loaded.splits["train"].data["annotations"]
    anns[1]["bbox"] = "wide"
    anns[3]["category_id"] = 42
    with pytest.raises(DatasetError) as info:
        Project.create(tmp_path / "proj", loaded)
    text = str(info.value)
    assert "annotations[1].bbox" in text and "train" in text
    assert [str(p.where) for p in info.value.problems] == [
        "annotations[1].bbox",
        "annotations[3].category_id",
    ]
    assert not (tmp_path / "proj").exists()  # nothing on disk: not even the folder


def test_bad_image_fields_and_non_finite_numbers(tmp_path: Path) -> None:
    dataset = make_roboflow(tmp_path / "fuses")
    loaded = load_dataset(dataset)
    valid = loaded.splits["valid"].data
    valid["images"][0]["width"] = 0
    valid["annotations"][2]["area"] = float("nan")
    valid["annotations"][3]["segmentation"] = [[1.0, float("inf"), 3.0, 4.0, 5.0, 6.0]]
    with pytest.raises(DatasetError) as info:
        Project.create(tmp_path / "proj", loaded)
    where = [p.where for p in info.value.problems]
    assert where == ["images[0].width", "annotations[0].image_id", "annotations[1].image_id",
                     "annotations[2].area", "annotations[3]"]  # fmt: skip
    assert "valid" in info.value.problems[0].file


def test_open_or_import_refuses_another_datasets_project(tmp_path: Path) -> None:
    one = make_roboflow(tmp_path / "one")
    two = make_roboflow(tmp_path / "two")
    Project.open_or_import(one, tmp_path / "shared").close()
    with pytest.raises(ProjectError, match="was imported from"):
        Project.open_or_import(two, tmp_path / "shared")


def test_set_prompt_emits_and_empty_means_name(project: Project) -> None:
    seen: list[Event] = []
    project.events.connect(seen.append)
    project.set_prompt(1, "  ")
    assert project.categories()[0].prompt == "fuse neutrals"
    assert seen == [Event("prompt_changed", (1,))]
    with pytest.raises(UnknownIdError, match="no category with id 0"):
        project.set_prompt(0, "placeholder is not a real class")


# ------------------------------------------------------------------------------------------ annotations
def test_add_update_delete_restore_annotation(project: Project) -> None:
    image = project.images("valid")[1]
    added = project.add_annotation(image.id, 1, segmentation=_polygon(10, 10, 20, 10))
    assert added.bbox == (10.0, 10.0, 20.0, 10.0) and added.area == 200.0 and added.iscrowd == 0
    # COCO ids: the split's largest + 1 (valid holds annotation ids 0..3)
    assert project.to_coco_dict("valid")["annotations"][-1]["id"] == 4
    moved = project.update_annotation(added.id, segmentation=_polygon(0, 0, 5, 4), category_id=1)
    assert moved.bbox == (0.0, 0.0, 5.0, 4.0) and moved.area == 20.0 and moved.geometry_edited_at
    deleted = project.delete_annotation(added.id)
    assert deleted == moved
    assert added.id not in [a.id for a in project.annotations(image.id)]
    project.restore_annotation(deleted)
    assert project.annotation(added.id) == moved
    assert project.to_coco_dict("valid")["annotations"][-1]["id"] == 4  # same COCO id after undo
    box_only = project.add_annotation(image.id, 1, bbox=[1, 2, 3, 4])
    assert box_only.segmentation == [] and box_only.area == 12.0
    assert project.to_coco_dict("valid")["annotations"][-1]["id"] == 5
    with pytest.raises(ValueError, match="a box or a segmentation"):
        project.add_annotation(image.id, 1)
    with pytest.raises(ValueError, match="no area"):
        project.add_annotation(image.id, 1, bbox=[1, 2, 0, 4])
    with pytest.raises(UnknownIdError):
        project.update_annotation(99999, bbox=[0, 0, 1, 1])


# ------------------------------------------------------------------------------------------ predictions
def _detections(cat: int = 1) -> list[Detection]:
    return [
        # no ground truth lies there (GT boxes of image 0: (4, 6, 12, 10) and (24, 6, 12, 10))
        Detection((44, 40, 56, 50), 0.35, box_mask(44, 40, 56, 50), cat, "fuse neutrals"),
        Detection((20, 20, 40, 44), 0.8, box_mask(20, 20, 40, 44, hole=True), cat, "fuse neutrals"),
        Detection((1, 1, 9, 7), 0.6, None, cat, "fuse neutrals"),
    ]


def test_prediction_cache_follows_image_bytes(project: Project) -> None:
    image = project.images()[0]
    assert project.cached_predictions(image.id, "m1", "k") is None
    stored = project.store_predictions(image.id, "m1", "k", _detections())
    assert [p.score for p in stored] == [0.35, 0.8, 0.6]
    assert stored[0].mask == box_mask(44, 40, 56, 50)
    assert project.image(image.id).content_hash  # hashed lazily when first cached
    assert project.cached_predictions(image.id, "m1", "k") == stored
    assert project.cached_predictions(image.id, "m1", "other-key") is None
    assert project.cached_predictions(image.id, "m2", "k") is None
    # an image with zero detections is cached too (an empty list, not None)
    other = project.images()[1]
    assert project.store_predictions(other.id, "m1", "k", []) == []
    assert project.cached_predictions(other.id, "m1", "k") == []
    # new bytes: the cache no longer counts
    Path(image.path).write_bytes(b"new bytes" * 10)
    assert project.cached_predictions(image.id, "m1", "k") is None
    Path(image.path).unlink()
    assert project.cached_predictions(image.id, "m1", "k") is None
    with pytest.raises(ProjectError, match="image file not found"):
        project.content_hash(image.id)


def test_restore_predictions_keeps_decided_ones(project: Project) -> None:
    image = project.images()[0]
    first = project.store_predictions(image.id, "m1", "k", _detections())
    project.decide(first[0].id, ReviewState.ACCEPTED)
    again = project.store_predictions(image.id, "m1", "k", _detections()[1:])
    remaining = project.predictions(image.id)
    assert [p.id for p in remaining] == [first[0].id] + [p.id for p in again]
    assert remaining[0].state is ReviewState.ACCEPTED
    # ids of replaced predictions are never handed out again
    assert min(p.id for p in again) > max(p.id for p in first)


def test_store_predictions_refuses_wrong_mask_size(project: Project) -> None:
    image = project.images()[0]
    bad = Detection((0, 0, 1, 1), 0.5, geometry.mask_to_rle(np.ones((8, 8), bool)), 1)
    with pytest.raises(ProjectError, match=r"detection 0: mask: RLE size is 8x8"):
        project.store_predictions(image.id, "m1", "k", [bad])
    assert project.predictions() == []


# ------------------------------------------------------------------------------------------ decisions
def test_accept_creates_linked_annotation_from_mask(project: Project) -> None:
    image = project.images()[0]
    solid, holed, box_only = project.store_predictions(image.id, "m1", "k", _detections())
    accepted = project.decide(solid.id, ReviewState.ACCEPTED, by="ana")
    assert accepted.state is ReviewState.ACCEPTED and accepted.decided_by == "ana" and accepted.decided_at
    ann = project.annotation(accepted.annotation_id)
    assert ann.source == "review" and ann.iscrowd == 0
    assert ann.area == 120.0 and ann.bbox == (44.0, 40.0, 12.0, 10.0)  # from the mask
    assert isinstance(ann.segmentation, list)  # no holes: polygons
    assert ann.extra == {"fusereview": {"model": "m1", "score": 0.35, "prediction_id": solid.id}}
    # a mask with a hole stays RLE (iscrowd 0), area from the mask
    h = project.annotation(project.decide(holed.id, ReviewState.ACCEPTED).annotation_id)
    assert isinstance(h.segmentation, dict) and h.iscrowd == 0
    assert h.area == geometry.rle_area(holed.mask)
    # a box-only prediction becomes its box: no segmentation, area w*h
    b = project.annotation(project.decide(box_only.id, ReviewState.ACCEPTED).annotation_id)
    assert b.bbox == (1.0, 1.0, 8.0, 6.0) and b.segmentation == [] and b.area == 48.0


def test_reject_and_reset_remove_the_annotation(project: Project) -> None:
    image = project.images()[0]
    pred = project.store_predictions(image.id, "m1", "k", _detections())[0]
    ann_id = project.decide(pred.id, "accepted").annotation_id
    reset = project.decide(pred.id, ReviewState.PENDING)
    assert reset.state is ReviewState.PENDING and reset.annotation_id is None
    with pytest.raises(UnknownIdError):
        project.annotation(ann_id)
    project.decide(pred.id, ReviewState.ACCEPTED)
    rejected = project.decide(pred.id, ReviewState.REJECTED, by="bo")
    assert rejected.annotation_id is None and len(project.annotations(image.id)) == 2
    with pytest.raises(ValueError, match="takes no box"):
        project.decide(pred.id, ReviewState.REJECTED, box=(0, 0, 1, 1))
    with pytest.raises(UnknownIdError, match="no prediction with id 777"):
        project.decide(777, ReviewState.ACCEPTED)


def test_edit_changes_geometry_and_keeps_edits_on_accept(project: Project) -> None:
    image = project.images()[0]
    pred = project.store_predictions(image.id, "m1", "k", _detections())[0]
    edited = project.decide(pred.id, ReviewState.ACCEPTED, mask=box_mask(30, 30, 40, 35))
    assert edited.state is ReviewState.EDITED
    ann = project.annotation(edited.annotation_id)
    assert ann.bbox == (30.0, 30.0, 10.0, 5.0) and ann.area == 50.0
    # a resized box clips the mask; bbox and area follow the mask; the annotation keeps its id
    boxed = project.decide(pred.id, ReviewState.EDITED, box=(32, 29, 41, 36))
    assert boxed.annotation_id == edited.annotation_id
    assert project.annotation(boxed.annotation_id).bbox == (32.0, 30.0, 8.0, 5.0)
    assert project.annotation(boxed.annotation_id).area == 40.0
    # accepting an edited prediction again keeps the edit
    again = project.decide(pred.id, ReviewState.ACCEPTED)
    assert again.state is ReviewState.EDITED
    assert project.annotation(again.annotation_id).bbox == (32.0, 30.0, 8.0, 5.0)
    with pytest.raises(ProjectError, match="edited mask size"):
        project.decide(pred.id, ReviewState.EDITED, mask=geometry.mask_to_rle(np.ones((4, 4), bool)))


def test_deleting_an_accepted_annotation_rejects_its_prediction(project: Project) -> None:
    image = project.images()[0]
    pred = project.store_predictions(image.id, "m1", "k", _detections())[0]
    ann_id = project.decide(pred.id, ReviewState.ACCEPTED).annotation_id
    removed = project.delete_annotation(ann_id)
    assert project.prediction(pred.id).state is ReviewState.REJECTED
    project.restore_annotation(removed)
    back = project.prediction(pred.id)
    assert back.state is ReviewState.ACCEPTED and back.annotation_id == ann_id
    project.update_annotation(ann_id, bbox=[44, 40, 6, 10])
    assert project.prediction(pred.id).state is ReviewState.EDITED
    assert project.annotation(ann_id).area == 60.0  # the mask was clipped to the new box


def test_decisions_are_committed_and_logged(project: Project) -> None:
    image = project.images()[0]
    preds = project.store_predictions(image.id, "m1", "k", _detections())
    project.decide(preds[0].id, ReviewState.ACCEPTED, by="ana")
    project.decide(preds[0].id, ReviewState.REJECTED, by="bo")
    # another connection (another process) sees it at once: it was committed
    with sqlite3.connect(project.db_path) as other:
        state = other.execute("SELECT state FROM predictions WHERE id = ?", (preds[0].id,)).fetchone()[0]
        log = other.execute("SELECT state, decided_by FROM decisions ORDER BY id").fetchall()
    assert state == "rejected"
    assert log == [("accepted", "ana"), ("rejected", "bo")]


def test_decide_many_is_all_or_nothing(project: Project) -> None:
    image = project.images()[0]
    preds = project.store_predictions(image.id, "m1", "k", _detections())
    with pytest.raises(UnknownIdError):
        project.decide_many([preds[0].id, 9999], ReviewState.ACCEPTED)
    assert all(p.state is ReviewState.PENDING for p in project.predictions())
    done = project.decide_many([p.id for p in preds] + [preds[0].id], ReviewState.ACCEPTED)
    assert [p.state for p in done] == [ReviewState.ACCEPTED] * 3
    assert project.counts()["accepted"] == 3
    assert len(project.annotations(image.id)) == 2 + 3  # one annotation each, not two


# ------------------------------------------------------------------------------------------ runs, settings
def test_runs_settings_and_active_model(project: Project, tmp_path: Path) -> None:
    run_id = project.add_run(tmp_path / "runs" / "r1", {"epochs": 2, "lr": 1e-4})
    project.update_run(run_id, status="finished", best_metric=0.5, best_model_path=tmp_path / "best")
    (run,) = project.runs()
    assert (
        run["status"] == "finished"
        and run["best_metric"] == 0.5
        and run["config"] == {"epochs": 2, "lr": 1e-4}
    )
    assert run["best_model_path"] == str(tmp_path / "best")
    with pytest.raises(ValueError, match="unknown fields"):
        project.update_run(run_id, colour="red")
    with pytest.raises(UnknownIdError):
        project.update_run(99, status="failed")
    assert project.active_model() is None
    project.set_active_model("runs/r1/checkpoints/best", "abc123", {"AP": 0.5})
    project.set_setting("threshold", 0.3)
    root = project.root
    project.close()
    with Project.open(root) as again:
        assert again.active_model() == {
            "spec": "runs/r1/checkpoints/best",
            "fingerprint": "abc123",
            "metrics": {"AP": 0.5},
        }
        assert again.get_setting("threshold") == 0.3 and again.get_setting("missing", 7) == 7


def test_errors_are_fusereview_errors() -> None:
    assert issubclass(ProjectError, FusereviewError) and issubclass(UnknownIdError, KeyError)
    assert str(UnknownIdError("no image with id 3")) == "no image with id 3"
