"""Masks resized and encoded one detection at a time give the RLEs of the old all-at-once path.

The old path (kept here as the reference) resized every kept mask to the full image size as
float32 at once: 5.3 GB for one 6000 x 4000 photo with 30 detections.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from model_samples import masks_all_at_once as all_at_once
from pycocotools import mask as mask_utils

from fusereview.models import masks as masks_mod
from fusereview.models.masks import mask_logits_to_rle, masks_to_rles


def blob_logits(h: int, w: int, seed: int) -> torch.Tensor:
    """Smooth logits with a few positive blobs (what a mask head gives), plus noise."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randn(1, 1, max(2, h // 6), max(2, w // 6), generator=g) * 3 - 1
    smooth = F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)[0, 0]
    return smooth + 0.3 * torch.randn(h, w, generator=g)


@pytest.mark.parametrize(
    ("h_in", "w_in", "height", "width"),
    [(28, 28, 100, 150), (28, 28, 150, 100), (72, 72, 480, 640), (32, 24, 37, 301), (40, 40, 17, 23)],
)
def test_same_rles_as_the_all_at_once_path(h_in: int, w_in: int, height: int, width: int) -> None:
    logits = torch.stack([blob_logits(h_in, w_in, seed) for seed in range(6)])
    assert masks_to_rles(logits, height, width) == all_at_once(logits, height, width)


def test_edge_cases_empty_full_and_runs_that_join_across_columns() -> None:
    h, w = 16, 16
    empty = torch.full((h, w), -1.0)
    full = torch.full((h, w), 2.0)
    band = torch.full((h, w), -1.0)
    band[:, 5:9] = 3.0  # whole columns: runs meet from one column to the next
    corner = torch.full((h, w), -1.0)
    corner[0, 0] = 5.0  # a single positive pixel at the edge (a clamped tap)
    stack = torch.stack([empty, full, band, corner])
    for height, width in ((64, 48), (16, 16), (9, 7)):
        assert masks_to_rles(stack, height, width) == all_at_once(stack, height, width)
    assert mask_logits_to_rle(empty, 64, 48)["counts"] == mask_utils.encode(
        np.zeros((64, 48), dtype=np.uint8, order="F")
    )["counts"].decode("ascii")


def test_strips_of_any_width_give_the_same_rle(monkeypatch: pytest.MonkeyPatch) -> None:
    logits = torch.stack([blob_logits(30, 30, 7), blob_logits(30, 30, 8)])
    want = all_at_once(logits, 210, 190)
    for strip in (1, 97, 5000):  # a single column at a time, odd widths, everything in one
        monkeypatch.setattr(masks_mod, "STRIP_PIXELS", strip)
        assert masks_to_rles(logits, 210, 190) == want


@settings(max_examples=40, deadline=None)
@given(
    h_in=st.integers(2, 24),
    w_in=st.integers(2, 24),
    height=st.integers(1, 90),
    width=st.integers(1, 90),
    seed=st.integers(0, 10_000),
)
def test_property_same_as_all_at_once(h_in: int, w_in: int, height: int, width: int, seed: int) -> None:
    logits = blob_logits(h_in, w_in, seed)[None]
    assert masks_to_rles(logits, height, width) == all_at_once(logits, height, width)


def test_predictor_masks_match_the_old_path_on_a_small_image() -> None:
    from fusereview.models.sam3 import detections_from_outputs, load_predictor

    predictor = load_predictor("tiny", device="cpu")
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (90, 130, 3), dtype=np.uint8)
    captured = {}
    original = predictor._heads

    def spy(*args, **kwargs):
        captured["out"] = original(*args, **kwargs)
        return captured["out"]

    predictor._heads = spy  # type: ignore[method-assign]
    dets = predictor.predict([image], [(1, "fuse")], threshold=0.0)[0]
    out = captured["out"]
    assert dets and len(dets) == len(detections_from_outputs(out, [(90, 130)], 0.0, 1, "fuse")[0])
    scores = out.pred_logits[0].float().sigmoid() * out.presence_logits[0].float().sigmoid()
    keep = torch.argsort(scores, descending=True)
    keep = keep[scores[keep] > 0.0]
    old = all_at_once(out.pred_masks[0, keep], 90, 130)
    assert [d.mask for d in dets] == old


def test_no_full_size_array_is_made_for_a_big_photo(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every resize output is a strip (or the one-row-per-source-row pass across), never the photo."""
    sizes: list[int] = []
    real = F.interpolate

    def recording(x: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        out = real(x, *args, **kwargs)
        sizes.append(out.numel())
        return out

    monkeypatch.setattr(masks_mod.F, "interpolate", recording)
    height, width = 4000, 6000
    logits = torch.full((2, 64, 64), 1.0)  # positive everywhere: the region is the whole photo
    rles = masks_to_rles(logits, height, width)
    assert rles[0] == rles[1]
    assert mask_utils.area({"size": [height, width], "counts": rles[0]["counts"].encode()}) == height * width
    assert max(sizes) <= max(masks_mod.STRIP_PIXELS, 64 * width)
    assert max(sizes) * 4 < height * width  # well under one full-size binary mask, in bytes
