"""A report that reads its own evidence.

Was: with weak masks it said "No detection matched any of the 33 objects ... not usable yet"
while the boxes found 31 of 33; it called a steady 0 -> 0.169 -> 0.406 rise "swings by ±0.167 ...
the best epoch is partly chance"; it did not say "train longer" when the best epoch was the
last; two of its nine loss curves shared a colour.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from fusereview.cli import main
from fusereview.evaluation import METRIC_NAMES, run_evaluation
from fusereview.evaluation import report as report_mod
from fusereview.evaluation.figures import Series, curve_colors, loss_figure
from fusereview.evaluation.fixtures import make_case
from fusereview.evaluation.report import write_report
from fusereview.evaluation.run_folder import read_evaluation_file, write_evaluation_file

COMPONENTS = ("ce", "bbox", "giou", "presence", "mask", "dice", "semantic", "aux")


def _block(ap: float) -> dict[str, float | None]:
    return {n: ap for n in METRIC_NAMES}


def make_run(root: Path, aps: list[float]) -> Path:
    """A finished run folder with every loss component the engine logs and these val box APs."""
    run = root / "run"
    (run / "checkpoints" / "best").mkdir(parents=True)
    (run / "config.json").write_text(
        json.dumps({"preset": "fast", "epochs": len(aps), "project": str(root / "gone")})
    )
    lines: list[dict[str, Any]] = []
    step = 0
    for epoch, ap in enumerate(aps, start=1):
        for _ in range(4):
            step += 1
            rec = {
                "type": "step",
                "step": step,
                "epoch": epoch - 0.5,
                "time": 1e9 + step,
                "lr": 1e-4,
                "loss": 9.0 / step,
            }
            rec.update({f"loss_{c}": (k + 1) / step for k, c in enumerate(COMPONENTS)})
            lines.append(rec)
        lines.append(
            {"type": "epoch", "epoch": epoch, "step": step, "time": 1e9 + step, "seconds": 1.0, "loss": 1.0}
        )
        lines.append(
            {
                "type": "val",
                "step": step,
                "epoch": epoch,
                "time": 1e9 + step,
                "split": "valid",
                "bbox": _block(ap),
                "segm": _block(ap / 3),
            }
        )
    best = max(range(len(aps)), key=lambda i: aps[i]) + 1
    lines.append(
        {
            "type": "end",
            "time": 1e9 + step + 1,
            "status": "finished",
            "message": "ok",
            "best_epoch": best,
            "best_map": max(aps),
        }
    )
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    return run


def _boxes_right_masks_wrong(gt: dict) -> list[dict]:
    """Every box exact, every mask a speck in the corner (weak masks of a model that finds the objects)."""
    speck = np.zeros((512, 512), dtype=np.uint8, order="F")
    speck[:3, :3] = 1
    rle = mask_utils.encode(speck)
    corner = {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}
    return [
        {
            "image_id": a["image_id"],
            "category_id": a["category_id"],
            "bbox": a["bbox"],
            "score": 0.9,
            "segmentation": corner,
        }
        for a in gt["annotations"]
    ]


def test_weak_masks_the_conclusions_come_from_the_boxes_and_say_so(tmp_path: Path) -> None:
    run = make_run(tmp_path, [0.1, 0.3, 0.5])
    gt, _ = make_case(12, seed=2)
    results = _boxes_right_masks_wrong(gt)
    evals = {t: run_evaluation(gt, results, iou_type=t) for t in ("bbox", "segm")}
    assert evals["segm"].errors(0.5).totals.tp == 0 and evals["bbox"].metrics["AP50"] == 1.0
    write_evaluation_file(
        run / "eval" / "test.json", evals, split="test", model=str(run / "checkpoints" / "best")
    )
    result = write_report(run)
    text = result.markdown.read_text()
    assert "## Errors on the test split (boxes, 12 images)" in text
    assert "the masks are much weaker than the boxes (mask AP50 0.000 vs box AP50 1.000)" in text
    assert not any("No detection matched" in r for r in result.recommendations)
    assert any("masks are much weaker" in r for r in result.recommendations)


def test_a_steady_rise_is_not_chance_and_best_at_the_end_means_train_longer(tmp_path: Path) -> None:
    run = make_run(tmp_path, [0.0, 0.169, 0.406])
    recs = write_report(run).recommendations
    assert not any("swings" in r or "partly chance" in r for r in recs)
    (rising,) = [r for r in recs if "train longer" in r]
    assert "best epoch is the last one (3)" in rising and "0.169 → 0.406" in rising
    # a run whose best epoch is not the last does not get it
    other = make_run(tmp_path / "b", [0.0, 0.4, 0.3])
    assert not any("train longer" in r for r in write_report(other).recommendations)


def test_no_two_curves_of_a_report_figure_share_a_colour(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    figures = []
    real = report_mod.save_figure

    def keep(fig: Any, out: Path) -> Path:
        figures.append((Path(out).name, fig))
        return real(fig, out)

    monkeypatch.setattr(report_mod, "save_figure", keep)
    run = make_run(tmp_path, [0.1, 0.3, 0.5])
    gt, results = make_case(8, seed=3)
    write_evaluation_file(
        run / "eval" / "test.json", {"bbox": run_evaluation(gt, results)}, split="test", model="best"
    )
    write_report(run)
    names = [n for n, _ in figures]
    assert names == ["loss.png", "val_metrics.png", "pr_curve.png"]
    for name, fig in figures:
        colors = [c for _, c in curve_colors(fig)]
        assert len(colors) == len(set(colors)), (name, curve_colors(fig))
    loss_labels = [label for label, _ in curve_colors(figures[0][1])]
    assert set(COMPONENTS) <= set(loss_labels)  # all nine curves drawn (total + 8 components)
    # and beyond the base palette
    many = [Series(f"c{k}", [0, 1], [k + 1, k + 2]) for k in range(25)]
    colors = [c for _, c in curve_colors(loss_figure([0, 1], [1.0, 2.0], many))]
    assert len(colors) == len(set(colors)) == 26


def _valid_evals(tmp_path: Path, run: Path) -> None:
    gt, results = make_case(20, seed=4)
    worse = copy.deepcopy(results)
    for r in worse[::2]:
        r["bbox"] = [r["bbox"][0] + 30, r["bbox"][1], r["bbox"][2], r["bbox"][3]]
    for name, res, model in (("valid", results, "best"), ("valid-last", worse, "last")):
        write_evaluation_file(
            run / "eval" / f"{name}.json",
            {"bbox": run_evaluation(gt, res)},
            split="valid",
            model=str(run / "checkpoints" / model),
        )


def test_stability_is_the_bootstrap_on_the_validation_split(tmp_path: Path) -> None:
    run = make_run(tmp_path, [0.1, 0.5, 0.45])
    text = write_report(run).markdown.read_text()
    assert "Stability not measured: `fusereview report" in text and "--evaluate`" in text
    _valid_evals(tmp_path, run)
    result = write_report(run)
    text = result.markdown.read_text()
    section = text.split("## Stability on the validation split")[1].split("\n## ")[0]
    assert "Validation box AP of the best checkpoint (epoch 2), evaluated again as `eval` does:" in section
    assert "95% CI" in section and "bootstrap over the 20 validation images" in section
    assert "The last epoch (3) is worse than the best (2): ΔAP -" in section
    assert any("overfit" in r for r in result.recommendations)


def test_ground_truth_without_masks_is_evaluated_and_reported_on_boxes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gt, results = make_case(6, seed=5)
    for a in gt["annotations"]:
        a.pop("segmentation")
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "res.json").write_text(json.dumps(results))  # the results do have masks
    out = tmp_path / "test.json"
    args = [
        "eval",
        str(tmp_path / "gt.json"),
        "--predictions",
        str(tmp_path / "res.json"),
        "--json",
        str(out),
    ]
    assert main(args) == 0
    assert "note: the ground truth has no masks; evaluating boxes only" in capsys.readouterr().err
    saved = read_evaluation_file(out)
    assert set(saved.evaluations) == {"bbox"} and saved.no_masks == "the ground truth has no masks"
    run = make_run(tmp_path, [0.2, 0.3])
    (run / "eval").mkdir()
    (run / "eval" / "test.json").write_text(out.read_text())
    text = write_report(run).markdown.read_text()
    assert "Conclusions are from boxes: the ground truth has no masks." in text


def test_the_best_checkpoint_is_compared_with_the_model_it_started_from(tmp_path: Path) -> None:
    run = make_run(tmp_path, [0.1, 0.5, 0.45])
    _valid_evals(tmp_path, run)
    gt, _ = make_case(20, seed=4)
    perfect = [
        {"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 0.9}
        for a in gt["annotations"]
    ]
    write_evaluation_file(
        run / "eval" / "valid-start.json", {"bbox": run_evaluation(gt, perfect)}, split="valid", model="base"
    )
    result = write_report(run)
    line = "This run's best checkpoint is worse than the model it started from"
    assert line in result.markdown.read_text()
    assert any(r.startswith(line) and "Keep the starting model" in r for r in result.recommendations)
