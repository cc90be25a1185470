"""`predict --out` writes the dataset's own COCO ids, one file per split, that the user's tools accept.

Was: without --split, one file with the project's image ids (from 1), which pycocotools' loadRes
refused against the user's json ("Results do not correspond to current coco set"), as did eval.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
from pathlib import Path

import pytest
from pycocotools.coco import COCO

from fusereview.cli import main
from fusereview.core.synthetic import generate_dataset


def _load_res(gt_json: Path, results: list[dict]) -> COCO:
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_json))
        return gt.loadRes(copy.deepcopy(results))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_dataset(tmp_path_factory.mktemp("ids") / "fuses", images=12, size=96, seed=5)


def test_every_split_gets_a_file_that_loads_against_the_users_json(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "res.json"
    args = ["predict", str(dataset), "--model", "tiny", "--threshold", "0.05", "--out", str(out)]
    assert main([*args, "--project-dir", str(tmp_path / "proj")]) == 0
    capsys.readouterr()
    for split in ("train", "valid", "test"):
        path = tmp_path / f"res.{split}.json"
        results = json.loads(path.read_text())
        gt_json = dataset / split / "_annotations.coco.json"
        user = json.loads(gt_json.read_text())
        # every image of the split has detections at this threshold: the largest id is in use,
        # so project ids (1..n) could not pass for COCO ids (0..n-1)
        assert {r["image_id"] for r in results} == {im["id"] for im in user["images"]}
        assert {r["category_id"] for r in results} <= {c["id"] for c in user["categories"]}
        dt = _load_res(gt_json, results)
        assert len(dt.anns) == len(results)
    assert not out.exists()
    # and eval takes each back
    code = main(["eval", str(dataset), "--split", "valid", "--predictions", str(tmp_path / "res.valid.json")])
    assert code == 0, capsys.readouterr().err
    assert "Average Precision" in capsys.readouterr().out


def test_a_single_json_dataset_gets_one_file_with_its_ids(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gt_json = dataset / "valid" / "_annotations.coco.json"
    out = tmp_path / "single.json"
    args = ["predict", str(gt_json), "--model", "tiny", "--threshold", "0.05", "--out", str(out)]
    assert main([*args, "--project-dir", str(tmp_path / "proj1")]) == 0
    capsys.readouterr()
    results = json.loads(out.read_text())
    user = json.loads(gt_json.read_text())
    assert {r["image_id"] for r in results} == {im["id"] for im in user["images"]}
    assert len(_load_res(gt_json, results).anns) == len(results)
    assert main(["eval", str(gt_json), "--predictions", str(out), "--iou-type", "bbox"]) == 0
    capsys.readouterr()


def test_a_given_split_writes_exactly_the_file_named(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "test_only.json"
    args = ["predict", str(dataset), "--model", "tiny", "--threshold", "0.05", "--split", "test"]
    assert main([*args, "--out", str(out), "--project-dir", str(tmp_path / "proj2")]) == 0
    capsys.readouterr()
    results = json.loads(out.read_text())
    gt_json = dataset / "test" / "_annotations.coco.json"
    assert results and len(_load_res(gt_json, results).anns) == len(results)
    assert sorted(p.name for p in tmp_path.glob("test_only*")) == ["test_only.json"]
