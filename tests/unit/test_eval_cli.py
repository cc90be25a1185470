"""The eval, compare and report commands on a synthetic Roboflow dataset (ids from 0)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fusereview.cli import main
from fusereview.core.coco import load_dataset
from fusereview.core.synthetic import generate_dataset
from fusereview.evaluation.compare import compare, image_status
from fusereview.evaluation.run_folder import read_evaluation_file


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_dataset(tmp_path_factory.mktemp("cli") / "fuses", images=20, size=128, seed=2)


def results_for(
    gt: dict[str, Any], *, skip_image: int | None = None, jitter: float = 1.0
) -> list[dict[str, Any]]:
    out = []
    for k, a in enumerate(gt["annotations"]):
        if a["image_id"] == skip_image:
            continue
        x, y, w, h = a["bbox"]
        out.append(
            {
                "image_id": a["image_id"],
                "category_id": a["category_id"],
                "bbox": [x + jitter, y, w, h],
                "score": 0.95 - 0.001 * k,
            }
        )
    return out


def write(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data))
    return path


def test_eval_prints_table_and_errors_and_writes_json(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gt = load_dataset(dataset).splits["test"].data
    first = gt["images"][0]["id"]
    res = write(tmp_path / "res.json", results_for(gt, skip_image=first))
    out = tmp_path / "eval.json"
    code = main(["eval", str(dataset), "--predictions", str(res), "--iou-type", "bbox", "--json", str(out)])
    text = capsys.readouterr().out
    assert code == 0
    assert "Average Precision  (AP) @[ IoU=0.50      | area=   all | maxDets=100 ]" in text
    n_missed = sum(1 for a in gt["annotations"] if a["image_id"] == first)
    assert f"0 false positives, 0 duplicates, {n_missed} missed" in text
    assert "images with errors at IoU 0.5: 1 of" in text
    saved = read_evaluation_file(out)
    assert saved.split == "test" and set(saved.evaluations) == {"bbox"}
    ev = saved.evaluations["bbox"]
    assert ev.errors(0.5).totals.fn == n_missed
    assert ev.image_paths and all(Path(p).exists() for p in ev.image_paths.values())


def test_eval_bad_results_is_one_line_error_and_writes_nothing(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gt = load_dataset(dataset).splits["test"].data
    res = results_for(gt)
    res[1]["image_id"] = 4242
    path = write(tmp_path / "bad.json", res)
    out = tmp_path / "eval.json"
    assert main(["eval", str(dataset), "--predictions", str(path), "--json", str(out)]) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]  # (a note about box-only results may precede it)
    assert last.startswith("fusereview eval: ") and "bad.json: [1].image_id: image 4242" in last
    assert not out.exists()


def test_eval_unknown_split_lists_splits(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path / "r.json", [])
    assert main(["eval", str(dataset), "--predictions", str(path), "--split", "holdout"]) == 1
    assert "no split 'holdout'" in capsys.readouterr().err


def test_eval_on_project_equals_eval_on_dataset(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fusereview.core.project import Project

    project = Project.create(tmp_path / "proj", load_dataset(dataset))
    project.close()
    gt = load_dataset(dataset).splits["valid"].data
    res = write(tmp_path / "res.json", results_for(gt, jitter=2.0))
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert (
        main(
            [
                "eval",
                str(dataset),
                "--split",
                "valid",
                "--predictions",
                str(res),
                "--iou-type",
                "bbox",
                "--json",
                str(a),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "eval",
                str(tmp_path / "proj"),
                "--split",
                "valid",
                "--predictions",
                str(res),
                "--iou-type",
                "bbox",
                "--json",
                str(b),
            ]
        )
        == 0
    )
    capsys.readouterr()
    ea, eb = read_evaluation_file(a).evaluations["bbox"], read_evaluation_file(b).evaluations["bbox"]
    assert ea.metrics.values == eb.metrics.values
    assert ea.metrics["AP50"] is not None and ea.metrics["AP50"] > 0.5


def test_compare_fixed_and_broken(dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gt = load_dataset(dataset).splits["valid"].data
    ids = [im["id"] for im in gt["images"] if any(a["image_id"] == im["id"] for a in gt["annotations"])]
    a = write(tmp_path / "a.json", results_for(gt, skip_image=ids[0]))  # A misses image ids[0]
    b = write(tmp_path / "b.json", results_for(gt, skip_image=ids[1]))  # B misses ids[1] instead
    out = tmp_path / "cmp.json"
    code = main(
        [
            "compare",
            str(dataset),
            "--split",
            "valid",
            "--predictions",
            str(a),
            "--predictions",
            str(b),
            "--json",
            str(out),
        ]
    )
    text = capsys.readouterr().out
    assert code == 0
    data = json.loads(out.read_text())
    status = {d["image_id"]: d["status"] for d in data["images"]}
    assert status[ids[0]] == "fixed" and status[ids[1]] == "broken"
    assert data["status_counts"]["fixed"] == 1 and data["status_counts"]["broken"] == 1
    assert "fixed:" in text and "broken:" in text and "AP50" in text
    # the same from saved evaluations, without the dataset
    ea, eb = tmp_path / "ea.json", tmp_path / "eb.json"
    main(
        [
            "eval",
            str(dataset),
            "--split",
            "valid",
            "--predictions",
            str(a),
            "--iou-type",
            "bbox",
            "--json",
            str(ea),
        ]
    )
    main(
        [
            "eval",
            str(dataset),
            "--split",
            "valid",
            "--predictions",
            str(b),
            "--iou-type",
            "bbox",
            "--json",
            str(eb),
        ]
    )
    capsys.readouterr()
    assert main(["compare", "--evaluation", str(ea), "--evaluation", str(eb)]) == 0
    assert "images: 1 fixed, 1 broken" in capsys.readouterr().out


def test_compare_needs_two_sources(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", "x", "--model", "tiny"]) == 1
    assert "exactly two" in capsys.readouterr().err


def test_image_status_rules() -> None:
    assert [image_status(a, b) for a, b in ((2, 0), (0, 1), (3, 1), (1, 3), (2, 2), (0, 0))] == [
        "fixed", "broken", "better", "worse", "unchanged", "unchanged",
    ]  # fmt: skip


def test_compare_refuses_different_images(dataset: Path) -> None:
    from fusereview.core.errors import FusereviewError
    from fusereview.evaluation import run_evaluation

    d = load_dataset(dataset)
    va, te = d.splits["valid"].data, d.splits["test"].data
    with pytest.raises(FusereviewError, match="not of the same images"):
        compare(run_evaluation(va, results_for(va)), run_evaluation(te, results_for(te)))


def test_report_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"epochs": 1}))
    assert main(["report", str(run)]) == 0
    assert (run / "report.md").exists()
    assert main(["report", str(tmp_path / "nope")]) == 1
    assert "not a folder" in capsys.readouterr().err
