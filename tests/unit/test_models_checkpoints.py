"""All four checkpoint formats load offline; bad input gives clear errors; partial weights are refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from model_samples import (
    read_meta,
    tiny_model_dir,
    write_official_pt,
    write_trainer_checkpoint,
    write_transformers_folder,
)

from fusereview.core.errors import ModelLoadError
from fusereview.models.checkpoints import (
    CheckpointFormatError,
    ConfigMismatchError,
    IncompleteWeightsError,
    load_model,
)
from fusereview.models.export import save_export
from fusereview.models.sam3 import Sam3Predictor, load_predictor
from fusereview.models.tiny import tiny_model, tiny_tokenizer
from fusereview.models.tokenizer import TokenizerError

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def reference() -> dict[str, torch.Tensor]:
    return tiny_model(0).state_dict()


def _same_weights(model: torch.nn.Module, reference: dict[str, torch.Tensor]) -> None:
    state = model.state_dict()
    assert set(state) == set(reference)
    for k, v in reference.items():
        assert torch.equal(state[k].float(), v.float()), k


def test_tiny_spec_is_seeded_and_complete(reference: dict[str, torch.Tensor]) -> None:
    a, b = load_model("tiny"), load_model("tiny")
    assert a.fingerprint == b.fingerprint and a.fingerprint.startswith("tiny:")
    assert a.report.complete and a.report.loaded == len(reference)
    _same_weights(a.model, reference)


def test_format_a_transformers_folder_with_prefix_and_tracker_keys(
    tmp_path: Path, reference: dict[str, torch.Tensor]
) -> None:
    folder = write_transformers_folder(tmp_path / "hf")
    loaded = load_model(folder)
    assert loaded.report.format == "transformers"
    assert (
        loaded.report.loaded == len(reference)
        and loaded.report.missing == []
        and loaded.report.unexpected == []
    )
    assert loaded.report.skipped == 1  # the tracker key
    _same_weights(loaded.model, reference)
    assert loaded.fingerprint.startswith("sha:")


def test_format_b_official_sam3_pt(tmp_path: Path, reference: dict[str, torch.Tensor]) -> None:
    pt = write_official_pt(tmp_path / "official", with_tokenizer=False)
    with pytest.raises(TokenizerError) as err:  # no tokenizer beside it and none given
        load_model(pt)
    assert "tokenizer.json" in str(err.value) and "bpe_simple_vocab_16e6.txt.gz" in str(err.value)
    tiny_tokenizer().save(tmp_path / "tok")
    loaded = load_model(pt, tokenizer=tmp_path / "tok" / "tokenizer.json")
    assert loaded.report.format == "official"
    assert loaded.report.complete and loaded.report.unexpected == []
    # rotary tables + point projections + the tracker key are skipped by design
    assert loaded.report.skipped == 3 + 2 + 1
    _same_weights(loaded.model, reference)


@pytest.mark.parametrize(("key", "ddp"), [("model", True), ("model_state_dict", False)])
def test_format_c_trainer_checkpoint(
    tmp_path: Path, reference: dict[str, torch.Tensor], key: str, ddp: bool
) -> None:
    pt = write_trainer_checkpoint(tmp_path, key=key, ddp=ddp)
    loaded = load_model(pt)
    assert loaded.report.format == "trainer" and loaded.report.complete
    _same_weights(loaded.model, reference)


def test_format_d_export_float32_and_bf16(tmp_path: Path, reference: dict[str, torch.Tensor]) -> None:
    d32 = tiny_model_dir(tmp_path, name="f32")
    loaded = load_model(d32)
    assert loaded.report.format == "export" and loaded.report.complete
    assert loaded.meta["prompts"] == {"1": "fuse neutrals"} and loaded.meta["run_id"] == "test-run"
    assert loaded.fingerprint.startswith("export:" + read_meta(d32)["export_id"] + ":")
    _same_weights(loaded.model, reference)
    d16 = tiny_model_dir(tmp_path, name="bf16", dtype="bfloat16")
    assert (d16 / "model.safetensors").stat().st_size < 0.6 * (d32 / "model.safetensors").stat().st_size
    m16 = load_model(d16).model
    for k, v in m16.state_dict().items():
        assert v.dtype == torch.float32
        assert torch.allclose(v, reference[k], rtol=1e-2, atol=1e-2), k


def test_format_d_partial_export_on_top_of_a_base(tmp_path: Path) -> None:
    model = tiny_model(0)
    trained = [n for n in model.state_dict() if n.startswith("detr_decoder.")]
    with torch.no_grad():
        for n in trained:
            model.state_dict()[n].add_(1.0)
    base_fp = load_model("tiny").fingerprint
    out = save_export(
        tmp_path / "part",
        model,
        tiny_tokenizer(),
        only=trained,
        base={"spec": "tiny", "fingerprint": base_fp},
    )
    loaded = load_model(out)
    assert loaded.report.complete
    _same_weights(loaded.model, model.state_dict())
    meta = read_meta(out)
    meta["base"]["fingerprint"] = "tiny:0:changed"
    (out / "fusereview.json").write_text(json.dumps(meta))
    with pytest.raises(ModelLoadError, match="has changed since the export"):
        load_model(out)


def test_partial_checkpoint_is_refused(tmp_path: Path) -> None:
    pt = write_trainer_checkpoint(tmp_path, drop=5)
    with pytest.raises(IncompleteWeightsError, match=r"refusing to predict"):
        load_predictor(str(pt))
    loaded = load_model(pt, allow_incomplete=True)
    assert len(loaded.report.missing) >= 5 and not loaded.report.complete
    predictor = Sam3Predictor(loaded, device="cpu")
    with pytest.raises(
        IncompleteWeightsError, match=r"\d+ of \d+ model parameters were not in the checkpoint"
    ):
        predictor.predict([np.zeros((32, 32, 3), np.uint8)], [(1, "fuse")])
    with pytest.raises(IncompleteWeightsError):
        predictor.predict_box(np.zeros((32, 32, 3), np.uint8), (0, 0, 10, 10), 1)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_bad_inputs_give_clear_errors_and_change_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "notes.txt").write_text("hello")
    tiny_tokenizer().save(bad)  # a tokenizer beside them: each file's own fault is what is reported
    (bad / "model.pt").write_text("this is not a checkpoint")
    torch.save([1, 2, 3], bad / "list.pt")
    torch.save(torch.nn.Linear(3, 3).state_dict(), bad / "other_model.pt")
    before = _snapshot(tmp_path)

    with pytest.raises(CheckpointFormatError, match=r"notes.txt: unknown model file type"):
        load_model(bad / "notes.txt")
    with pytest.raises(CheckpointFormatError, match=r"model.pt: not a PyTorch checkpoint"):
        load_model(bad / "model.pt")
    with pytest.raises(CheckpointFormatError, match=r"list.pt: holds a list, not a state dict"):
        load_model(bad / "list.pt")
    with pytest.raises(CheckpointFormatError, match=r"other_model.pt: not a SAM3 image model"):
        load_model(bad / "other_model.pt")
    with pytest.raises(CheckpointFormatError, match=r"model not found"):
        load_model(tmp_path / "missing")
    assert _snapshot(tmp_path) == before


def test_pickle_with_arbitrary_objects_is_not_unpickled(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    tiny_tokenizer().save(tmp_path)  # found first; then the file itself is refused
    torch.save({"model": {"w": torch.zeros(1)}, "callback": Path("x")}, path)
    with pytest.raises(CheckpointFormatError, match=r"evil.pt: holds objects other than tensors"):
        load_model(path)


def test_truncated_safetensors_is_reported(tmp_path: Path) -> None:
    folder = tiny_model_dir(tmp_path)
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointFormatError, match=r"model.safetensors: truncated safetensors file"):
        load_model(folder)
    hf = write_transformers_folder(tmp_path / "hf")
    data = (hf / "model.safetensors").read_bytes()
    (hf / "model.safetensors").write_bytes(data[:1000])
    with pytest.raises(CheckpointFormatError, match=r"model.safetensors"):
        load_model(hf)


def test_config_that_does_not_fit_the_weights(tmp_path: Path) -> None:
    pt = write_official_pt(tmp_path / "o")
    other = tiny_model(0, num_queries=12).config
    other.save_pretrained(str(tmp_path / "cfg"))
    with pytest.raises(
        ConfigMismatchError, match=r"query_embed.weight has shape \(30, 64\) in the file but \(12, 64\)"
    ):
        load_model(pt, config=tmp_path / "cfg" / "config.json")
    # no config beside it: the full-size default does not fit a tiny file either
    (tmp_path / "o" / "config.json").unlink()
    with pytest.raises(ConfigMismatchError, match="full-size SAM3 config"):
        load_model(pt)


def test_export_replaces_an_old_folder_atomically(tmp_path: Path) -> None:
    out = tiny_model_dir(tmp_path, name="m")
    first = read_meta(out)["export_id"]
    tiny_model_dir(tmp_path, name="m")
    assert read_meta(out)["export_id"] != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temporary or old folders left
    shutil.rmtree(out)


def test_a_bare_pt_without_tokenizer_fails_before_its_weights_are_read(tmp_path: Path, monkeypatch) -> None:
    from fusereview.models import checkpoints

    pt = write_official_pt(tmp_path / "official", with_tokenizer=False)

    def no_reading(path: Path) -> None:
        raise AssertionError(f"{path} was read before the tokenizer was looked for")

    monkeypatch.setattr(checkpoints, "_torch_load", no_reading)
    with pytest.raises(TokenizerError, match="comes without a tokenizer"):
        load_model(pt)


def test_clip_vocab_and_merges_beside_a_checkpoint_are_found(tmp_path: Path) -> None:
    pt = write_official_pt(tmp_path / "official", with_tokenizer=False)
    vocab = tiny_tokenizer().tokenizer.get_vocab()
    (pt.parent / "vocab.json").write_text(json.dumps(vocab))
    (pt.parent / "merges.txt").write_text("#version: 0.2\n")  # the tiny tokenizer has no merges
    loaded = load_model(pt)
    assert loaded.report.complete
    assert (
        loaded.tokenizer.encode(["fuse neutrals"])[0].tolist()
        == tiny_tokenizer().encode(["fuse neutrals"])[0].tolist()
    )


def test_sam2_neck_of_a_video_checkpoint_is_skipped_and_said_so(tmp_path: Path) -> None:
    pt = write_official_pt(tmp_path / "official")
    state = torch.load(pt, weights_only=True)
    neck = {
        k.replace(".convs.", ".sam2_convs."): v.clone()
        for k, v in state.items()
        if ".vision_backbone.convs." in k
    }
    assert neck
    torch.save({**state, **neck}, pt)
    loaded = load_model(pt)
    assert loaded.report.unexpected == [] and loaded.report.complete
    assert loaded.report.skipped_reasons["SAM2 neck of the video tracker"] == len(neck)
    assert "SAM2 neck of the video tracker" in loaded.report.summary()


def test_loading_a_transformers_folder_prints_no_progress_bar(tmp_path: Path, capfd) -> None:
    from transformers.utils import logging as hf_logging

    folder = write_transformers_folder(tmp_path / "hf")
    capfd.readouterr()
    load_model(folder)
    captured = capfd.readouterr()
    assert "Loading weights" not in captured.err + captured.out
    assert hf_logging.is_progress_bar_enabled()  # the caller's setting is restored
