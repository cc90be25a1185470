"""`fusereview train` from the command line, and DDP with 2 gloo processes against one process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from fusereview.cli import main
from fusereview.training.modelio import load_model
from fusereview.training.toydata import write_toy_coco

ARGS = [
    "--model",
    "tiny",
    "--preset",
    "tiny",
    "--image-size",
    "112",
    "--batch-size",
    "4",
    "--dropout",
    "0",
    "--lr",
    "1e-3",
]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return write_toy_coco(tmp_path_factory.mktemp("ds") / "toy", train=6, valid=2)


def test_cli_trains_a_dataset_folder(dataset, tmp_path, capsys):
    run = tmp_path / "run"
    assert (
        main(["train", str(dataset), *ARGS, "--epochs", "1", "--eval-every", "1", "--run-dir", str(run)]) == 0
    )
    out = capsys.readouterr()
    assert "finished" in out.out and "epoch 1" in out.err
    # how the run ended is said once (it was printed on stderr by the progress and on stdout)
    assert (out.out + out.err).count("finished: finished") == 1, out
    recs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert {r["type"] for r in recs} == {"step", "epoch", "val", "end"}
    assert (run / "checkpoints/best/model.safetensors").exists()


def test_cli_refuses_bad_input_in_one_line(tmp_path, capsys):
    assert main(["train", str(tmp_path / "nope"), "--model", "tiny"]) == 1
    assert "nope: no such project or dataset folder" in capsys.readouterr().err
    assert main(["train", str(tmp_path), "--model", "tiny", "--preset", "huge"]) == 1
    assert "--preset: unknown preset 'huge'" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path)]) == 1
    assert "not a run folder" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_two_gloo_processes_match_one_process(dataset, tmp_path):
    steps = ["--max-steps", "2", "--eval-every", "100"]
    one = tmp_path / "one"
    assert main(["train", str(dataset), *ARGS, *steps, "--run-dir", str(one)]) == 0
    two = tmp_path / "two"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(_free_port()),
        "-m",
        "fusereview",
        "train",
        str(dataset),
        *ARGS,
        *steps,
        "--run-dir",
        str(two),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    config = json.loads((two / "config.json").read_text())
    assert config["world_size"] == 2
    a = load_file(str(one / "checkpoints/last/model.safetensors"))
    b = load_file(str(two / "checkpoints/last/model.safetensors"))
    init = load_model("tiny", image_size=112, seed=0).model.state_dict()
    update = sum(((a[k] - init[k]) ** 2).sum().item() for k in a) ** 0.5
    gap = sum(((a[k] - b[k]) ** 2).sum().item() for k in a) ** 0.5
    assert update > 1e-2, "training must have moved the weights"
    # Same global batches, gradients averaged over the 2 processes. Adam's first steps are nearly
    # sign(gradient) * lr, so elements whose gradient is ~0 may flip on float reduction order:
    # compare the whole update, not single elements.
    assert gap < 0.1 * update, (gap, update)
