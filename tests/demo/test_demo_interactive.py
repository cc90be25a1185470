"""The demo model's shipped click head segments what is clicked, loaded from the shipped files.

``resources/demo_model/interactive/`` is produced by ``python -m fusereview.demo.build_interactive``
(trained on photos of another seed). Here the photos are the demo dataset's (seed 0, never trained
on), each object is clicked at its most interior pixel, alone and with a negative click inside
another object; the masks are compared with the photos' own ground truth.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from fusereview.core.geometry import rle_to_mask
from fusereview.core.synthetic import render_image
from fusereview.demo.project import DEMO_SEED, DEMO_SIZE, demo_model_dir
from fusereview.models import load_model
from fusereview.models.interactive import HEAD_META, INTERACTIVE_DIR, load_interactive


def _interior(mask: np.ndarray) -> tuple[int, int]:
    d = cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(d)), d.shape)
    return int(x), int(y)


@pytest.fixture(scope="module")
def segmenter():
    model = demo_model_dir()
    loaded = load_model(model)
    return load_interactive(model, loaded, device="cpu"), loaded


@pytest.fixture(scope="module")
def photos() -> list[tuple[np.ndarray, list[np.ndarray]]]:
    rng = np.random.default_rng(DEMO_SEED)
    out = []
    for _ in range(4):
        img, objs = render_image(rng, DEMO_SIZE)
        out.append((img, [o["mask"] for o in objs if o["mask"].sum() >= 100]))
    return out


def test_the_shipped_head_belongs_to_the_shipped_model(segmenter) -> None:
    seg, loaded = segmenter
    meta = json.loads((demo_model_dir() / INTERACTIVE_DIR / HEAD_META).read_text())
    assert meta["base_fingerprint"] == loaded.fingerprint
    assert meta["trained"] is True and seg.report.complete
    assert seg.head.vision_encoder.backbone is loaded.model.vision_encoder.backbone


def test_a_click_covers_the_clicked_pixel_and_not_a_negative_one(segmenter, photos) -> None:
    seg, _ = segmenter
    covered, excluded, ious, pairs = 0, 0, [], 0
    for n, (img, masks) in enumerate(photos):
        for k, m in enumerate(masks):
            x, y = _interior(m)
            r = seg.segment(f"p{n}", img, [(x + 0.5, y + 0.5, 1)])
            pm = rle_to_mask(r.mask)
            covered += int(pm[y, x])
            ious.append((pm & m).sum() / (pm | m).sum())
            for j, other in enumerate(masks):
                if j == k:
                    continue
                nx, ny = _interior(other)
                rn = seg.segment(f"p{n}", img, [(x + 0.5, y + 0.5, 1), (nx + 0.5, ny + 0.5, 0)])
                pn = rle_to_mask(rn.mask)
                pairs += 1
                excluded += int(pn[y, x] and not pn[ny, nx])
                break
    n_obj = len(ious)
    assert n_obj >= 8 and pairs >= 6
    assert covered == n_obj, f"{n_obj - covered} of {n_obj} clicked pixels not in their mask"
    assert excluded == pairs, f"{pairs - excluded} of {pairs} positive/negative pairs wrong"
    assert float(np.mean(ious)) > 0.5, f"mean IoU {np.mean(ious):.2f}"


def test_clicks_reuse_the_embedding(segmenter, photos) -> None:
    seg, _ = segmenter
    img, masks = photos[0]
    x, y = _interior(masks[0])
    first = seg.segment("reuse", img, [(x + 0.5, y + 0.5, 1)])
    again = seg.segment("reuse", img, [(x + 0.5, y + 0.5, 1), (5, 5, 0)], mask_logits=first.logits)
    assert first.embedded and not again.embedded
