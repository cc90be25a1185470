"""Bad checkpoints, and the jobs that use models (predict, train) on bad images and bad weights.

Each test is a defect of issue 11 that once ended in a traceback, a hang or a silently wrong
result. Tiny models only (seeded, no download).
"""

from __future__ import annotations

import json
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from model_samples import read_meta, tiny_model_dir, write_transformers_folder
from safetensors.torch import load_file, save_file
from test_project import make_project

from fusereview.cli import main
from fusereview.core.project import Project
from fusereview.models.base import NonFiniteOutputError, cache_key
from fusereview.models.checkpoints import CheckpointFormatError, load_model
from fusereview.models.predict_job import predict_project
from fusereview.models.sam3 import load_predictor
from fusereview.models.tiny import tiny_model, tiny_tokenizer
from fusereview.training.toydata import write_toy_coco

torch.set_num_threads(1)

TRAIN_ARGS = ["--preset", "tiny", "--image-size", "112", "--batch-size", "2", "--max-steps", "1"]


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_toy_coco(tmp_path_factory.mktemp("toy") / "toy", train=4, valid=2)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    proj = make_project(tmp_path, counts=(5, 1, 1))
    yield proj
    proj.close()


def _rgb(n: int = 2) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (64, 80, 3), dtype=np.uint8) for _ in range(n)]


# ------------------------------------------------------------------------- defect 10: headers


def _write_header(path: Path, header: object, data: bytes = b"") -> None:
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)


@pytest.mark.parametrize(
    ("header", "words"),
    [
        ([1, 2, 3], "the header is a JSON list"),
        ({"vision_encoder.x": {"dtype": "F32", "shape": [1]}}, "data_offsets"),
        ({"vision_encoder.x": "F32"}, "is a str"),
        ({"vision_encoder.x": {"dtype": "F32", "shape": [1], "data_offsets": ["0", 4]}}, "data_offsets"),
        ({"vision_encoder.x": {"dtype": "F32", "shape": [1], "data_offsets": [8, 4]}}, "data_offsets"),
    ],
    ids=["list", "no-data-offsets", "string-entry", "string-offset", "reversed-offsets"],
)
def test_safetensors_header_of_the_wrong_shape_is_a_clear_refusal(
    tmp_path: Path, header: object, words: str
) -> None:
    folder = write_transformers_folder(tmp_path / "model")
    _write_header(folder / "model.safetensors", header, b"\0" * 16)
    with pytest.raises(CheckpointFormatError, match=words) as info:
        load_model(folder)
    assert str(folder / "model.safetensors") in str(info.value)
    # the same through an export folder
    export = tiny_model_dir(tmp_path)
    _write_header(export / "model.safetensors", header, b"\0" * 16)
    with pytest.raises(CheckpointFormatError, match=words):
        load_model(export)


def test_pt_state_dict_with_integer_keys_is_refused(tmp_path: Path) -> None:
    torch.save({1: torch.zeros(2), 2: torch.ones(2)}, tmp_path / "sam3.pt")
    tiny_tokenizer().save(tmp_path)  # the tokenizer is looked for first; then the file itself is refused
    with pytest.raises(CheckpointFormatError, match="keys are not tensor names"):
        load_model(tmp_path / "sam3.pt")


@pytest.mark.timeout(60)  # this once recursed for 35 s before a RecursionError
def test_export_whose_base_is_itself_is_refused_at_once(tmp_path: Path) -> None:
    export = tiny_model_dir(tmp_path)
    meta = read_meta(export)
    meta["base"] = {"spec": ".", "fingerprint": ""}
    (export / "fusereview.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointFormatError, match="loops"):
        load_model(export)
    # a two-export loop too
    other = tiny_model_dir(tmp_path, name="other")
    meta_b = read_meta(other)
    meta_b["base"] = {"spec": str(export), "fingerprint": ""}
    (other / "fusereview.json").write_text(json.dumps(meta_b))
    meta["base"] = {"spec": str(other), "fingerprint": ""}
    (export / "fusereview.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointFormatError, match="loops"):
        load_model(export)


# ------------------------------------------------------------------- defect 3: non-finite weights


def _export_with(tmp_path: Path, change: str) -> Path:
    model = tiny_model(0)
    name = "detr_decoder.layers.0.self_attn.q_proj.weight"
    state = dict(model.state_dict())
    if change == "nan":
        state[name] = state[name].clone().fill_(float("nan"))
    elif change == "inf":
        state[name] = state[name].clone().fill_(float("inf"))
    export = tiny_model_dir(tmp_path, name=change)
    tensors = load_file(str(export / "model.safetensors"))
    if change == "int8":
        tensors[name] = torch.randint(-128, 127, tensors[name].shape, dtype=torch.int8)
    else:
        tensors[name] = state[name].contiguous()
    save_file(tensors, str(export / "model.safetensors"), metadata={"format": "pt"})
    return export


@pytest.mark.parametrize("change", ["nan", "inf", "int8"])
def test_weights_that_cannot_predict_are_refused_at_load(tmp_path: Path, change: str) -> None:
    export = _export_with(tmp_path, change)
    words = "int8 in the file" if change == "int8" else "NaN or infinite"
    with pytest.raises(CheckpointFormatError, match=words) as info:
        load_model(export)
    assert "detr_decoder.layers.0.self_attn.q_proj.weight" in str(info.value)


def test_a_run_with_non_finite_scores_replaces_nothing(project: Project) -> None:
    good = load_predictor("tiny", device="cpu")
    counts = predict_project(project, good, threshold=0.0)
    assert counts["detections"] > 0
    before = {(p.id, p.model, p.state) for p in project.predictions()}
    bad = load_predictor(str(tiny_model_dir(project.root / "m")), device="cpu")
    with torch.no_grad():
        next(bad.model.detr_decoder.parameters()).fill_(float("nan"))  # diverged after loading
    with pytest.raises(NonFiniteOutputError, match="NaN or infinite scores"):
        predict_project(project, bad, threshold=0.0)
    assert {(p.id, p.model, p.state) for p in project.predictions()} == before


# ------------------------------------------------------------------------ defect 2: bf16 folder


def _bf16_transformers_folder(tmp_path: Path) -> Path:
    """The demo model's layout without fusereview.json: config.json (dtype bfloat16), bf16 weights."""
    folder = tmp_path / "bf16"
    model = tiny_model(0)
    folder.mkdir()
    model.config.torch_dtype = "bfloat16"
    model.config.save_pretrained(str(folder))
    state = {k: v.to(torch.bfloat16).contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    tiny_tokenizer().save(folder)
    return folder


def test_bf16_transformers_folder_predicts_and_trains(tmp_path: Path, toy: Path) -> None:
    folder = _bf16_transformers_folder(tmp_path)
    predictor = load_predictor(str(folder), device="cpu")
    dets = predictor.predict(_rgb(), [(1, "fuse")], threshold=0.0)
    assert len(dets) == 2 and all(d.mask is not None for d in dets[0])
    reference = load_predictor("tiny", device="cpu").predict(_rgb(), [(1, "fuse")], threshold=0.0)
    assert abs(dets[0][0].score - reference[0][0].score) < 0.05  # bf16 rounding of the same weights
    run = tmp_path / "run"
    args = ["--preset", "tiny", "--batch-size", "2", "--max-steps", "1", "--run-dir", str(run)]
    assert main(["train", str(toy), "--model", str(folder), *args]) == 0


# --------------------------------------------------------- defect 1: train with a bad --model


def _pickle_payload(path: Path) -> Path:
    class Payload:
        def __reduce__(self) -> tuple:
            return (os.system, ("touch " + str(path.parent / "PWNED"),))

    path.write_bytes(pickle.dumps({"model": Payload()}))
    return path


def _half_keys(tmp_path: Path) -> Path:
    export = tiny_model_dir(tmp_path, name="half")
    tensors = load_file(str(export / "model.safetensors"))
    keep = dict(list(tensors.items())[: len(tensors) // 2])
    save_file(keep, str(export / "model.safetensors"), metadata={"format": "pt"})
    return export


@pytest.mark.parametrize("kind", ["empty-folder", "half-the-keys", "pickle-payload", "read-only-run-dir"])
def test_train_with_a_model_that_cannot_load_says_why_and_leaves_no_run(
    tmp_path: Path, toy: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project_dir = tmp_path / "proj"
    assert main(["import", str(toy), "--project", str(project_dir)]) == 0
    run = tmp_path / "run"
    model = "tiny"
    if kind == "empty-folder":
        (tmp_path / "empty").mkdir()
        model = str(tmp_path / "empty")
    elif kind == "half-the-keys":
        model = str(_half_keys(tmp_path))
    elif kind == "pickle-payload":
        model = str(_pickle_payload(tmp_path / "sam3.pt"))
    else:
        (tmp_path / "a-file").write_text("")
        run = tmp_path / "a-file" / "run"  # cannot be created (as root, a 0o555 folder would be)
    capsys.readouterr()
    assert main(["train", str(project_dir), "--model", model, *TRAIN_ARGS, "--run-dir", str(run)]) == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("fusereview train:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err and "metrics.jsonl" not in err
    assert "will likely succeed" not in err and "set to `False`" not in err  # never torch's advice
    assert model in lines[0] or str(run.parent) in lines[0]
    assert not (tmp_path / "PWNED").exists()
    assert not (run / "metrics.jsonl").exists()
    with Project.open(project_dir) as p:
        assert p.runs() == []  # no row stuck at "created"


# -------------------------------------------------------------------- defect 7: train, disk full


def test_train_on_a_full_disk_says_disk_full(
    tmp_path: Path, toy: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from safetensors import SafetensorError

    import fusereview.models.export as export_module

    def full(*args: object, **kwargs: object) -> None:
        raise SafetensorError("Error while serializing: IoError(No space left on device (os error 28))")

    monkeypatch.setattr(export_module, "save_file", full)
    run = tmp_path / "run"
    assert main(["train", str(toy), "--model", "tiny", *TRAIN_ARGS, "--run-dir", str(run)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert any(
        line.startswith("fusereview train: disk full: ") and "MB needed at" in line
        for line in err.splitlines()
    )


# ----------------------------------------------------------------- defect 9: images in predict


@pytest.mark.timeout(120)  # a FIFO image once hung predict forever
def test_predict_skips_a_fifo_a_dev_zero_link_and_a_huge_file_and_goes_on(project: Project) -> None:
    records = project.images()
    fifo, zero, huge = (project.image_path(r.id) for r in records[:3])
    for p in (fifo, zero, huge):
        p.unlink()
    os.mkfifo(fifo)
    os.symlink("/dev/zero", zero)
    with open(huge, "wb") as fh:
        fh.truncate(3 << 30)  # sparse 3 GiB
    counts = predict_project(project, load_predictor("tiny", device="cpu"), threshold=0.0)
    assert counts["failed"] == 3 and counts["predicted"] == len(records) - 3
    reasons = " ".join(f["error"] for f in counts["failures"])
    assert "FIFO" in reasons and "character device" in reasons and "MiB" in reasons


# --------------------------------------------------------- defect 11: export fingerprint


def test_replacing_an_exports_weights_changes_its_fingerprint(tmp_path: Path, project: Project) -> None:
    export = tiny_model_dir(tmp_path, name="exp", seed=0)
    first = load_predictor(str(export), device="cpu")
    predict_project(project, first, threshold=0.0)
    other = tiny_model_dir(tmp_path, name="other", seed=1)
    (export / "model.safetensors").write_bytes((other / "model.safetensors").read_bytes())
    second = load_predictor(str(export), device="cpu")
    assert second.fingerprint != first.fingerprint
    cat = project.categories()[0]
    key = cache_key(cat.prompt or cat.name, 0.0, category_id=cat.id)
    image = project.images()[0].id
    assert project.cached_predictions(image, second.fingerprint, key) is None  # the old cache is not served
