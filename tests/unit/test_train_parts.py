"""Unit tests of the training engine's parts: matcher, losses, per-layer outputs, optimizer, data."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from fusereview.core.errors import FusereviewError
from fusereview.training.data import TrainDataset, collate
from fusereview.training.forward import enable_activation_checkpointing, forward_all_layers
from fusereview.training.losses import COMPONENTS, SetCriterion
from fusereview.training.matcher import HungarianMatcher
from fusereview.training.modelio import load_model, tokenize
from fusereview.training.optim import apply_freeze, lr_factor, param_groups
from fusereview.training.toydata import toy_samples


@pytest.fixture(scope="module")
def tiny():
    return load_model("tiny", image_size=112)


@pytest.fixture(scope="module")
def batch():
    ds = TrainDataset(
        toy_samples(4, size=112),
        [(1, "fuse neutrals")],
        image_size=112,
        mask_size=32,
        augment="flip_color_scale",
        negatives_per_image=0.5,
    )
    return collate([ds[i] for i in range(len(ds))])


def test_matcher_recovers_a_permutation():
    tgt = torch.tensor([[0.1, 0.1, 0.3, 0.3], [0.5, 0.5, 0.9, 0.8], [0.0, 0.6, 0.2, 0.9]])
    perm = torch.tensor([2, 0, 1])
    boxes = torch.zeros(1, 5, 4)
    boxes[0, :3] = tgt[perm]
    boxes[0, 3:] = torch.tensor([0.4, 0.4, 0.45, 0.45])
    ((qi, ti),) = HungarianMatcher()(torch.zeros(1, 5), boxes, [tgt])
    assert sorted(qi.tolist()) == [0, 1, 2]
    assert all(perm[q] == t for q, t in zip(qi.tolist(), ti.tolist(), strict=True))


def test_matcher_handles_no_targets():
    ((qi, ti),) = HungarianMatcher()(torch.zeros(1, 5), torch.rand(1, 5, 4), [torch.zeros(0, 4)])
    assert len(qi) == len(ti) == 0


def test_last_layer_reproduces_model_outputs(tiny, batch):
    ids, am = tokenize(tiny.tokenizer, batch["prompts"])
    tiny.model.eval()
    with torch.no_grad():
        out = forward_all_layers(tiny.model, pixel_values=batch["pixels"], input_ids=ids, attention_mask=am)
    tiny.model.train()
    n_layers = tiny.model.config.detr_decoder_config.num_layers
    assert out["boxes"].shape[0] == n_layers
    torch.testing.assert_close(out["boxes"][-1], out["pred_boxes"])
    torch.testing.assert_close(out["logits"][-1], out["pred_logits"])
    torch.testing.assert_close(out["presence"][-1], out["presence_logits"].squeeze(-1))
    # Earlier layers differ (otherwise the auxiliary losses would be the same loss again).
    assert not torch.allclose(out["boxes"][0], out["boxes"][-1])


def test_every_component_finite_and_gradients_flow(tiny, batch):
    ids, am = tokenize(tiny.tokenizer, batch["prompts"])
    torch.manual_seed(0)
    out = forward_all_layers(
        tiny.model, pixel_values=batch["pixels"], input_ids=ids, attention_mask=am, o2m=True
    )
    total, comps = SetCriterion(recipe="sam3")(out, batch)
    assert set(comps) == set(COMPONENTS)
    assert all(torch.isfinite(v) for v in comps.values())
    assert comps["loss_aux"] > 0 and comps["loss_bbox"] > 0 and comps["loss_mask"] > 0
    assert comps["loss_o2m"] > 0 and comps["loss_semantic_dice"] > 0
    total.backward()
    g = tiny.model.detr_decoder.box_head.layer1.weight.grad
    assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0
    tiny.model.zero_grad(set_to_none=True)


@pytest.mark.parametrize("recipe", ["sam3", "legacy"])
def test_perfect_boxes_have_zero_box_loss(recipe):
    crit = SetCriterion(recipe=recipe)
    tgt = torch.tensor([[0.1, 0.1, 0.4, 0.5]])
    boxes = torch.tensor([[[0.1, 0.1, 0.4, 0.5], [0.6, 0.6, 0.7, 0.7]]]).expand(2, 1, 2, 4).clone()
    comps, _ = crit._layer(
        torch.tensor([[5.0, -5.0]]),
        boxes[-1],
        torch.tensor([3.0]),
        [tgt],
        torch.tensor([1.0]),
        1.0,
        crit.matcher,
    )
    assert comps["loss_bbox"].item() == pytest.approx(0.0, abs=1e-6)
    assert comps["loss_giou"].item() == pytest.approx(0.0, abs=1e-6)


def test_negative_prompt_trains_presence_only(batch):
    assert (batch["positive"] == 0).any(), "the fixture must contain a negative prompt"
    i = int((batch["positive"] == 0).nonzero()[0])
    assert batch["prompts"][i] != "fuse neutrals" and len(batch["boxes"][i]) == 0


def test_activation_checkpointing_keeps_loss_and_gradients():
    a = load_model("tiny", image_size=112, seed=3)
    b = load_model("tiny", image_size=112, seed=3)
    assert enable_activation_checkpointing(b.model) == len(b.model.vision_encoder.backbone.layers)
    assert a.model.state_dict().keys() == b.model.state_dict().keys()
    ds = TrainDataset(
        toy_samples(2, size=112), [(1, "x")], image_size=112, mask_size=32, negatives_per_image=0
    )
    bt = collate([ds[0], ds[1]])
    grads = []
    for m in (a, b):
        for mod in m.model.modules():
            if isinstance(mod, torch.nn.Dropout):
                mod.p = 0.0
        ids, am = tokenize(m.tokenizer, bt["prompts"])
        torch.manual_seed(0)
        loss, _ = SetCriterion()(
            forward_all_layers(m.model, pixel_values=bt["pixels"], input_ids=ids, attention_mask=am), bt
        )
        loss.backward()
        grads.append((loss.item(), m.model.vision_encoder.backbone.layers[0].mlp.fc1.weight.grad.clone()))
    assert grads[0][0] == pytest.approx(grads[1][0], rel=1e-5)
    torch.testing.assert_close(grads[0][1], grads[1][1], rtol=1e-4, atol=1e-6)


def test_freeze_presets_and_param_groups(tiny):
    m = tiny.model
    counts = apply_freeze(m, "freeze_vision_text")
    assert counts["vision"] == 0 and counts["text"] == 0 and counts["decoder"] > 0
    assert not any(p.requires_grad for p in m.vision_encoder.parameters())
    heads = apply_freeze(m, "heads_only")
    assert 0 < heads["decoder"] < counts["decoder"]
    apply_freeze(m, "full")
    groups = param_groups(m, 1e-3, 0.05, layer_decay=0.5)
    vision_lrs = sorted({g["lr"] for g in groups if g["name"].startswith("vision")})
    assert vision_lrs[0] < vision_lrs[-1] <= 1e-3  # deeper towards the input = smaller lr
    assert all((g["weight_decay"] == 0) == g["name"].endswith(":wd0") for g in groups)
    with pytest.raises(FusereviewError, match="freeze"):
        apply_freeze(m, "everything")


def test_lr_schedule_warmup_then_decay():
    f = [lr_factor(s, warmup_steps=10, total_steps=100, schedule="cosine") for s in range(100)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in itertools.pairwise(f[10:])) and f[-1] < 0.05
    g = [lr_factor(s, warmup_steps=10, total_steps=100, schedule="inverse_sqrt") for s in (10, 40, 90)]
    assert g[0] > g[1] > g[2]
    with pytest.raises(FusereviewError, match="schedule"):
        lr_factor(0, warmup_steps=1, total_steps=2, schedule="linear")


def test_dataset_is_deterministic_per_epoch_and_boxes_follow_augmentation():
    samples = toy_samples(3, size=112)
    ds = TrainDataset(
        samples, [(1, "p")], image_size=112, mask_size=32, augment="flip_color_scale", negatives_per_image=0
    )
    a, b = ds[0], ds[0]
    torch.testing.assert_close(a.pixels, b.pixels)
    ds.set_epoch(1)
    c = ds[0]
    assert not torch.allclose(a.pixels, c.pixels)
    # Every box lies on its mask: the mask's bounding box (at mask resolution) matches the box.
    for it in (a, c):
        for box, m in zip(it.boxes, it.masks, strict=True):
            ys, xs = np.nonzero(m.numpy())
            assert (
                abs(xs.min() / 32 - box[0].item()) < 2 / 32
                and abs((ys.max() + 1) / 32 - box[3].item()) < 2 / 32
            )


def test_training_loads_images_as_the_annotations_see_them(tmp_path):
    # a phone photo: pixels stored 30x10 with EXIF "rotate 90", annotated (by Roboflow) on the
    # rotated 10x30 image: training must see the rotated pixels, as review and prediction do
    import json

    from coco_samples import encode_image, jpeg_with_orientation

    from fusereview.training.data import samples_from_coco

    stored = np.zeros((10, 30, 3), np.uint8)
    stored[:, :5] = 255
    split = tmp_path / "train"
    split.mkdir()
    (split / "rot.jpg").write_bytes(jpeg_with_orientation(encode_image(stored, ".jpg"), 6))
    (split / "_annotations.coco.json").write_text(
        json.dumps(
            {
                "images": [{"id": 0, "file_name": "rot.jpg", "width": 10, "height": 30}],
                "annotations": [
                    {
                        "id": 0,
                        "image_id": 0,
                        "category_id": 1,
                        "bbox": [0, 0, 10, 5],
                        "area": 50,
                        "segmentation": [],
                        "iscrowd": 0,
                    }
                ],
                "categories": [{"id": 1, "name": "fuse neutrals", "supercategory": "none"}],
            }
        )
    )
    samples, _, _ = samples_from_coco(split / "_annotations.coco.json")
    assert samples[0].image.shape == (30, 10, 3)
    assert samples[0].image[:5].mean() > 200  # the white band is on top, under the annotated box


def test_loss_weights_are_checked_by_name_and_survive_a_resume():
    from fusereview.training.config import TrainConfig
    from fusereview.training.presets import preset_config

    with pytest.raises(FusereviewError, match=r"loss_weights\.dicee"):
        preset_config("tiny", loss_weights={"dicee": 5.0}).check()
    cfg = preset_config("tiny", loss_weights={"dice": 5.0})
    cfg.check()
    assert TrainConfig.from_dict(cfg.to_dict()).loss_weights == {"dice": 5.0}


def test_loss_recipe_of_the_presets_is_checked_and_an_old_run_resumes_with_the_first_recipe():
    from fusereview.training.config import TrainConfig
    from fusereview.training.presets import preset_config

    assert preset_config("customer").loss_recipe == "sam3"
    assert preset_config("fast").loss_recipe == "sam3"
    with pytest.raises(FusereviewError, match=r"loss_recipe: unknown 'dino'"):
        preset_config("customer", loss_recipe="dino").check()
    cfg = preset_config("fast")
    assert TrainConfig.from_dict(cfg.to_dict()).loss_recipe == "sam3"
    old = {k: v for k, v in cfg.to_dict().items() if k != "loss_recipe"}  # config.json of an earlier version
    assert TrainConfig.from_dict(old).loss_recipe == "legacy"
