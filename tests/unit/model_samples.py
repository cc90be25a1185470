"""Tiny SAM3 checkpoints on disk, in every format fusereview reads. Shared by the test suites.

Stable helpers for other parts' tests (training, evaluation, GUI)::

    from model_samples import tiny_model_dir        # tests/unit is on sys.path under pytest
    model_dir = tiny_model_dir(tmp_path)          # an export folder (format d) of the seeded tiny model
    predictor = load_predictor(str(model_dir))    # or load_predictor("tiny") with no files at all

Everything here is built from :func:`fusereview.models.tiny.tiny_model` (seeded, no download).
The official formats (``sam3.pt``, trainer ``checkpoint.pt``) are written through the inverse of the
name mapping, with the extra keys real files carry (rotary tables, point projections, tracker
weights), so loading them exercises the real conversion.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from fusereview.models.convert import transformers_to_official
from fusereview.models.export import save_export
from fusereview.models.tiny import tiny_model, tiny_tokenizer


def tiny_model_dir(
    tmp_path: Path, *, name: str = "tiny_export", dtype: str = "float32", seed: int = 0
) -> Path:
    """Save the seeded tiny model as an export folder (format d) under ``tmp_path``; return the folder.

    Parameters
    ----------
    tmp_path:
        Parent folder (pytest's ``tmp_path``).
    name:
        Folder name.
    dtype:
        ``"float32"`` or ``"bfloat16"``.
    seed:
        Initialisation seed (0 is the ``"tiny"`` spec's weights).
    """
    return save_export(
        tmp_path / name,
        tiny_model(seed),
        tiny_tokenizer(),
        prompts={1: "fuse neutrals"},
        run_id="test-run",
        metrics={"AP": 0.0},
        dtype=dtype,
    )


def official_extras(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Keys real official files have that transformers drops: rotary tables and point projections."""
    cfg = model.config
    vit = cfg.vision_config.backbone_config
    head_dim = vit.hidden_size // vit.num_attention_heads
    h = cfg.geometry_encoder_config.hidden_size
    extras = {
        f"backbone.vision_backbone.trunk.blocks.{i}.attn.freqs_cis": torch.zeros(
            (vit.window_size**2, head_dim // 2), dtype=torch.complex64
        )
        for i in range(vit.num_hidden_layers)
    }
    extras["geometry_encoder.points_direct_project.weight"] = torch.zeros(h, 2)
    extras["geometry_encoder.points_direct_project.bias"] = torch.zeros(h)
    return extras


def write_transformers_folder(out: Path, *, seed: int = 0, prefix: str = "detector_model.") -> Path:
    """Format a: ``config.json``, ``model.safetensors`` (keys under ``prefix``, plus a tracker key), tokenizer."""
    model = tiny_model(seed)
    out.mkdir(parents=True, exist_ok=True)
    model.config.save_pretrained(str(out))
    state = {prefix + k: v.contiguous() for k, v in model.state_dict().items()}
    state["tracker_model.memory_encoder.weight"] = torch.zeros(2, 2)
    save_file(state, str(out / "model.safetensors"))
    tiny_tokenizer().save(out)
    return out


def write_official_pt(
    out_dir: Path, *, seed: int = 0, with_config: bool = True, with_tokenizer: bool = True
) -> Path:
    """Format b: ``sam3.pt`` with the image model under ``detector.`` (official names).

    A tiny model's shapes differ from the full-size default, so ``config.json`` is written beside it
    unless ``with_config`` is False; ``tokenizer.json`` likewise.
    """
    model = tiny_model(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    official = {**transformers_to_official(model.state_dict()), **official_extras(model)}
    state = {"detector." + k: v for k, v in official.items()}
    state["tracker.sam_mask_decoder.iou_token.weight"] = torch.zeros(1, 4)
    torch.save(state, out_dir / "sam3.pt")
    if with_config:
        model.config.save_pretrained(str(out_dir))
    if with_tokenizer:
        tiny_tokenizer().save(out_dir)
    return out_dir / "sam3.pt"


def write_trainer_checkpoint(
    out_dir: Path, *, seed: int = 0, key: str = "model", ddp: bool = True, drop: int = 0
) -> Path:
    """Format c: the official trainer's ``checkpoint.pt`` (weights under ``key``, optimizer state beside).

    ``drop`` removes that many parameters (to plant a partial checkpoint).
    """
    model = tiny_model(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    official = transformers_to_official(model.state_dict())
    names = sorted(official)[drop:]
    prefix = ("module." if ddp else "") + "detector."
    weights = {prefix + k: official[k] for k in names}
    ckpt = {
        key: weights,
        "optimizer": {
            "state": {0: {"step": torch.tensor(3.0)}},
            "param_groups": [{"lr": 1e-4, "params": [0]}],
        },
        "epoch": 3,
        "loss": 0.5,
    }
    torch.save(ckpt, out_dir / "checkpoint.pt")
    model.config.save_pretrained(str(out_dir))
    tiny_tokenizer().save(out_dir)
    return out_dir / "checkpoint.pt"


def read_meta(export_dir: Path) -> dict:
    """The export's ``fusereview.json``."""
    return json.loads((export_dir / "fusereview.json").read_text())


def masks_all_at_once(logits: torch.Tensor, height: int, width: int) -> list[dict[str, object]]:
    """The mask post-processing before per-detection masks (the reference for their tests and
    benchmark): every ``(K, h, w)`` logit map resized to the full image at once as float32, then
    thresholded and RLE-encoded in one pycocotools call."""
    import torch.nn.functional as F
    from pycocotools import mask as mask_utils

    logits_t = logits[None].float().transpose(-1, -2)
    resized_t = F.interpolate(logits_t, size=(width, height), mode="bilinear", align_corners=False)[0]
    arr = (resized_t > 0).to(torch.uint8).contiguous().cpu().numpy().transpose(2, 1, 0)
    return [
        {"size": [int(r["size"][0]), int(r["size"][1])], "counts": r["counts"].decode("ascii")}
        for r in mask_utils.encode(arr)
    ]
