"""A results file given to ``fusereview eval --predictions``: every bad value is a clear refusal.

Issue 11, defect 5: an RLE whose counts sum past height x width made pycocotools' ``computeIoU``
loop forever; garbage counts (``"ÿÿÿ"``) were evaluated as some mask without a word.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from coco_samples import make_split
from pycocotools import mask as mask_utils

from fusereview.cli import main
from fusereview.core.rle_check import check_rle_strings
from fusereview.evaluation.remap import EvaluationInputError, remap

H, W = 48, 64


@pytest.fixture(scope="module")
def gt_json(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_split(tmp_path_factory.mktemp("gt") / "test", 2, quirks=False)


def _gt(gt_json: Path) -> dict[str, Any]:
    return json.loads(gt_json.read_text())


def _rle(mask: np.ndarray) -> dict[str, Any]:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def _good(image_id: int = 1) -> dict[str, Any]:
    m = np.zeros((H, W), bool)
    m[5:20, 5:30] = True
    return {
        "image_id": image_id,
        "category_id": 1,
        "score": 0.9,
        "bbox": [5, 5, 25, 15],
        "segmentation": _rle(m),
    }


def _too_long_counts() -> str:
    # runs that add up to far more than 48 x 64: pycocotools loops in computeIoU
    return _rle(np.ones((H * 50, W), bool))["counts"]


BAD_RESULTS: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "counts-past-the-image",
        {"segmentation": {"size": [H, W], "counts": ""}},
        "segmentation.counts",
        "cover",
    ),
    (
        "garbage-counts",
        {"segmentation": {"size": [H, W], "counts": "ÿÿÿ"}},
        "segmentation.counts",
        "character",
    ),
    (
        "truncated-counts",
        {"segmentation": {"size": [H, W], "counts": "P"}},
        "segmentation.counts",
        "truncated",
    ),
    (
        "counts-not-string",
        {"segmentation": {"size": [H, W], "counts": 5}},
        "segmentation.counts",
        "string or",
    ),
    (
        "size-strings",
        {"segmentation": {"size": ["48", "64"], "counts": "x"}},
        "segmentation.size",
        "two integers",
    ),
    (
        "list-counts-negative",
        {"segmentation": {"size": [H, W], "counts": [-5, H * W + 5]}},
        "segmentation.counts",
        "negative",
    ),
    (
        "polygon-strings",
        {"segmentation": [[1, 2, "3", 4, 5, 6]]},
        "segmentation[0]",
        "finite pixel coordinates",
    ),
    ("polygon-nan", {"segmentation": [[1, 2, float("nan"), 4, 5, 6]]}, "segmentation[0]", "finite pixel"),
    ("polygon-huge", {"segmentation": [[1, 2, 1e300, 4, 5, 6]]}, "segmentation[0]", "finite pixel"),
    ("polygon-odd", {"segmentation": [[1, 2, 3, 4, 5, 6, 7]]}, "segmentation[0]", "even number"),
    ("bbox-negative", {"bbox": [1, 1, -4, 3]}, "bbox", "w, h >= 0"),
    ("bbox-huge-int", {"bbox": [10**400, 1, 4, 3]}, "bbox", "finite numbers"),
    ("score-huge-int", {"score": 10**400}, "score", "not a number"),
    ("score-nan", {"score": float("nan")}, "score", "not a number"),
    ("score-string", {"score": "0.9"}, "score", "not a number"),
    ("image-id-list", {"image_id": [1]}, "image_id", "not in the ground truth"),
]


@pytest.mark.timeout(60)  # the first case once hung pycocotools forever
@pytest.mark.parametrize(("case", "change", "where", "words"), BAD_RESULTS, ids=[c[0] for c in BAD_RESULTS])
def test_bad_result_is_refused_naming_its_index(
    gt_json: Path, case: str, change: dict[str, Any], where: str, words: str
) -> None:
    if case == "counts-past-the-image":
        change = {"segmentation": {"size": [H, W], "counts": _too_long_counts()}}
    results = [_good(), _good(2), {**_good(), **change}]
    with pytest.raises(EvaluationInputError) as info:
        remap(_gt(gt_json), results, iou_type="segm", results_name="res.json")
    problem = info.value.problem
    assert (problem.file, problem.where) == ("res.json", f"[2].{where}")
    assert words in problem.message
    assert info.value.file == "res.json" and info.value.field == f"[2].{where}"


@pytest.mark.timeout(120)
def test_cli_eval_predictions_with_an_overlong_rle_is_one_line(
    gt_json: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = [_good(), {**_good(2), "segmentation": {"size": [H, W], "counts": _too_long_counts()}}]
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    assert main(["eval", str(gt_json), "--predictions", str(path), "--iou-type", "segm"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    line = next(line for line in err.splitlines() if line.startswith("fusereview eval:"))
    assert str(path) in line and "[1].segmentation.counts" in line


@pytest.mark.parametrize("text", ["[" * 5000 + "]" * 5000, '[{"image_id": 1e400}]', "[" + "9" * 5000 + "]"])
def test_results_json_that_python_cannot_hold_is_one_line(
    gt_json: Path, tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "results.json"
    path.write_text(text)
    assert main(["eval", str(gt_json), "--predictions", str(path)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and str(path) in err


def test_good_results_still_evaluate(gt_json: Path) -> None:
    data = remap(_gt(gt_json), [_good(), _good(2)], iou_type="segm")
    assert len(data.results) == 2


def test_vectorised_rle_check_agrees_with_pycocotools_encoding() -> None:
    rng = np.random.default_rng(0)
    strings, sizes = [], []
    for _ in range(200):
        h, w = (int(v) for v in rng.integers(1, 120, 2))
        m = rng.random((h, w)) < rng.random()
        strings.append(_rle(m)["counts"])
        sizes.append((h, w))
    assert check_rle_strings(strings, sizes) == [None] * 200
    wrong = [(h + 1, w) for h, w in sizes]
    assert all(r is not None and "cover" in r for r in check_rle_strings(strings, wrong))
