"""The interactive head: one vision pass per image, clicks to masks, loading from every format, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from interactive_samples import tiny_pair, write_official_pt_with_head, write_transformers_folder_with_head
from model_samples import tiny_model_dir, write_official_pt
from safetensors.torch import load_file, save_file

from fusereview.core.geometry import rle_to_mask
from fusereview.models.checkpoints import (
    CheckpointFormatError,
    ConfigMismatchError,
    IncompleteWeightsError,
    LoadReport,
    load_model,
)
from fusereview.models.interactive import (
    HEAD_META,
    INTERACTIVE_DIR,
    InteractiveSegmenter,
    NoInteractiveHeadError,
    apply_head_state,
    build_head,
    head_state_names,
    load_interactive,
    save_interactive_head,
)

IMAGE = np.random.default_rng(7).integers(0, 255, (150, 200, 3), dtype=np.uint8)


def _segmenter(head) -> InteractiveSegmenter:
    n = len(head_state_names(head))
    return InteractiveSegmenter(head, fingerprint="t", report=LoadReport("t", "tiny", loaded=n), device="cpu")


def _same_output(a: InteractiveSegmenter, b: InteractiveSegmenter) -> None:
    pts = [(40.0, 30.0, 1), (120.0, 90.0, 0)]
    ra, rb = a.segment("x", IMAGE, pts), b.segment("x", IMAGE, pts)
    np.testing.assert_allclose(ra.logits, rb.logits, atol=1e-5)
    assert ra.mask == rb.mask and ra.score == pytest.approx(rb.score, abs=1e-6)


def test_one_vision_pass_per_image_while_it_is_open(monkeypatch) -> None:
    _, head = tiny_pair()
    seg = _segmenter(head)
    calls = []
    real = seg._embed
    monkeypatch.setattr(seg, "_embed", lambda rgb: calls.append(rgb.shape) or real(rgb))
    loads = []

    def loader():
        loads.append(1)
        return IMAGE

    first = seg.segment("img-1", loader, [(50, 40, 1)])
    second = seg.segment("img-1", loader, [(50, 40, 1), (150, 100, 0)], mask_logits=first.logits)
    third = seg.segment("img-1", loader, [], box=(10, 10, 90, 80))
    assert (first.embedded, second.embedded, third.embedded) == (True, False, False)
    assert len(calls) == 1 and len(loads) == 1  # the image is not even decoded again
    other = seg.segment("img-2", IMAGE[::-1].copy(), [(50, 40, 1)])
    assert other.embedded and len(calls) == 2 and seg.cached_key == "img-2"
    seg.forget()
    assert seg.cached_key is None


def test_two_threads_on_two_images_each_get_their_own_images_mask(monkeypatch) -> None:
    """The Click tool and a label-box check share the head (and its one-image cache) from two threads."""
    import threading
    import time

    _, head = tiny_pair()
    seg = _segmenter(head)
    images = {"a": IMAGE, "b": IMAGE[::-1].copy()}
    box = (10.0, 10.0, 90.0, 80.0)
    want = {k: seg.segment(k, img, [], box=box).mask for k, img in images.items()}
    real = seg._embed
    monkeypatch.setattr(seg, "_embed", lambda rgb: (time.sleep(0.01), real(rgb))[1])  # interleave
    wrong: list[str] = []

    def run(key: str) -> None:
        for _ in range(4):
            if seg.segment(key, images[key], [], box=box).mask != want[key]:
                wrong.append(key)

    threads = [threading.Thread(target=run, args=(k,)) for k in images]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == [], f"a mask of the other image: {wrong}"


def test_a_click_gives_a_mask_of_the_images_size_with_its_box_and_score() -> None:
    _, head = tiny_pair()
    r = _segmenter(head).segment("x", IMAGE, [(60.5, 40.5, 1)])
    m = rle_to_mask(r.mask)
    assert m.shape == IMAGE.shape[:2] and r.area == int(m.sum())
    assert r.logits.shape == (64, 64)  # 4 x the 16 x 16 patch grid of a 224 px tiny model
    assert 0.0 <= r.score <= 1.0 and 0.0 <= r.object_score <= 1.0
    if r.area:
        ys, xs = np.nonzero(m)
        assert r.box == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)


@pytest.mark.parametrize(
    ("points", "box", "message"),
    [
        ([], None, "at least one point"),
        ([(1, 1, 2)], None, "labels"),
        ([(float("nan"), 1, 1)], None, "finite"),
    ],
)
def test_bad_prompts_are_refused_in_one_line(points, box, message) -> None:
    _, head = tiny_pair()
    with pytest.raises(ValueError, match=message):
        _segmenter(head).segment("x", IMAGE, points, box=box)


def test_the_head_shares_the_detectors_vit() -> None:
    model, head = tiny_pair()
    assert head.vision_encoder.backbone is model.vision_encoder.backbone
    assert not any(k.startswith("vision_encoder.backbone.") for k in head_state_names(head))


def test_built_head_loads_every_tensor_and_computes_the_same() -> None:
    model, head = tiny_pair()
    built = build_head(head.config, model.vision_encoder.backbone)
    report = apply_head_state(built, head_state_names(head), source="mem", fmt="test")
    assert report.complete and report.unexpected == []
    _same_output(_segmenter(head), _segmenter(built))


def test_export_round_trip_and_its_refusals(tmp_path: Path) -> None:
    export = tiny_model_dir(tmp_path)
    loaded = load_model(export)
    with pytest.raises(NoInteractiveHeadError, match="detector-only export"):
        load_interactive(export, loaded)
    _, head = tiny_pair()
    save_interactive_head(export, head, base_fingerprint=loaded.fingerprint, meta={"trained": False})
    seg = load_interactive(export, loaded, device="cpu")
    assert seg.report.complete and seg.meta["trained"] is False
    assert seg.fingerprint.startswith(loaded.fingerprint + "+sha:")
    assert seg.head.vision_encoder.backbone is loaded.model.vision_encoder.backbone
    _same_output(_segmenter(head), seg)
    folder = export / INTERACTIVE_DIR
    # another model's head is not used with this one
    meta = json.loads((folder / HEAD_META).read_text())
    (folder / HEAD_META).write_text(json.dumps({**meta, "base_fingerprint": "export:someone-else"}))
    with pytest.raises(NoInteractiveHeadError, match="belongs to model export:someone-else"):
        load_interactive(export, loaded)
    (folder / HEAD_META).write_text(json.dumps(meta))
    weights = load_file(str(folder / "model.safetensors"))
    # a missing tensor: refused, naming it
    partial = dict(weights)
    del partial["mask_decoder.iou_token.weight"]
    save_file(partial, str(folder / "model.safetensors"))
    with pytest.raises(IncompleteWeightsError, match="iou_token"):
        load_interactive(export, loaded)
    # a wrong shape
    save_file(
        {**weights, "mask_decoder.iou_token.weight": torch.zeros(1, 3)}, str(folder / "model.safetensors")
    )
    with pytest.raises(ConfigMismatchError, match="iou_token"):
        load_interactive(export, loaded)
    # not finite
    bad = {
        **weights,
        "mask_decoder.iou_token.weight": torch.full_like(weights["mask_decoder.iou_token.weight"], np.nan),
    }
    save_file(bad, str(folder / "model.safetensors"))
    with pytest.raises(CheckpointFormatError, match="NaN"):
        load_interactive(export, loaded)
    # truncated
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointFormatError, match=r"model\.safetensors"):
        load_interactive(export, loaded)


def test_official_sam3_pt_head_loads_through_the_name_mapping(tmp_path: Path) -> None:
    pt = write_official_pt_with_head(tmp_path / "ckpt")
    loaded = load_model(pt)
    seg = load_interactive(pt, loaded, device="cpu")
    assert seg.report.format == "official" and seg.report.complete and seg.report.unexpected == []
    assert seg.report.skipped == 4  # the video-memory keys the file carries
    _same_output(_segmenter(tiny_pair()[1]), seg)


def test_partial_or_missing_official_heads_are_refused(tmp_path: Path) -> None:
    pt = write_official_pt_with_head(tmp_path / "partial", drop="tracker.sam_mask_decoder.iou_token.weight")
    with pytest.raises(IncompleteWeightsError, match="iou_token"):
        load_interactive(pt, load_model(pt))
    detector_only = tmp_path / "det"
    detector_only.mkdir()
    import torch as _t

    state = _t.load(write_official_pt(detector_only), weights_only=True)
    state = {k: v for k, v in state.items() if not k.startswith("tracker.")}
    _t.save(state, detector_only / "sam3.pt")
    with pytest.raises(NoInteractiveHeadError, match="detector-only checkpoint"):
        load_interactive(detector_only / "sam3.pt", load_model(detector_only / "sam3.pt"))


def test_transformers_folder_head_matches_what_transformers_itself_loads(tmp_path: Path) -> None:
    from transformers import Sam3TrackerModel

    folder = write_transformers_folder_with_head(tmp_path / "hf")
    loaded = load_model(folder)
    seg = load_interactive(folder, loaded, device="cpu")
    assert seg.report.complete and seg.report.skipped == 1
    _same_output(_segmenter(tiny_pair()[1]), seg)
    # transformers' own conversion mapping (tracker_model. / tracker_neck. / detector_model.): same tensors
    theirs = Sam3TrackerModel.from_pretrained(str(folder), local_files_only=True).state_dict()
    ours = seg.head.state_dict()
    assert set(theirs) == set(ours)
    for k, v in theirs.items():
        assert torch.equal(v, ours[k]), k


def test_detector_only_transformers_folder_says_so(tmp_path: Path) -> None:
    from model_samples import write_transformers_folder

    folder = write_transformers_folder(tmp_path / "hf")
    with pytest.raises(NoInteractiveHeadError, match="detector-only model"):
        load_interactive(folder, load_model(folder))


def test_tiny_spec_has_a_seeded_untrained_head() -> None:
    loaded = load_model("tiny")
    a = load_interactive("tiny", loaded, device="cpu")
    b = load_interactive("tiny", load_model("tiny"), device="cpu")
    assert a.meta["trained"] is False
    _same_output(a, b)
