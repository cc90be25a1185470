"""Fuzz tests (hypothesis): mutated COCO files, safetensors headers, results files and run folders.

Each example ends in success or a ``FusereviewError`` naming the file (and the field when the
problem is inside it), within a time limit, and leaves every input byte-identical. Bounded to
run in a minute or two on 2 cores (see ``fuzz_support.FUZZ``).
"""

from __future__ import annotations

import json
import shutil
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from coco_samples import make_split
from fuzz_support import fuzz_settings, mutated_json, time_limit, tree_digest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from fusereview.core.coco import load_dataset, validate_dataset
from fusereview.core.errors import DatasetError, FusereviewError
from fusereview.core.project import Project

# pytest-timeout's thread method: the per-example alarm (fuzz_support.time_limit) owns SIGALRM
pytestmark = pytest.mark.timeout(600, method="thread")


def _assert_names_file(exc: FusereviewError) -> None:
    assert exc.file, f"no file named: {exc}"
    if isinstance(exc, DatasetError):
        assert exc.problems and all(p.file and p.message for p in exc.problems)


def _ends_well(run: Callable[[], object], success: str) -> None:
    """``run()`` succeeds, or raises a FusereviewError naming its file (each a hypothesis event)."""
    try:
        run()
    except FusereviewError as exc:
        _assert_names_file(exc)
        event(f"refused by {type(exc).__name__}")
    else:
        event(success)


# ------------------------------------------------------------------------------------------ COCO


@pytest.fixture(scope="module")
def coco_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid one-split dataset with every Roboflow quirk (the json is what gets mutated)."""
    folder = tmp_path_factory.mktemp("coco") / "data"
    make_split(folder, 2)
    return folder


@settings(fuzz_settings(120))
@given(data=st.data())
def test_mutated_coco_file_is_refused_clearly_or_round_trips(
    coco_source: Path, tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    original = json.loads((coco_source / "_annotations.coco.json").read_text())
    text = data.draw(mutated_json(original))
    work = tmp_path_factory.mktemp("case")
    folder = work / "data"
    shutil.copytree(coco_source, folder)
    json_path = folder / "_annotations.coco.json"
    json_path.write_bytes(text)
    before = tree_digest(folder)
    with time_limit(30, "validate, import and export of one mutated COCO file"):
        problems = validate_dataset(json_path)
        assert all(p.file and p.message for p in problems)
        try:
            dataset = load_dataset(json_path)
        except DatasetError as exc:
            _assert_names_file(exc)
            assert problems, "load_dataset refused what validate accepted"
            event("refused by validate")
        else:

            def import_and_export() -> None:
                with Project.create(work / "proj", dataset) as project:
                    project.export_coco(work / "out")
                    project.export_coco(work / "one.json")

            _ends_well(import_and_export, "imported and exported")
    assert tree_digest(folder) == before, "the dataset changed on disk"


# ------------------------------------------------------------------------------ safetensors


@pytest.fixture(scope="module")
def model_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from model_samples import tiny_model_dir

    return tiny_model_dir(tmp_path_factory.mktemp("model"))


def _split_safetensors(raw: bytes) -> tuple[dict[str, Any], bytes]:
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + n]), raw[8 + n :]


@settings(fuzz_settings(50))
@given(data=st.data())
def test_mutated_safetensors_header_is_refused_clearly(
    model_source: Path, tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    from fusereview.models.checkpoints import load_model

    raw = (model_source / "model.safetensors").read_bytes()
    header, body = _split_safetensors(raw)
    # mutate a handful of entries only: the tiny model has 388 tensors
    names = sorted(k for k in header if k != "__metadata__")
    picked = data.draw(st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True))
    small = {k: header[k] for k in picked}
    text = data.draw(mutated_json(small))
    try:
        changed = json.loads(text)
    except (ValueError, RecursionError):
        changed = None
    if isinstance(changed, dict):
        full = {**header, **changed}
        for k in picked:
            if k not in changed:
                full.pop(k, None)
        head = json.dumps(full).encode("utf-8", "surrogatepass")
    else:
        head = text  # damaged text, or not an object: the header as is
    length = len(head)
    if data.draw(st.booleans()) and data.draw(st.booleans()):
        length = data.draw(st.sampled_from([0, 1, len(head) + 5, 2**63, len(raw) * 10]))
    folder = tmp_path_factory.mktemp("st") / "model"
    shutil.copytree(model_source, folder)
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", min(length, 2**64 - 1)) + head + body)
    before = tree_digest(folder)
    with time_limit(60, "loading a model with a mutated safetensors header"):
        _ends_well(lambda: load_model(folder), "loaded")
    assert tree_digest(folder) == before, "the model files changed on disk"


# --------------------------------------------------------------------------------- results


@pytest.fixture(scope="module")
def results_source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    import numpy as np
    from pycocotools import mask as mask_utils

    gt = make_split(tmp_path_factory.mktemp("gt") / "test", 2, quirks=False)
    data = json.loads(gt.read_text())
    results = []
    for ann in data["annotations"]:
        img = next(im for im in data["images"] if im["id"] == ann["image_id"])
        m = np.zeros((img["height"], img["width"]), np.uint8)
        x, y, w, h = (int(v) for v in ann["bbox"])
        m[y : y + h, x : x + w] = 1
        rle = mask_utils.encode(np.asfortranarray(m))
        results.append(
            {
                "image_id": ann["image_id"],
                "category_id": ann["category_id"],
                "score": 0.8,
                "bbox": ann["bbox"],
                "segmentation": {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode()},
            }
        )
    return gt, results


@settings(fuzz_settings(120))
@given(data=st.data())
def test_mutated_results_file_is_refused_clearly(
    results_source: tuple[Path, list[dict[str, Any]]],
    tmp_path_factory: pytest.TempPathFactory,
    data: st.DataObject,
) -> None:
    from fusereview.evaluation.cocoeval import run_evaluation
    from fusereview.evaluation.inputs import load_ground_truth, load_results_file

    gt_path, results = results_source
    text = data.draw(mutated_json(results, max_changes=4))
    path = tmp_path_factory.mktemp("res") / "results.json"
    path.write_bytes(text)
    before = tree_digest(path.parent), tree_digest(gt_path.parent)
    with time_limit(30, "evaluating a mutated results file"):
        truth = load_ground_truth(gt_path, "test")

        def evaluate() -> None:
            loaded = load_results_file(path)
            for iou_type in ("bbox", "segm"):
                run_evaluation(
                    truth.gt, loaded, iou_type=iou_type, gt_name=truth.name, results_name=str(path)
                )

        try:
            _ends_well(evaluate, "evaluated")
        finally:
            truth.close()
    assert (tree_digest(path.parent), tree_digest(gt_path.parent)) == before


# ------------------------------------------------------------------------------ run folders


@pytest.fixture(scope="module")
def run_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished tiny training run (config.json, env.json, metrics.jsonl, checkpoints)."""
    from fusereview.cli import main
    from fusereview.training.toydata import write_toy_coco

    toy = write_toy_coco(tmp_path_factory.mktemp("toy") / "toy", train=4, valid=2)
    run = tmp_path_factory.mktemp("runs") / "run"
    args = [
        "--preset",
        "tiny",
        "--image-size",
        "112",
        "--batch-size",
        "2",
        "--epochs",
        "1",
        "--eval-every",
        "1",
    ]
    assert main(["train", str(toy), "--model", "tiny", *args, "--run-dir", str(run)]) == 0
    shutil.rmtree(run / "checkpoints")  # weights are not what the report reads; keep copies small
    return run


@settings(fuzz_settings(60))
@given(data=st.data())
def test_mutated_run_folder_json_reports_or_is_refused_clearly(
    run_source: Path, tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    from fusereview.evaluation.report import write_report

    run = tmp_path_factory.mktemp("run") / "run"
    shutil.copytree(run_source, run)
    target = data.draw(st.sampled_from(["config.json", "env.json", "metrics.jsonl"]))
    path = run / target
    if target == "metrics.jsonl":
        lines = path.read_text().splitlines()
        k = data.draw(st.integers(min_value=0, max_value=len(lines) - 1))
        lines[k] = data.draw(mutated_json(json.loads(lines[k]))).decode("utf-8", "surrogatepass")
        path.write_bytes("\n".join(lines).encode("utf-8", "surrogatepass") + b"\n")
    else:
        path.write_bytes(data.draw(mutated_json(json.loads(path.read_text()))))
    before = tree_digest(run)
    out = run.parent / "report" / "report.md"
    out.parent.mkdir()
    with time_limit(60, "a report of a run folder with a mutated json"):
        _ends_well(lambda: write_report(run, out, worst_images=0), "reported")
    assert tree_digest(run) == before, "the run folder changed on disk"
