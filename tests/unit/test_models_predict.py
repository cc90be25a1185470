"""Sam3Predictor on the tiny model: detections, parity detail, box prompts, the project cache."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers.modeling_outputs import BaseModelOutputWithPooling

from fusereview.core.geometry import rle_to_mask
from fusereview.core.project import Project
from fusereview.core.synthetic import generate_dataset
from fusereview.models.base import DeviceError, cache_key, select_device
from fusereview.models.predict_job import OutOfMemoryError, predict_project
from fusereview.models.sam3 import Sam3Predictor, load_predictor

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def predictor() -> Sam3Predictor:
    return load_predictor("tiny", device="cpu")


@pytest.fixture
def project(tmp_path: Path) -> Project:
    data = generate_dataset(tmp_path / "fuses", images=5, size=96, seed=1, splits=(0.6, 0.2, 0.2))
    proj = Project.open_or_import(data)
    yield proj
    proj.close()


def _images() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [
        rng.integers(0, 255, (70, 90, 3), dtype=np.uint8),
        rng.integers(0, 255, (40, 30, 3), dtype=np.uint8),
    ]


def test_predict_gives_detections_at_each_images_own_size(predictor: Sam3Predictor) -> None:
    images = _images()
    out = predictor.predict(images, [(1, "fuse neutrals"), (2, "screw")], threshold=0.0)
    assert len(out) == 2
    for img, dets in zip(images, out, strict=True):
        h, w = img.shape[:2]
        assert len(dets) == 2 * 30  # every query of both prompts at threshold 0
        assert [d.category_id for d in dets] == [1] * 30 + [2] * 30
        for d in dets:
            assert d.mask["size"] == [h, w] and isinstance(d.mask["counts"], str)
            assert 0 <= d.box[0] <= d.box[2] <= w and 0 <= d.box[1] <= d.box[3] <= h
        scores = [d.score for d in dets[:30]]
        assert scores == sorted(scores, reverse=True)
    # thresholding keeps exactly the detections above it
    cut = float(np.median([d.score for d in out[0][:30]]))
    kept = predictor.predict(images[:1], [(1, "fuse neutrals")], threshold=cut)[0]
    assert len(kept) == sum(d.score > cut for d in out[0][:30]) and all(d.score > cut for d in kept)


def test_batch_and_single_image_agree(predictor: Sam3Predictor) -> None:
    images = _images()
    both = predictor.predict(images, [(1, "fuse")], threshold=0.0)
    alone = predictor.predict(images[1:], [(1, "fuse")], threshold=0.0)
    assert [d.score for d in both[1]] == pytest.approx([d.score for d in alone[0]], abs=1e-5)


def test_dummy_box_restores_the_official_geometry_cls_token(predictor: Sam3Predictor) -> None:
    """Official SAM3 always appends the geometry encoder's CLS token to the prompt; our dummy box does too."""
    model = predictor.model
    pixels = torch.rand(1, 3, 224, 224) * 2 - 1
    with torch.inference_mode():
        vision = model.get_vision_features(pixel_values=pixels)
        text, mask = predictor._text(["fuse neutrals"])
        ours = predictor._heads(vision, text, mask)
        # a differently placed padding box changes nothing: it is masked out
        moved = predictor._heads(
            vision, text, mask, torch.tensor([[[0.5, 0.5, 0.2, 0.2]]]), torch.tensor([[-10]])
        )
        # reference, built the official way: text tokens + the CLS token alone through the geometry encoder
        fpn = vision.fpn_hidden_states[:-1]
        pos = vision.fpn_position_encoding[:-1]
        geo = model.geometry_encoder(
            box_embeddings=torch.zeros(1, 0, 4),
            box_mask=torch.zeros(1, 0, dtype=torch.bool),
            box_labels=torch.zeros(1, 0, dtype=torch.long),
            img_feats=fpn,
            img_pos_embeds=pos,
        )
        assert geo.last_hidden_state.shape[1] == 1  # just the CLS token
        prompt = torch.cat([text, geo.last_hidden_state], dim=1)
        prompt_mask = torch.cat([mask, torch.ones(1, 1, dtype=mask.dtype)], dim=1)
        official = model(
            vision_embeds=vision,
            text_embeds=BaseModelOutputWithPooling(pooler_output=prompt),
            attention_mask=prompt_mask,
        )
        text_only = model(
            vision_embeds=vision,
            text_embeds=BaseModelOutputWithPooling(pooler_output=text),
            attention_mask=mask,
        )
    for name in ("pred_logits", "pred_boxes", "presence_logits", "pred_masks"):
        assert torch.allclose(getattr(ours, name), getattr(official, name), atol=1e-4), name
        assert torch.allclose(getattr(ours, name), getattr(moved, name), atol=1e-5), name
    # without it (transformers' text-only path) the outputs differ from the official model's
    assert not torch.allclose(text_only.pred_logits, official.pred_logits, atol=1e-3)


def test_box_prompt_returns_detections_inside_the_box(predictor: Sam3Predictor) -> None:
    image = _images()[0]
    dets = predictor.predict_box(image, (5, 5, 85, 65), category_id=3, threshold=0.0, min_inside=0.5)
    assert dets, "the tiny model finds something in most of the image"
    for d in dets:
        x0, y0, x1, y1 = d.box
        inter = max(0, min(x1, 85) - max(x0, 5)) * max(0, min(y1, 65) - max(y0, 5))
        assert inter >= 0.5 * (x1 - x0) * (y1 - y0) and d.category_id == 3
        assert rle_to_mask(d.mask).shape == image.shape[:2]
    assert predictor._box_cache is not None  # second box on the same image reuses the vision features
    small = predictor.predict_box(image, (40, 30, 41, 30.5), category_id=3, threshold=0.0)
    assert small == []  # a box under one pixel tall is no prompt


def test_device_override_and_errors() -> None:
    assert select_device("cpu") == "cpu"
    assert select_device(None) in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="no CUDA GPU"):
            select_device("cuda")
    with pytest.raises(DeviceError, match="unknown device"):
        select_device("tpu")


def test_cache_key_changes_with_prompt_and_threshold_only() -> None:
    assert cache_key("Fuse  Neutrals", 0.3) == cache_key("fuse neutrals", 0.3)
    # two categories prompted with the same text must never share an entry
    assert cache_key("part", 0.3, category_id=1) != cache_key("part", 0.3, category_id=2)
    assert cache_key("part", 0.3, category_id=1).startswith("c1-")
    assert cache_key("fuse neutrals", 0.3) != cache_key("fuse neutral", 0.3)
    assert cache_key("fuse neutrals", 0.3) != cache_key("fuse neutrals", 0.35)


def test_predict_project_fills_and_uses_the_cache(project: Project, predictor: Sam3Predictor) -> None:
    calls: list[int] = []
    real = predictor.predict

    def counting(images, prompts, *, threshold=0.3):
        calls.append(len(images))
        return real(images, prompts, threshold=threshold)

    predictor.predict = counting  # type: ignore[method-assign]
    try:
        seen: list[tuple[int, int]] = []
        first = predict_project(
            project, predictor, batch_size=2, threshold=0.0, progress=lambda d, t: seen.append((d, t))
        )
        assert (
            first["images"] == 5 and first["predicted"] == 5 and first["cached"] == 0 and first["failed"] == 0
        )
        assert first["detections"] == 5 * 30 and seen[-1] == (5, 5) and calls == [2, 2, 1]
        image_id = project.images()[0].id
        cat = project.categories()[0]
        cached = project.cached_predictions(
            image_id, predictor.fingerprint, cache_key(cat.prompt or cat.name, 0.0, category_id=cat.id)
        )
        assert cached is not None and len(cached) == 30
        # re-run: everything cached, no model call
        calls.clear()
        again = predict_project(project, predictor, batch_size=2, threshold=0.0)
        assert again["cached"] == 5 and again["predicted"] == 0 and calls == []
        # a changed prompt invalidates exactly that category's cache
        project.set_prompt(cat.id, "neutral link")
        third = predict_project(project, predictor, batch_size=8, threshold=0.0, image_ids=[image_id])
        assert third["predicted"] == 1 and calls == [1]
    finally:
        del predictor.predict


def test_bad_image_mid_batch_is_reported_and_the_rest_kept(
    project: Project, predictor: Sam3Predictor
) -> None:
    records = project.images()
    broken = records[1]
    Path(broken.path).write_bytes(b"\xff\xd8\xff garbage, not a jpeg")
    counts = predict_project(project, predictor, batch_size=4, threshold=0.0)
    assert counts["failed"] == 1 and counts["predicted"] == 4
    assert (
        counts["failures"][0]["image_id"] == broken.id
        and broken.file_name in counts["failures"][0]["file_name"]
    )
    cat = project.categories()[0]
    key = cache_key(cat.prompt or cat.name, 0.0, category_id=cat.id)
    for rec in records:
        got = project.cached_predictions(rec.id, predictor.fingerprint, key)
        assert (got is None) == (rec.id == broken.id)


def test_out_of_memory_halves_the_batch_then_reports(project: Project, predictor: Sam3Predictor) -> None:
    real = predictor.predict
    sizes: list[int] = []

    def small_memory(images, prompts, *, threshold=0.3):
        sizes.append(len(images))
        if len(images) > 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(images, prompts, threshold=threshold)

    predictor.predict = small_memory  # type: ignore[method-assign]
    try:
        counts = predict_project(project, predictor, batch_size=4, threshold=0.0)
        assert counts["predicted"] == 5 and sizes[:3] == [4, 2, 1]

        def no_memory(images, prompts, *, threshold=0.3):
            raise torch.OutOfMemoryError("CUDA out of memory")

        predictor.predict = no_memory  # type: ignore[method-assign]
        with pytest.raises(OutOfMemoryError, match="even with one image"):
            predict_project(project, predictor, batch_size=2, threshold=0.5)
    finally:
        del predictor.predict


def test_stop_and_priority(project: Project, predictor: Sam3Predictor) -> None:
    ids = [r.id for r in project.images()]
    order: list[int] = []
    real = predictor.predict
    stop = threading.Event()

    def watching(images, prompts, *, threshold=0.3):
        order.append(len(images))
        stop.set()  # ask to stop after the first batch
        return real(images, prompts, threshold=threshold)

    predictor.predict = watching  # type: ignore[method-assign]
    try:
        counts = predict_project(
            project, predictor, batch_size=1, threshold=0.0, priority=[ids[-1]], should_stop=stop.is_set
        )
    finally:
        del predictor.predict
    assert counts["stopped"] and counts["predicted"] == 1 and order == [1]
    cat = project.categories()[0]
    key = cache_key(cat.prompt or cat.name, 0.0, category_id=cat.id)
    assert project.cached_predictions(ids[-1], predictor.fingerprint, key) is not None
