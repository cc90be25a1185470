"""Paint code: pure functions of a render context, checked pixel by pixel."""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from PySide6.QtGui import QColor, QImage, QPainter

from fusereview.qt.canvas.render import (
    STATE_COLORS,
    Layers,
    Overlay,
    RenderContext,
    colorize,
    drag_box,
    hit_test,
    mask_index_image,
    paint_overlays,
    palette,
    rle_counts,
    visible_overlays,
)


def _rle(mask: np.ndarray) -> dict:
    r = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": list(r["size"]), "counts": r["counts"].decode("ascii")}


@pytest.mark.parametrize("seed", range(8))
def test_rle_counts_match_pycocotools(seed: int) -> None:
    rng = np.random.default_rng(seed)
    h, w = rng.integers(3, 120, size=2)
    mask = rng.random((h, w)) < rng.uniform(0.05, 0.95)
    rle = _rle(mask)
    counts = rle_counts(rle)
    assert counts.sum() == h * w
    # rebuild the mask from the runs, column-major as COCO stores it
    flat = np.repeat(np.arange(len(counts)) % 2, counts).astype(bool)
    assert np.array_equal(flat.reshape(w, h).T, mask)


def test_mask_index_image_gives_each_prediction_its_colour_and_keeps_holes() -> None:
    ring = np.zeros((40, 60), dtype=bool)
    ring[5:35, 5:35] = True
    ring[15:25, 15:25] = False  # a hole stays a hole
    other = np.zeros((40, 60), dtype=bool)
    other[10:20, 40:55] = True
    corner = np.zeros((40, 60), dtype=bool)
    corner[36:40, 0:4] = True
    ctx = RenderContext(
        60,
        40,
        (
            Overlay(("pred", 1), (5, 5, 35, 35), "accepted", 0.9, "a", _rle(ring)),
            Overlay(("pred", 2), (40, 10, 55, 20), "accepted", 0.2, "a", _rle(other)),
            Overlay(("gt", 7), (0, 36, 4, 40), "gt", None, "", _rle(corner)),
        ),
    )
    idx = mask_index_image(ctx)
    assert idx.shape == (40, 60)
    # two predictions of the same state: two colours (neighbours never merge into one blob)
    assert idx[10, 10] != idx[15, 45] and idx[10, 10] > 0 and idx[15, 45] > 0
    assert idx[20, 20] == 0  # inside the hole
    assert idx[38, 2] == 5  # an annotation's mask: the ground-truth slot
    assert idx[0, 0] == 0
    pal = palette()
    assert (int(pal[idx[10, 10]]) & 0xFFFFFF) != (int(pal[idx[15, 45]]) & 0xFFFFFF)
    half = mask_index_image(ctx, step=2)
    assert half.shape == (20, 30) and half[5, 5] == idx[10, 10]
    pixels = colorize(idx)
    assert pixels[0, 0] == 0 and (int(pixels[10, 10]) >> 24) > 0


def test_threshold_and_layers_hide_overlays() -> None:
    ovs = (
        Overlay(("pred", 1), (0, 0, 5, 5), "pending", 0.2),
        Overlay(("pred", 2), (0, 0, 5, 5), "pending", 0.8),
        Overlay(("gt", 3), (0, 0, 5, 5), "gt"),
    )
    ctx = RenderContext(10, 10, ovs, threshold=0.5)
    assert [o.key for o in visible_overlays(ctx)] == [("pred", 2), ("gt", 3)]
    ctx = RenderContext(10, 10, ovs, Layers(gt=False, predictions=True), threshold=0.0)
    assert [o.key[0] for o in visible_overlays(ctx)] == ["pred", "pred"]


def test_drag_box_handles_and_clamping() -> None:
    box = (10.0, 10.0, 20.0, 30.0)
    assert drag_box(box, "se", 5, 5, 100, 100) == (10.0, 10.0, 25.0, 35.0)
    assert drag_box(box, "nw", -3, -4, 100, 100) == (7.0, 6.0, 20.0, 30.0)
    assert drag_box(box, "e", 200, 0, 100, 100) == (10.0, 10.0, 100.0, 30.0)
    assert drag_box(box, "move", -50, 0, 100, 100) == (0.0, 10.0, 10.0, 30.0)
    assert drag_box(box, "w", 15, 0, 100, 100) == (20.0, 10.0, 25.0, 30.0)  # crossing flips


def test_hit_test_prefers_the_smallest_box() -> None:
    ctx = RenderContext(
        100,
        100,
        (Overlay(("gt", 1), (0, 0, 90, 90), "gt"), Overlay(("pred", 2), (10, 10, 30, 30), "pending", 0.5)),
    )
    assert hit_test(ctx, 20, 20) == ("pred", 2)
    assert hit_test(ctx, 50, 50) == ("gt", 1)
    assert hit_test(ctx, 95, 95) is None


def test_paint_overlays_draws_box_in_state_colour(qapp) -> None:
    img = QImage(100, 100, QImage.Format.Format_RGB32)
    img.fill(QColor(0, 0, 0))
    ctx = RenderContext(
        100,
        100,
        (Overlay(("pred", 1), (20, 30, 80, 90), "accepted", 0.9, "x"),),
        Layers(labels=False),
    )
    painter = QPainter(img)
    paint_overlays(painter, ctx)
    painter.end()
    edge = img.pixelColor(50, 30)
    assert (edge.red(), edge.green(), edge.blue()) == STATE_COLORS["accepted"]
    inside = img.pixelColor(50, 60)
    assert (inside.red(), inside.green(), inside.blue()) == (0, 0, 0)


@pytest.mark.parametrize("step", [1, 2, 3, 5])
def test_reduced_mask_layer_equals_sampled_full_layer(step: int) -> None:
    rng = np.random.default_rng(step)
    h, w = 37, 53
    masks = [rng.random((h, w)) < 0.3, np.ones((h, w), dtype=bool)]
    masks[1][:, :10] = False  # a run spanning many whole columns
    ctx = RenderContext(
        w,
        h,
        (
            Overlay(("pred", 1), (0, 0, w, h), "edited", 0.5, "", _rle(masks[1])),
            Overlay(("pred", 2), (0, 0, w, h), "accepted", 0.5, "", _rle(masks[0])),
        ),
    )
    full = mask_index_image(ctx, 1)
    slot_1, slot_2 = int(full[masks[1] & ~masks[0]][0]), int(full[masks[0]][0])
    assert slot_1 != slot_2 and slot_1 > 0 and slot_2 > 0
    reference = np.zeros((h, w), dtype=np.uint8)
    reference[masks[1]] = slot_1
    reference[masks[0]] = slot_2
    assert np.array_equal(mask_index_image(ctx, step), reference[::step, ::step])


def test_labels_never_pile_and_the_selected_and_hovered_keep_theirs() -> None:
    from fusereview.qt.canvas.render import layout_labels

    # ten boxes on top of each other: their tags would all sit in one place
    ovs = tuple(
        Overlay(("pred", i), (10.0 + i, 30.0, 40.0 + i, 60.0), "pending", 0.1 * i, "", None)
        for i in range(1, 10)
    )
    ctx = RenderContext(200, 100, ovs, selected=("pred", 2), hovered=("pred", 5))
    tags = layout_labels(ctx, 1.0)
    for a in tags:
        for b in tags:
            assert a is b or not a.rect.intersects(b.rect), (a, b)
    keys = [t.key for t in tags]
    assert keys[:2] == [("pred", 2), ("pred", 5)]  # the selected first, then the one under the mouse
    assert len(tags) < len(ovs)  # the others wait for the mouse
    # apart, every box keeps its tag
    apart = tuple(
        Overlay(("pred", i), (i * 60.0, 30.0, i * 60.0 + 20, 60.0), "pending", 0.5, "", None)
        for i in range(3)
    )
    assert len(layout_labels(RenderContext(200, 100, apart), 1.0)) == 3


def test_outline_texts_are_laid_out_with_the_tags() -> None:
    """Regression: a label issue's outline texts were drawn apart and ran over the prediction's tag."""
    from fusereview.qt.canvas.render import layout_labels

    label = Overlay(("gt", 35), (100.0, 50.0, 140.0, 100.0), "gt", None, "#35", None)
    pred = Overlay(("pred", 31), (96.0, 52.0, 136.0, 101.0), "pending", 0.98, "fuse", None, note="box only")
    ctx = RenderContext(300, 200, (label, pred), selected=("gt", 35))
    marks = [
        (label.box, (255, 80, 200), "misplaced box or mask 0.98"),
        (pred.box, (0, 220, 255), "prediction 0.98"),
    ]
    tags = layout_labels(ctx, 1.0, marks)
    texts = [t.text for t in tags]
    assert texts[0] == "#35" and "misplaced box or mask 0.98" in texts and "prediction 0.98" in texts
    for i, a in enumerate(tags):
        assert not any(a.rect.intersects(b.rect) for b in tags[i + 1 :]), (a, tags)
    # the outline texts go below their boxes (the items' own tags are above)
    mark_tags = [t for t in tags if t.key[0] == "mark"]
    assert all(t.rect.top() >= 100.0 for t in mark_tags)
    # with labels hidden, the outline texts still show (they say why the reviewer is looking)
    hidden = RenderContext(300, 200, (label, pred), layers=Layers(labels=False), selected=("gt", 35))
    assert {t.text for t in layout_labels(hidden, 1.0, marks)} == {m[2] for m in marks}
