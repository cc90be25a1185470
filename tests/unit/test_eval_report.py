"""The run report, from a run folder synthesised in the documented format (docs/CONTRACTS.md)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from fusereview.core.coco import load_dataset, resolve_image_path
from fusereview.core.synthetic import generate_dataset
from fusereview.evaluation import METRIC_NAMES, run_evaluation
from fusereview.evaluation.figures import Series, curve_colors, line_figure, save_figure
from fusereview.evaluation.report import write_report
from fusereview.evaluation.run_folder import RunFolderError, read_run, write_evaluation_file


def metric_block(ap: float) -> dict[str, float | None]:
    block: dict[str, float | None] = {n: round(ap * (0.9 + 0.01 * i), 4) for i, n in enumerate(METRIC_NAMES)}
    block["APl"] = None  # no large objects: must show as N/A
    block["ARl"] = None
    return block


def make_run(root: Path, dataset: Path) -> Path:
    run = root / "run-20261127-100000"
    (run / "checkpoints" / "best").mkdir(parents=True)
    (run / "checkpoints" / "last").mkdir(parents=True)
    (run / "checkpoints" / "best" / "model.safetensors").write_bytes(b"\0" * 2048)
    (run / "checkpoints" / "last" / "model.safetensors").write_bytes(b"\0" * 2048)
    (run / "checkpoints" / "last" / "trainer_state.pt").write_bytes(b"\0" * 512)
    t0 = 1_790_000_000.0
    config = {
        "preset": "tiny",
        "epochs": 12,
        "batch_size": 2,
        "lr": 1e-4,
        "model_spec": "tiny",
        "project": str(dataset),
        "started_at": t0,
    }
    (run / "config.json").write_text(json.dumps(config))
    (run / "env.json").write_text(
        json.dumps({"python": "3.11", "torch": "2.x", "device": "cpu", "gpu_name": None})
    )
    lines: list[dict[str, Any]] = []
    step = 0
    aps = [0.1, 0.3, 0.5, 0.45, 0.4, 0.42, 0.38, 0.41, 0.39, 0.4, 0.37, 0.38]  # best at epoch 3 of 12
    for epoch in range(12):
        for _ in range(3):
            step += 1
            loss = 3.0 * math.exp(-step / 10)
            lines.append({"type": "step", "step": step, "epoch": epoch + 0.5, "time": t0 + step * 2, "lr": 1e-4, "loss": loss,
                          "loss_ce": loss / 2, "loss_bbox": loss / 4, "loss_giou": loss / 8, "loss_presence": 0.1,
                          "loss_mask": loss / 5, "loss_dice": loss / 6, "loss_aux": 0.0, "images_per_s": 4.0, "gpu_mem_gb": None})  # fmt: skip
        lines.append(
            {"type": "epoch", "epoch": epoch + 1, "time": t0 + step * 2, "seconds": 6.0, "loss": loss}
        )
        lines.append({"type": "val", "step": step, "epoch": epoch + 1, "time": t0 + step * 2 + 1, "split": "valid",
                      "bbox": metric_block(aps[epoch]), "segm": metric_block(aps[epoch] * 0.8)})  # fmt: skip
    lines.append(
        {
            "type": "end",
            "status": "finished",
            "message": "done",
            "best_epoch": 3,
            "best_map": 0.5,
            "time": t0 + 100,
        }
    )
    text = (
        "".join(json.dumps(r) + "\n" for r in lines) + '{"type": "step", "step": 9'
    )  # a half-written last line
    (run / "metrics.jsonl").write_text(text)
    return run


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_dataset(tmp_path_factory.mktemp("ds") / "fuses", images=12, size=128, seed=1)


def add_test_evaluation(run: Path, dataset_dir: Path) -> None:
    split = load_dataset(dataset_dir).splits["test"]
    gt = split.data
    results = []
    for k, a in enumerate(gt["annotations"]):
        if k % 3 == 2:
            continue  # a miss
        x, y, w, h = a["bbox"]
        results.append(
            {
                "image_id": a["image_id"],
                "category_id": a["category_id"],
                "bbox": [x + 1, y, w, h],
                "score": 0.9 - 0.01 * k,
            }
        )
    img = gt["images"][0]
    results.append(
        {
            "image_id": img["id"],
            "category_id": gt["annotations"][0]["category_id"],
            "bbox": [1, 1, 10, 10],
            "score": 0.3,
        }
    )
    paths = {im["id"]: str(resolve_image_path(split, im["file_name"])) for im in gt["images"]}
    ev = run_evaluation(gt, results, iou_type="bbox", image_paths=paths)
    write_evaluation_file(
        run / "eval" / "test.json", {"bbox": ev}, split="test", model=str(run / "checkpoints" / "best")
    )


def test_report_from_synthesised_run(tmp_path: Path, dataset: Path) -> None:
    run = make_run(tmp_path, dataset)
    add_test_evaluation(run, dataset)
    result = write_report(run)
    text = result.markdown.read_text()
    assert result.markdown == run / "report.md"
    for section in ("## Configuration", "## Dataset", "## Timeline", "## Memory", "## Validation metrics by epoch",
                    "## Final and test-split metrics", "### Per-size AP", "## Checkpoints", "## Recommendations", "### Worst images"):  # fmt: skip
        assert section in text, section
    assert "Best epoch: **3**" in text
    # the start time reads as a date, not as a raw Unix time
    assert "| started_at | 2026-09-21 " in text and "1790000000" not in text
    assert "N/A" in text and "-1.000" not in text
    assert "checkpoints/last/trainer_state.pt" in text and "512 B" in text
    assert "test (best)" in text
    # recommendations derived from the numbers
    assert any("peaked at epoch 3 of 12" in r for r in result.recommendations)
    assert any("validation split has" in r for r in result.recommendations)
    # plots: loss, val metrics, PR curve, at least one worst image; each exists and is not blank
    names = {p.name for p in result.images}
    assert {"loss.png", "val_metrics.png", "pr_curve.png"} <= names
    assert any(n.startswith("worst_") for n in names)
    for p in result.images:
        assert p.exists() and f"]({p.relative_to(run).as_posix()})" in text
        img = cv2.imread(str(p))
        assert img is not None and img.shape[0] > 20
        assert float(img.std()) > 5.0, f"{p.name} is blank"
        packed = img[..., 0].astype(np.int32) << 16 | img[..., 1].astype(np.int32) << 8 | img[..., 2]
        assert np.unique(packed).size > 10  # more than a few flat colours: something was drawn


def test_report_without_evaluation_or_dataset(tmp_path: Path) -> None:
    run = make_run(tmp_path, tmp_path / "gone")
    out = tmp_path / "elsewhere" / "r.md"
    result = write_report(run, out)
    text = out.read_text()
    assert "Not available: the project or dataset" in text
    assert "fusereview eval" in text  # tells how to add test metrics
    assert all(p.parent == out.parent / "r_images" for p in result.images)


def test_missing_config_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RunFolderError, match=r"config\.json: missing"):
        read_run(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(RunFolderError, match=r"config\.json: cannot be read as JSON"):
        read_run(tmp_path)
    assert not (tmp_path / "report.md").exists()


def test_corrupt_metrics_line_is_reported_not_fatal(tmp_path: Path) -> None:
    run = make_run(tmp_path, tmp_path / "gone")
    lines = (run / "metrics.jsonl").read_text().split("\n")
    lines[1] = "garbage"
    (run / "metrics.jsonl").write_text("\n".join(lines))
    data = read_run(run)
    assert data.bad_lines == [2]
    assert "lines [2] are not JSON records" in write_report(run).markdown.read_text()


def test_line_figure_writes_a_png_with_gaps(tmp_path: Path) -> None:
    fig = line_figure(
        [Series("a", [0, 1, 2], [1.0, None, 3.0]), Series("b", [0, 1, 2], [2, 2, 2])], size=(3, 2)
    )
    assert [label for label, _ in curve_colors(fig)] == ["a", "b"]
    out = save_figure(fig, tmp_path / "f.png")
    img = cv2.imread(str(out))
    assert img.shape == (200, 300, 3) and float(img.std()) > 5.0


def test_recommendations_follow_the_numbers(tmp_path: Path) -> None:
    from fusereview.evaluation.report import SplitStats, recommendations

    run = read_run(make_run(tmp_path, tmp_path / "gone"))
    gt = {
        "images": [{"id": i, "file_name": f"{i}.jpg", "width": 100, "height": 100} for i in range(4)],
        "categories": [{"id": 0, "name": "fuse"}],
        "annotations": [
            {"id": i, "image_id": i, "category_id": 0, "bbox": [10, 10, 40, 40], "area": 1600, "iscrowd": 0}
            for i in range(4)
        ],
    }
    one_hit = [{"image_id": 0, "category_id": 0, "bbox": [10, 10, 40, 40], "score": 0.9}]
    ev = run_evaluation(gt, one_hit)  # AP 0.26 on test against 0.45 on valid; 3 of 4 missed
    big = {"valid": SplitStats(500, 2000, {"small": 10, "medium": 1000, "large": 990}, {"fuse": 2000}, 0)}
    recs = recommendations(run, big, ev, "test")
    assert any("well below the best validation AP 0.450" in r for r in recs)
    assert any(
        "Misses dominate at score >= 0.90 (best F1 of this model) (3 missed vs 0 false" in r for r in recs
    )
    assert not any("validation split has" in r for r in recs)  # 500 images is enough
    assert not any("well below" in r for r in recommendations(run, big, ev, "valid"))
