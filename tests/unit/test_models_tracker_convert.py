"""The interactive (tracker) head's official <-> transformers names: full size against the manifest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from fusereview.models.convert import (
    SKIPPED_OFFICIAL_TRACKER,
    hf_folder_tracker_names,
    official_tracker_to_transformers,
    transformers_tracker_to_official,
)

MANIFEST = Path(__file__).resolve().parents[1] / "fixtures" / "sam3_tracker_manifest.json"


@pytest.fixture(scope="module")
def manifest() -> dict:
    if not MANIFEST.is_file():
        pytest.fail(f"fixture missing: {MANIFEST} (python tests/fixtures/make_sam3_tracker_manifest.py)")
    return json.loads(MANIFEST.read_text())


def test_full_size_official_head_maps_onto_every_transformers_key(manifest: dict) -> None:
    official = {k: torch.empty(s, device="meta") for k, s in manifest["official"].items()}
    converted, unknown, skipped = official_tracker_to_transformers(official)
    want = manifest["transformers"]
    assert unknown == []
    assert sorted(set(want) - set(converted)) == []
    assert sorted(set(converted) - set(want)) == []
    wrong = {k: (list(converted[k].shape), s) for k, s in want.items() if list(converted[k].shape) != s}
    assert wrong == {}
    # the layout changes, at full size: four (1, 256) point embeddings stacked, one PE matrix twice
    assert list(converted["prompt_encoder.point_embed.weight"].shape) == [4, 256]
    assert list(converted["shared_image_embedding.positional_embedding"].shape) == [2, 128]
    assert list(converted["vision_encoder.neck.fpn_layers.0.scale_layers.0.weight"].shape) == [
        1024,
        512,
        2,
        2,
    ]
    # the video memory is dropped by design, and only it
    memory = [k for k in official if SKIPPED_OFFICIAL_TRACKER.match(k)]
    assert skipped == len(memory) == 14
    assert all(".sam_" not in k for k in memory)


def test_full_size_inverse_gives_back_the_official_names_and_shapes(manifest: dict) -> None:
    hf = {k: torch.empty(s, device="meta") for k, s in manifest["transformers"].items()}
    back = transformers_tracker_to_official(hf)
    expected = {k: s for k, s in manifest["official"].items() if not SKIPPED_OFFICIAL_TRACKER.match(k)}
    assert {k: list(v.shape) for k, v in back.items()} == expected


def test_image_model_keys_are_not_the_heads() -> None:
    state = {
        "detector.backbone.vision_backbone.trunk.blocks.0.attn.qkv.weight": torch.zeros(3, 1),
        "detector.backbone.vision_backbone.convs.0.conv_1x1.weight": torch.zeros(1),
        "tracker.sam_mask_decoder.some_new_part.weight": torch.zeros(1),
    }
    converted, unknown, skipped = official_tracker_to_transformers(state)
    assert converted == {} and skipped == 0
    assert unknown == ["tracker.sam_mask_decoder.some_new_part.weight"]  # reported, not dropped


def test_transformers_folder_names_follow_transformers_own_rules(manifest: dict) -> None:
    keys = [f"tracker_model.{k}" for k in manifest["transformers"] if not k.startswith("vision_encoder.")]
    keys += [
        "tracker_neck." + k[len("vision_encoder.neck.") :]
        for k in manifest["transformers"]
        if k.startswith("vision_encoder.neck.")
    ]
    keys += [
        "tracker_model.memory_attention.layers.0.self_attn.q_proj.weight",
        "tracker_model.no_object_pointer",
    ]
    keys += [
        "detector_model.vision_encoder.backbone.layers.0.mlp.fc1.weight"
    ]  # the shared ViT: not the head's
    names, skipped = hf_folder_tracker_names(keys)
    assert skipped == 2
    assert sorted(names.values()) == sorted(manifest["transformers"])
