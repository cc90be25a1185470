"""Official <-> transformers parameter names: full size against the manifest, tiny size both ways."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from fusereview.models.convert import is_skipped_official, official_to_transformers, transformers_to_official
from fusereview.models.tiny import tiny_model

REPO_ROOT = Path(__file__).resolve().parents[2]
# A copy of ../shared/fixtures/sam3_state_dict_manifest.json (every parameter name and shape of the
# full-size SAM3 image model, official and transformers naming), kept in the repository so that a
# clean clone tests the conversion wherever it is checked out.
MANIFEST = REPO_ROOT / "tests" / "fixtures" / "sam3_state_dict_manifest.json"


@pytest.fixture(scope="module")
def manifest() -> dict:
    if not MANIFEST.is_file():
        pytest.fail(f"fixture missing: {MANIFEST}")
    return json.loads(MANIFEST.read_text())


def test_full_size_official_names_map_onto_every_transformers_key(manifest: dict) -> None:
    official = {k: torch.empty(s, device="meta") for k, s in manifest["official"].items()}
    converted, unknown = official_to_transformers(official)
    want = manifest["transformers"]
    assert unknown == []
    assert sorted(set(want) - set(converted)) == []  # every transformers key is produced
    assert sorted(set(converted) - set(want)) == []  # and nothing else
    wrong = {k: (list(converted[k].shape), s) for k, s in want.items() if list(converted[k].shape) != s}
    assert wrong == {}
    # the layout changes the brief names, at full size
    assert list(converted["vision_encoder.backbone.embeddings.position_embeddings"].shape) == [1, 576, 1024]
    assert list(converted["text_encoder.text_projection.weight"].shape) == [512, 1024]
    skipped = [k for k in official if is_skipped_official(k)]
    assert len(skipped) == 32 + 6  # one rotary table per ViT block, six point-projection tensors


def test_full_size_inverse_gives_back_official_names_and_shapes(manifest: dict) -> None:
    hf = {k: torch.empty(s, device="meta") for k, s in manifest["transformers"].items()}
    back = transformers_to_official(hf)
    expected = {k: s for k, s in manifest["official"].items() if not is_skipped_official(k)}
    assert {k: list(v.shape) for k, v in back.items()} == expected


def test_tiny_round_trip_keeps_every_tensor_value() -> None:
    state = tiny_model().state_dict()
    official = transformers_to_official(state)
    assert any(k.endswith("attn.qkv.weight") for k in official)
    assert any(k.endswith("in_proj_weight") for k in official)
    back, unknown = official_to_transformers(official)
    assert unknown == []
    assert set(back) == set(state)
    for k, v in state.items():
        assert torch.equal(back[k], v), k


def test_unknown_official_key_is_reported_not_dropped() -> None:
    _, unknown = official_to_transformers({"some_other_model.weight": torch.zeros(1)})
    assert unknown == ["some_other_model.weight"]


def test_full_size_sam2_neck_of_the_video_model_is_skipped_by_design(manifest: dict) -> None:
    from fusereview.models.convert import skip_reason

    extra = manifest["official_video_detector_extra"]
    assert len(extra) == 22 and all(k.startswith("backbone.vision_backbone.sam2_convs.") for k in extra)
    official = {k: torch.empty(s, device="meta") for k, s in {**manifest["official"], **extra}.items()}
    converted, unknown = official_to_transformers(official)
    assert unknown == []  # not "unexpected 22"
    assert sorted(converted) == sorted(manifest["transformers"])
    assert {skip_reason(k) for k in extra} == {"SAM2 neck of the video tracker"}
