"""The shipped demo model is worth reviewing: scored from the shipped files through the real CLI path.

``resources/demo_model`` is produced by ``python -m fusereview.demo.build_model``; here it is loaded
exactly as ``fusereview demo`` loads it (export format d, every parameter checked), predicts the demo
dataset's held-out test split, and the results are scored with ``fusereview eval``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fusereview.cli import main
from fusereview.core.synthetic import generate_dataset
from fusereview.demo.project import DEMO_IMAGES, DEMO_SEED, DEMO_SIZE, demo_model_dir


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict], dict]:
    tmp = tmp_path_factory.mktemp("demo-model")
    model = demo_model_dir()  # raises (fails the test) when the shipped model is missing
    dataset = generate_dataset(tmp / "demo", images=DEMO_IMAGES, size=DEMO_SIZE, seed=DEMO_SEED)
    results = tmp / "results.json"
    evaluation = tmp / "eval.json"
    assert (
        main(
            [
                "predict",
                str(dataset),
                "--model",
                str(model),
                "--split",
                "test",
                "--device",
                "cpu",
                "--threshold",
                "0.05",
                "--out",
                str(results),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "eval",
                str(dataset),
                "--predictions",
                str(results),
                "--split",
                "test",
                "--json",
                str(evaluation),
            ]
        )
        == 0
    )
    return json.loads(results.read_text()), json.loads(evaluation.read_text())


def test_shipped_model_finds_the_fuse_neutrals(scored: tuple[list[dict], dict]) -> None:
    _, evaluation = scored
    ap50 = evaluation["evaluations"]["bbox"]["metrics"]["AP50"]
    assert ap50 >= 0.5, f"demo model bbox AP50 on the test split is {ap50:.3f}"
    # masks are rougher than boxes (16-px objects at 224 px), but they are masks: 0.27 when built
    segm = evaluation["evaluations"]["segm"]["metrics"]["AP50"]
    assert segm > 0.15, f"demo model segm AP50 on the test split is {segm:.3f}"


def test_shipped_model_scores_spread_so_the_queue_has_doubtful_items(scored: tuple[list[dict], dict]) -> None:
    results, _ = scored
    scores = np.array([r["score"] for r in results])
    assert len(scores) > 0
    # confident finds and doubtful ones: the low-confidence queue must have something to show
    assert (scores >= 0.7).sum() >= 5, np.sort(scores)[-10:]
    assert ((scores >= 0.1) & (scores < 0.6)).sum() >= 5, np.sort(scores)
    assert scores.std() > 0.1


def test_training_metrics_ship_beside_the_model() -> None:
    folder: Path = demo_model_dir()
    lines = (folder / "training_metrics.jsonl").read_text().splitlines()
    assert any(json.loads(line)["type"] == "val" for line in lines)
    summary = json.loads((folder / "metrics.json").read_text())
    assert summary["AP50"] >= 0.5 and summary["train_seed"] != DEMO_SEED
