"""`fusereview predict` and `fusereview convert` end to end, and predict sharded over 2 torchrun ranks."""

from __future__ import annotations

import copy
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from model_samples import write_official_pt
from pycocotools.coco import COCO

from fusereview.cli import main
from fusereview.core.project import Project
from fusereview.core.synthetic import generate_dataset
from fusereview.models.checkpoints import load_model

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return generate_dataset(tmp_path / "fuses", images=5, size=96, seed=2, splits=(0.6, 0.2, 0.2))


def _gt(project_path: Path, split: str) -> COCO:
    with Project.open(project_path) as proj:
        data = proj.to_coco_dict(split)
    gt = COCO()
    gt.dataset = data
    gt.createIndex()
    return gt


def test_predict_writes_project_and_coco_results(dataset: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "results.json"
    rc = main(
        [
            "predict",
            str(dataset),
            "--model",
            "tiny",
            "--split",
            "train",
            "--device",
            "cpu",
            "--batch-size",
            "2",
            "--threshold",
            "0.1",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    err = capsys.readouterr().err
    assert "3/3" in err and "3 predicted" in err
    results = json.loads(out.read_text())
    assert results and {"image_id", "category_id", "bbox", "score", "segmentation"} <= set(results[0])
    project_dir = dataset.parent / "fuses.fusereview"
    gt = _gt(project_dir, "train")
    dt = gt.loadRes(copy.deepcopy(results))  # pycocotools accepts the file (and mutates what it gets)
    assert set(dt.getImgIds()) <= set(gt.getImgIds()) and len(dt.anns) == len(results)
    # second run: all cached, same results file
    rc = main(
        [
            "predict",
            str(project_dir),
            "--model",
            "tiny",
            "--split",
            "train",
            "--device",
            "cpu",
            "--threshold",
            "0.1",
            "--out",
            str(tmp_path / "again.json"),
        ]
    )
    assert rc == 0 and "3 cached" in capsys.readouterr().err
    assert json.loads((tmp_path / "again.json").read_text()) == results


def test_predict_bad_input_is_one_line_and_writes_nothing(dataset: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "junk.pt").write_text("junk")
    out = tmp_path / "r.json"
    assert main(["predict", str(dataset), "--model", str(tmp_path / "junk.pt"), "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert (
        "junk.pt: not a PyTorch checkpoint" in err and "Traceback" not in err and len(err.splitlines()) == 1
    )
    assert not out.exists()
    assert main(["predict", str(dataset), "--model", "tiny", "--split", "nope"]) == 1
    assert "--split nope" in capsys.readouterr().err


def test_convert_official_pt_to_export(tmp_path: Path, capsys) -> None:
    pt = write_official_pt(tmp_path / "src", with_tokenizer=False)
    out = tmp_path / "converted"
    assert main(["convert", str(pt), "--out", str(out)]) == 1  # no tokenizer: says which file and where
    err = capsys.readouterr().err
    assert "bpe_simple_vocab_16e6.txt.gz" in err and not out.exists()
    from fusereview.models.tiny import tiny_tokenizer

    tiny_tokenizer().save(tmp_path / "tok")
    assert (
        main(
            [
                "convert",
                str(pt),
                "--tokenizer",
                str(tmp_path / "tok" / "tokenizer.json"),
                "--out",
                str(out),
                "--bf16",
            ]
        )
        == 0
    )
    loaded = load_model(out)
    assert loaded.report.complete and loaded.meta["dtype"] == "bfloat16"
    assert main(["convert", str(pt), "--out", str(out)]) == 1  # refuses to overwrite without --force


@pytest.mark.skipif(
    shutil.which("torchrun", path=str(Path(sys.executable).parent)) is None, reason="no torchrun"
)
def test_torchrun_two_ranks_shard_and_merge(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "dist.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [
        str(Path(sys.executable).parent / "torchrun"),
        "--nproc_per_node",
        "2",
        "--master_port",
        str(_free_port()),
        "-m",
        "fusereview",
        "predict",
        str(dataset),
        "--model",
        "tiny",
        "--device",
        "cpu",
        "--threshold",
        "0.1",
        "--out",
        str(out),
        "--split",
        "train",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(out.read_text())
    with Project.open(dataset.parent / "fuses.fusereview") as proj:
        ids = {proj.coco_image_id(r.id) for r in proj.images("train")}
        assert len(proj.predictions()) > 0
    assert {r["image_id"] for r in results} == ids  # both ranks' images merged
    # same predictions as a single process
    single = tmp_path / "single.json"
    assert (
        main(
            [
                "predict",
                str(dataset),
                "--model",
                "tiny",
                "--device",
                "cpu",
                "--threshold",
                "0.1",
                "--split",
                "train",
                "--out",
                str(single),
            ]
        )
        == 0
    )
    assert sorted(json.dumps(r, sort_keys=True) for r in json.loads(single.read_text())) == sorted(
        json.dumps(r, sort_keys=True) for r in results
    )
