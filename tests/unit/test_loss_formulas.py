"""Every loss term against its formula, written out here independently on small hand-made tensors.

The expected values are computed with ``math`` on Python floats, term by term as the formulas in
``docs/LOSSES.md`` state them, never by calling the code under test.
"""

from __future__ import annotations

import math

import pytest
import torch

from fusereview.training import loss_terms as T
from fusereview.training.losses import SetCriterion, recipe
from fusereview.training.matcher import HungarianMatcher, OneToManyMatcher


def sig(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def bce(x: float, t: float) -> float:
    p = sig(x)
    return -(t * math.log(p) + (1 - t) * math.log(1 - p))


def focal(x: float, t: float, alpha: float, gamma: float) -> float:
    p = sig(x)
    p_t = p * t + (1 - p) * (1 - t)
    a_t = alpha * t + (1 - alpha) * (1 - t)
    return a_t * (1 - p_t) ** gamma * bce(x, t)


def iou(a: list[float], b: list[float]) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def giou(a: list[float], b: list[float]) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    hull = (max(a[2], b[2]) - min(a[0], b[0])) * (max(a[3], b[3]) - min(a[1], b[1]))
    return inter / union - (hull - union) / hull


def to_cxcywh(b: list[float]) -> list[float]:
    return [(b[0] + b[2]) / 2, (b[1] + b[3]) / 2, b[2] - b[0], b[3] - b[1]]


# ------------------------------------------------------------------------- classification, presence


def test_iou_aware_classification_soft_target_positive_weight_negative_weighting_and_presence_gating() -> (
    None
):
    logits = [[0.5, -1.0, 2.0], [1.5, -0.3, 0.1]]
    matched = [[False, True, False], [True, False, False]]
    ious = [[0.0, 0.6, 0.0], [0.002, 0.0, 0.0]]  # a bad box: its soft target is clamped to 0.01
    keep = [1.0, 1.0]
    expected = 0.0
    for b in range(2):
        for q in range(3):
            x = logits[b][q]
            p = sig(x)
            if matched[b][q]:
                t = max(0.01, p**0.25 * ious[b][q] ** 0.75)
                expected += keep[b] * 10.0 * bce(x, t)
            else:
                expected += keep[b] * p**2 * bce(x, 0.0)
    expected /= 6  # mean over every (item, query) entry
    got = T.iou_aware_classification(
        torch.tensor(logits), torch.tensor(matched), torch.tensor(ious), torch.tensor(keep)
    )
    assert got.item() == pytest.approx(expected, rel=1e-6)

    # an item whose prompt has no object contributes nothing, whatever its scores say
    gated = T.iou_aware_classification(
        torch.tensor(logits), torch.tensor(matched), torch.tensor(ious), torch.tensor([1.0, 0.0])
    )
    only_first = sum(
        (10.0 * bce(x, max(0.01, sig(x) ** 0.25 * i**0.75)) if m else sig(x) ** 2 * bce(x, 0.0))
        for x, m, i in zip(logits[0], matched[0], ious[0], strict=True)
    )
    assert gated.item() == pytest.approx(only_first / 6, rel=1e-6)


def test_the_soft_target_is_not_differentiated() -> None:
    # the target p^a IoU^(1-a) uses the query's own probability; it must be a constant for the gradient
    x = torch.tensor([[0.7]], requires_grad=True)
    T.iou_aware_classification(
        x, torch.tensor([[True]]), torch.tensor([[0.5]]), torch.tensor([1.0])
    ).backward()
    p = sig(0.7)
    t = p**0.25 * 0.5**0.75
    # d/dx of 10 * BCE(x, t) with t fixed is 10 * (p - t)
    assert x.grad.item() == pytest.approx(10.0 * (p - t), rel=1e-5)


def test_presence_loss_is_half_the_bce_averaged_over_items() -> None:
    logits, keep = [2.0, -1.0, 0.4], [1.0, 0.0, 1.0]
    expected = sum(0.5 * bce(x, k) for x, k in zip(logits, keep, strict=True)) / 3
    assert T.presence_loss(torch.tensor(logits), torch.tensor(keep)).item() == pytest.approx(
        expected, rel=1e-6
    )


def test_focal_loss_with_soft_targets() -> None:
    xs, ts = [1.2, -0.4, 3.0], [1.0, 0.3, 0.0]
    got = T.sigmoid_focal(torch.tensor(xs), torch.tensor(ts), alpha=0.6, gamma=2.0)
    for g, x, t in zip(got.tolist(), xs, ts, strict=True):
        assert g == pytest.approx(focal(x, t, 0.6, 2.0), rel=1e-6)


# ------------------------------------------------------------------------- boxes and matching


def test_box_l1_is_on_centre_width_height_and_giou_on_corners() -> None:
    pred = [[0.1, 0.1, 0.5, 0.5], [0.2, 0.3, 0.4, 0.9]]
    tgt = [[0.3, 0.1, 0.5, 0.6], [0.1, 0.3, 0.5, 0.7]]
    num_boxes = 3.0
    l1 = sum(
        abs(a - b)
        for p, t in zip(pred, tgt, strict=True)
        for a, b in zip(to_cxcywh(p), to_cxcywh(t), strict=True)
    )
    l1_xyxy = sum(abs(a - b) for p, t in zip(pred, tgt, strict=True) for a, b in zip(p, t, strict=True))
    assert l1 != pytest.approx(l1_xyxy)  # the example tells the two apart
    g = sum(1 - giou(p, t) for p, t in zip(pred, tgt, strict=True))
    got_l1, got_giou = T.box_l1_and_giou(torch.tensor(pred), torch.tensor(tgt), num_boxes)
    assert got_l1.item() == pytest.approx(l1 / num_boxes, rel=1e-6)
    assert got_giou.item() == pytest.approx(g / num_boxes, rel=1e-6)
    legacy_l1, _ = T.box_l1_and_giou(torch.tensor(pred), torch.tensor(tgt), num_boxes, l1_on="xyxy")
    assert legacy_l1.item() == pytest.approx(l1_xyxy / num_boxes, rel=1e-6)


def test_matcher_cost_is_focal_class_plus_cxcywh_l1_minus_giou() -> None:
    logits = [0.3, -2.0]
    boxes = [[0.1, 0.1, 0.5, 0.5], [0.4, 0.4, 0.9, 0.8]]
    tgt = [[0.3, 0.1, 0.5, 0.6], [0.5, 0.5, 0.9, 0.9]]
    m = HungarianMatcher(cost_class=2.0, cost_bbox=5.0, cost_giou=2.0)
    got = m.cost_matrix(torch.tensor(logits), torch.tensor(boxes), torch.tensor(tgt))
    for q in range(2):
        p = sig(logits[q])
        cls = -0.25 * (1 - p) ** 2 * math.log(p) + 0.75 * p**2 * math.log(1 - p)
        for j in range(2):
            l1 = sum(abs(a - b) for a, b in zip(to_cxcywh(boxes[q]), to_cxcywh(tgt[j]), strict=True))
            want = 5.0 * l1 + 2.0 * cls - 2.0 * giou(boxes[q], tgt[j])
            assert got[q, j].item() == pytest.approx(want, rel=1e-5), (q, j)


def test_one_to_many_matcher_takes_the_top_k_above_threshold_and_one_target_per_query() -> None:
    tgt = [[0.0, 0.0, 0.4, 0.4], [0.5, 0.5, 0.9, 0.9]]
    boxes = [
        [0.0, 0.0, 0.4, 0.4],  # exact on object 0
        [0.0, 0.0, 0.4, 0.3],
        [0.0, 0.0, 0.3, 0.3],
        [0.05, 0.05, 0.4, 0.4],
        [0.1, 0.1, 0.4, 0.4],
        [0.5, 0.5, 0.9, 0.9],  # exact on object 1
        [0.6, 0.6, 0.9, 0.9],
        [0.3, 0.3, 0.6, 0.6],  # between the two, poor for both
    ]
    logits = [2.0, 1.0, 0.0, 0.5, -1.0, 1.0, -3.0, 3.0]
    alpha, threshold, k = 0.3, 0.4, 3
    quality = [
        [alpha * sig(x) + (1 - alpha) * iou(b, t) for t in tgt] for x, b in zip(logits, boxes, strict=True)
    ]
    expected = {}
    for j in range(2):
        order = sorted(range(len(boxes)), key=lambda q: -quality[q][j])[:k]
        for q in order:
            if quality[q][j] > threshold and (q not in expected or quality[q][j] > quality[q][expected[q]]):
                expected[q] = j
    ((qi, ti),) = OneToManyMatcher(alpha=alpha, threshold=threshold, topk=k)(
        torch.tensor([logits]), torch.tensor([boxes]), [torch.tensor(tgt)]
    )
    assert dict(zip(qi.tolist(), ti.tolist(), strict=True)) == expected
    assert sorted(set(expected.values())) == [0, 1] and len(expected) >= 4  # many queries per object


# ------------------------------------------------------------------------- masks


def test_point_values_read_pixel_centres_exactly_and_interpolate_between() -> None:
    maps = torch.tensor([[[1.0, 3.0], [5.0, 7.0]]])
    coords = torch.tensor([[[0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.5, 0.25]]])
    assert T.point_values(maps, coords).tolist() == [[1.0, 3.0, 5.0, 2.0]]


def test_point_mask_losses_are_focal_and_dice_at_the_points_over_num_boxes() -> None:
    pred = torch.tensor([[[2.0, -1.0], [0.5, -3.0]], [[-0.2, 1.0], [4.0, 0.0]]])
    tgt = torch.tensor([[[1.0, 0.0], [1.0, 0.0]], [[0.0, 1.0], [1.0, 1.0]]])
    # three points, each at a pixel centre: (x, y) = (col + 0.5) / 2, (row + 0.5) / 2
    pix = [(0, 0), (0, 1), (1, 1)]  # (row, col)
    coords = torch.tensor([[[(c + 0.5) / 2, (r + 0.5) / 2] for r, c in pix]] * 2)
    num_boxes = 1.5
    foc, dic = 0.0, 0.0
    for n in range(2):
        xs = [pred[n, r, c].item() for r, c in pix]
        ts = [tgt[n, r, c].item() for r, c in pix]
        foc += sum(focal(x, t, 0.25, 2.0) for x, t in zip(xs, ts, strict=True)) / 3
        ps = [sig(x) for x in xs]
        dic += 1 - (2 * sum(p * t for p, t in zip(ps, ts, strict=True)) + 1) / (sum(ps) + sum(ts) + 1)
    got_f, got_d = T.point_mask_losses(pred, tgt, coords, num_boxes)
    assert got_f.item() == pytest.approx(foc / num_boxes, rel=1e-6)
    assert got_d.item() == pytest.approx(dic / num_boxes, rel=1e-6)


def test_importance_sampling_puts_points_where_the_mask_is_unsure_and_is_seeded() -> None:
    # confident everywhere except the band 0.25 <= x < 0.75 (half the image) where the logit is 0
    logits = torch.full((1, 16, 16), 10.0)
    logits[:, :, 4:12] = 0.0
    n = 200

    def draw(seed: int, importance: float) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        return T.sample_mask_points(logits, n, oversample=3.0, importance=importance, generator=g)

    pts = draw(0, 1.0)[0]
    assert pts.shape == (n, 2)
    # every point is in the unsure band (half a pixel of slack for the bilinear edge)
    assert ((pts[:, 0] >= 0.25 - 1 / 32) & (pts[:, 0] < 0.75 + 1 / 32)).all()
    mixed = draw(0, 0.75)[0]
    in_band = ((mixed[:, 0] >= 0.25 - 1 / 32) & (mixed[:, 0] < 0.75 + 1 / 32)).float().mean().item()
    # 150 chosen in the band, 50 uniform of which about half land in it: about 0.875
    assert 0.8 < in_band < 0.95
    assert torch.equal(draw(7, 0.75), draw(7, 0.75))  # seeded: the same points again
    assert not torch.equal(draw(7, 0.75), draw(8, 0.75))


# ------------------------------------------------------------------------- semantic map


def test_semantic_focal_and_dice_are_averaged_over_positive_prompts_only() -> None:
    logits = torch.tensor([[[1.0, -2.0], [0.5, 0.0]], [[3.0, 3.0], [3.0, 3.0]]])
    union = torch.tensor([[[1.0, 0.0], [1.0, 1.0]], [[0.0, 0.0], [0.0, 0.0]]])  # item 1: a negative prompt
    xs = [1.0, -2.0, 0.5, 0.0]
    ts = [1.0, 0.0, 1.0, 1.0]
    foc = sum(focal(x, t, 0.6, 2.0) for x, t in zip(xs, ts, strict=True)) / 4
    ps = [sig(x) for x in xs]
    dic = 1 - (2 * sum(p * t for p, t in zip(ps, ts, strict=True)) + 1) / (sum(ps) + sum(ts) + 1)
    got_f, got_d = T.semantic_losses(logits, union)
    # one positive item: its own values (the 1e-6 of the division is below the tolerance)
    assert got_f.item() == pytest.approx(foc, rel=1e-5)
    assert got_d.item() == pytest.approx(dic, rel=1e-5)
    none_f, none_d = T.semantic_losses(logits, torch.zeros_like(union))
    assert none_f.item() == 0.0 and none_d.item() == 0.0


# ------------------------------------------------------------------------- the criterion


def _one_layer_output(boxes: list[list[float]], logits: list[float]) -> dict[str, torch.Tensor]:
    q = len(boxes)
    return {
        "logits": torch.tensor([[logits]]),
        "boxes": torch.tensor([[boxes]]),
        "presence": torch.tensor([[1.0]]),
        "masks": torch.zeros(1, q, 4, 4),
        "semantic": torch.zeros(1, 1, 4, 4),
    }


def test_box_losses_are_normalised_by_the_all_reduced_number_of_boxes(monkeypatch) -> None:
    # two ranks: this one has 2 objects, the other (simulated) 6, so every rank divides by (2 + 6) / 2
    pred = [[0.1, 0.1, 0.3, 0.3], [0.6, 0.6, 0.9, 0.8], [0.0, 0.8, 0.1, 0.9]]
    tgt = [[0.12, 0.1, 0.3, 0.35], [0.6, 0.55, 0.95, 0.8]]
    out = _one_layer_output(pred, [3.0, 3.0, -3.0])
    batch = {"boxes": [torch.tensor(tgt)], "positive": torch.tensor([1.0]), "masks": [torch.zeros(2, 4, 4)]}

    def all_reduce(t: torch.Tensor) -> None:
        t += 6.0

    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.distributed, "get_world_size", lambda: 2)
    monkeypatch.setattr(torch.distributed, "all_reduce", all_reduce)
    _, comps = SetCriterion(recipe="sam3")(out, batch)
    l1 = sum(
        abs(a - b)
        for p, t in zip(pred[:2], tgt, strict=True)
        for a, b in zip(to_cxcywh(p), to_cxcywh(t), strict=True)
    )
    assert comps["loss_bbox"].item() == pytest.approx(l1 / 4.0, rel=1e-5)
    g = sum(1 - giou(p, t) for p, t in zip(pred[:2], tgt, strict=True))
    assert comps["loss_giou"].item() == pytest.approx(g / 4.0, rel=1e-5)


def test_sam3_total_is_the_weighted_sum_times_sqrt_batch() -> None:
    pred = [[0.1, 0.1, 0.3, 0.3], [0.6, 0.6, 0.9, 0.8]]
    out = _one_layer_output(pred, [1.0, -1.0])
    out = {
        k: torch.cat([v, v], dim=1) if k in ("logits", "boxes", "presence") else torch.cat([v, v])
        for k, v in out.items()
    }
    batch = {
        "boxes": [torch.tensor([[0.1, 0.1, 0.3, 0.35]]), torch.zeros(0, 4)],
        "positive": torch.tensor([1.0, 0.0]),
        "masks": [torch.ones(1, 4, 4), torch.zeros(0, 4, 4)],
    }
    r = recipe("sam3")
    total, c = SetCriterion(recipe=r)(out, batch)
    w = r.weights
    weighted = (
        w.ce * c["loss_ce"] + w.bbox * c["loss_bbox"] + w.giou * c["loss_giou"] + w.presence * c["loss_presence"]
        + w.mask * c["loss_mask"] + w.dice * c["loss_dice"] + w.semantic * c["loss_semantic"]
        + w.semantic_dice * c["loss_semantic_dice"] + w.aux * c["loss_aux"] + w.o2m * c["loss_o2m"]
    )  # fmt: skip
    assert total.item() == pytest.approx(weighted.item() * math.sqrt(2), rel=1e-6)
    assert (w.ce, w.presence, w.mask, w.dice, w.semantic, w.semantic_dice, w.o2m) == (
        20,
        20,
        200,
        10,
        20,
        30,
        2,
    )
    # presence: half the BCE of +1 against 1 (item 0) and against 0 (item 1), averaged
    assert c["loss_presence"].item() == pytest.approx(
        (0.5 * bce(1.0, 1.0) + 0.5 * bce(1.0, 0.0)) / 2, rel=1e-6
    )


def test_every_function_the_losses_table_names_exists() -> None:
    import importlib
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "LOSSES.md").read_text()
    rows = [ln for ln in doc.splitlines() if ln.startswith("| ") and not ln.startswith(("| part", "|---"))]
    assert len(rows) >= 10
    named = [n for row in rows for n in re.findall(r"`([A-Za-z_]+\.[A-Za-z_.]+)`", row.split("|")[-2])]
    assert named
    classes = {"SetCriterion": "losses"}
    for name in named:
        head, *rest = name.split(".")
        module = importlib.import_module(f"fusereview.training.{classes.get(head, head)}")
        obj = module if head not in classes else getattr(module, head)
        for part in rest:
            obj = getattr(obj, part)  # raises when the table names something that is not there
        assert callable(obj), name
