"""Train the demo model's interactive (click) head: ``resources/demo_model/interactive/``.

Run ``python -m fusereview.demo.build_interactive`` after the demo model (about 23 minutes on a
shared 2-core CPU, a few when the cores are free). The head is a tiny ``Sam3TrackerModel`` (the FPN
width of the demo model, 64) on the demo model's own ViT, which stays frozen: the detector is
unchanged (same fingerprint) and the head is tied to it (``head.json`` records it). The head's neck
starts as a copy of the detector's neck and stays frozen too (SAM3 builds its ``sam2_convs`` as a
copy of the detector's ``convs``), so every photo's feature pyramid is computed once and training
touches only the prompt encoder and the mask decoder.

Training follows SAM's interactive recipe on synthetic fuse-box photos (``render_image``, a seed of
its own): a first prompt (one click inside an object, its box, box + click, or a click plus a
negative click on another object), then, on half the steps, a correction click from the larger
error region with the previous logits as the mask prompt; focal (x20) + dice (x5) loss on the mask
(the best of three for a lone click), MSE on the predicted IoU. The object score is not trained
(every prompt is on an object). The head is measured on held-out photos of another seed
(``metrics`` in ``head.json``).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

TRAIN_SEED = 1515
EVAL_SEED = 4242
DEFAULT_MODEL = Path(__file__).resolve().parent.parent.parent / "resources" / "demo_model"
LOSS_RES = 128  # masks are compared at this resolution (the head's logits are 64 x 64 at 224 px)
FOCAL, DICE = 20.0, 5.0  # SAM weighs focal 20 : dice 1; fuses cover ~1 % of a photo, so dice gets more


def _render(n: int, seed: int, size: int) -> list[tuple[np.ndarray, list[np.ndarray]]]:
    from fusereview.core.synthetic import render_image

    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        img, objs = render_image(rng, size)
        masks = [o["mask"] for o in objs if o["mask"].sum() >= 30]
        if masks:
            out.append((img, masks))
        if len(out) % 50 == 0:
            print(f"\rrendering {len(out)}/{n} (seed {seed})", end="", file=sys.stderr)
    print(file=sys.stderr)
    return out


def _pyramid(head: Any, images: list[np.ndarray], image_size: int) -> list[torch.Tensor]:
    """The frozen ViT + neck per image: the 4x, 2x, 1x levels, float16 (computed once, they do not learn)."""
    from fusereview.models.preprocess import preprocess

    levels: list[list[torch.Tensor]] = [[], [], []]
    with torch.no_grad():
        for i in range(0, len(images), 16):
            vision = head.vision_encoder(pixel_values=preprocess(images[i : i + 16], image_size))
            for lvl, f in zip(levels, vision.fpn_hidden_states[:-1], strict=False):
                lvl.append(f.half())
    return [torch.cat(lvl) for lvl in levels]


def _features(head: Any, pyramid: list[torch.Tensor], idx: list[int]) -> list[torch.Tensor]:
    """What :meth:`InteractiveSegmenter._embed` computes, from the stored pyramid (conv_s0/s1 learn)."""
    feats = [lvl[idx].float() for lvl in pyramid]
    feats[0] = head.mask_decoder.conv_s0(feats[0])
    feats[1] = head.mask_decoder.conv_s1(feats[1])
    feats[-1] = feats[-1] + head.no_memory_embedding.reshape(1, -1, 1, 1)
    return feats


def _sample_inside(rng: np.random.Generator, mask: np.ndarray) -> tuple[float, float] | None:
    """A uniform continuous point in a mask's pixels, away from its edge when it can be."""
    import cv2

    inner = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    ys, xs = np.nonzero(inner if inner.sum() >= 4 else mask)
    if len(xs) == 0:
        return None
    i = rng.integers(len(xs))
    return float(xs[i] + rng.uniform(0.1, 0.9)), float(ys[i] + rng.uniform(0.1, 0.9))


def _losses(
    logits: torch.Tensor, target: torch.Tensor, iou_pred: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-candidate SAM loss ``(B, M)`` and the true IoU of each candidate; logits ``(B, M, r, r)``."""
    from fusereview.training.losses import sigmoid_focal

    t = target[:, None].expand_as(logits)
    focal = sigmoid_focal(logits, t).flatten(2).mean(-1)
    p = logits.sigmoid().flatten(2)
    tf = t.flatten(2)
    dice = 1 - (2 * (p * tf).sum(-1) + 1) / (p.sum(-1) + tf.sum(-1) + 1)
    hard = (logits > 0).flatten(2).float()
    iou = (hard * tf).sum(-1) / ((hard + tf).clamp(max=1).sum(-1)).clamp(min=1)
    return FOCAL * focal + DICE * dice + (iou_pred - iou).pow(2), iou


def train_head(
    head: Any,
    data: list[tuple[np.ndarray, list[np.ndarray]]],
    *,
    steps: int,
    batch: int = 12,
    lr: float = 3e-3,
    seed: int = TRAIN_SEED,
    log: Any = print,
) -> list[dict[str, float]]:
    """Train ``head`` (not its ViT) on ``(image, object masks)``; returns the per-step log."""
    image_size = int(head.config.prompt_encoder_config.image_size)
    size = data[0][0].shape[0]
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    pyramid = _pyramid(head, [img for img, _ in data], image_size)
    for p in head.vision_encoder.parameters():
        p.requires_grad_(False)
    params = [p for n, p in head.named_parameters() if not n.startswith("vision_encoder.")]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    warm = max(1, steps // 30)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps))
    )
    scale = image_size / size
    history: list[dict[str, float]] = []
    head.train()
    head.vision_encoder.eval()
    start = time.perf_counter()
    for step in range(steps):
        mode = rng.choice(["click", "box", "box_click", "click_neg"], p=[0.4, 0.2, 0.2, 0.2])
        idx, targets, points, labels, boxes = [], [], [], [], []
        while len(idx) < batch:
            i = int(rng.integers(len(data)))
            masks = data[i][1]
            k = int(rng.integers(len(masks)))
            m = masks[k]
            p = _sample_inside(rng, m)
            if p is None:
                continue
            pts, labs = [p], [1]
            if mode == "click_neg":
                others = [o for j, o in enumerate(masks) if j != k]
                q = _sample_inside(rng, others[int(rng.integers(len(others)))]) if others else None
                if q is None:  # background: any pixel away from this object
                    far = ~m
                    ys, xs = np.nonzero(far)
                    j = rng.integers(len(xs))
                    q = (float(xs[j]) + 0.5, float(ys[j]) + 0.5)
                pts, labs = [p, q], [1, 0]
            ys, xs = np.nonzero(m)
            x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
            w, h = x1 - x0, y1 - y0
            j = rng.uniform(-0.1, 0.1, 4) * np.array([w, h, w, h])
            boxes.append(
                [
                    (x0 + j[0]) * scale - 0.5,
                    (y0 + j[1]) * scale - 0.5,
                    (x1 + j[2]) * scale - 0.5,
                    (y1 + j[3]) * scale - 0.5,
                ]
            )
            idx.append(i)
            t = torch.from_numpy(m.astype(np.float32))[None, None]
            targets.append(F.interpolate(t, size=(LOSS_RES, LOSS_RES), mode="area")[0, 0] > 0.5)
            points.append([[x * scale - 0.5, y * scale - 0.5] for x, y in pts])
            labels.append(labs)
        target = torch.stack(targets).float()
        feats = _features(head, pyramid, idx)
        use_points = mode != "box"
        kwargs: dict[str, Any] = {}
        if use_points:
            kwargs["input_points"] = torch.tensor(points, dtype=torch.float32)[:, None]
            kwargs["input_labels"] = torch.tensor(labels)[:, None]
        if mode in ("box", "box_click"):
            kwargs["input_boxes"] = torch.tensor(boxes, dtype=torch.float32)[:, None]
        total = torch.zeros(())
        prev_logits = None
        # a correction click on half the steps (it doubles a step's cost; SAM uses several)
        iterations = 2 if rng.random() < 0.5 else 1
        for it in range(iterations):
            multimask = mode == "click" and it == 0
            out = head(image_embeddings=feats, multimask_output=multimask, **kwargs)
            low = out.pred_masks[:, 0]  # (B, M, 4g, 4g)
            up = F.interpolate(low, size=(LOSS_RES, LOSS_RES), mode="bilinear", align_corners=False)
            loss, _ = _losses(up, target, out.iou_scores[:, 0])
            best = loss.argmin(dim=1)
            rows = torch.arange(len(idx))
            total = total + loss[rows, best].mean()
            if it == iterations - 1:
                break
            # the correction click: from the larger error region, positive where the object was missed
            pred = (up[rows, best] > 0).detach().numpy()
            gt = target.numpy() > 0.5
            new_pts = []
            for b in range(len(idx)):
                fn, fp = gt[b] & ~pred[b], pred[b] & ~gt[b]
                region, lab = (fn, 1) if fn.sum() >= fp.sum() else (fp, 0)
                if region.sum() == 0:
                    region, lab = gt[b], 1
                q = _sample_inside(rng, region)
                assert q is not None
                f = size / LOSS_RES
                new_pts.append(([q[0] * f * scale - 0.5, q[1] * f * scale - 0.5], lab))
            new_xy = torch.tensor([p for p, _ in new_pts], dtype=torch.float32)[:, None, None]
            new_lab = torch.tensor([lab for _, lab in new_pts])[:, None, None]
            if "input_points" in kwargs:
                kwargs["input_points"] = torch.cat([kwargs["input_points"], new_xy], dim=2)
                kwargs["input_labels"] = torch.cat([kwargs["input_labels"], new_lab], dim=2)
            else:
                kwargs["input_points"], kwargs["input_labels"] = new_xy, new_lab
            prev_logits = low[rows, best].detach()[:, None]
            kwargs["input_masks"] = prev_logits
        opt.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        history.append({"step": step + 1, "loss": float(total.detach()), "mode": str(mode)})
        if (step + 1) % 50 == 0 or step + 1 == steps:
            recent = np.mean([h["loss"] for h in history[-50:]])
            log(f"step {step + 1}/{steps}  loss {recent:.3f}  {time.perf_counter() - start:.0f}s")
    head.eval()
    return history


def evaluate_head(
    segmenter: Any, data: list[tuple[np.ndarray, list[np.ndarray]]], seed: int = EVAL_SEED
) -> dict[str, Any]:
    """Held-out scores through :class:`InteractiveSegmenter` at the photos' own size.

    - ``click_miou``: mean IoU of one click at the object's most interior pixel;
    - ``click_covers``: share of those masks holding the clicked pixel;
    - ``neg_ok``: with a second, negative click inside another object of the photo: share of masks
      holding the positive pixel and not the negative one (the test's criterion);
    - ``box_miou``: mean IoU from the object's tight box; ``click2_miou``: after one correction click.
    """
    import cv2

    rng = np.random.default_rng(seed)

    def centre(m: np.ndarray) -> tuple[int, int]:
        d = cv2.distanceTransform(np.pad(m, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
        y, x = np.unravel_index(int(np.argmax(d)), d.shape)
        return int(x), int(y)

    def iou(a: np.ndarray, b: np.ndarray) -> float:
        return float((a & b).sum() / max((a | b).sum(), 1))

    from fusereview.core.geometry import rle_to_mask

    click, covers, box, click2, neg_ok, neg_n = [], [], [], [], 0, 0
    for n, (img, masks) in enumerate(data):
        key = f"eval-{n}"
        for k, m in enumerate(masks):
            x, y = centre(m)
            r = segmenter.segment(key, img, [(x + 0.5, y + 0.5, 1)])
            pm = rle_to_mask(r.mask)
            click.append(iou(pm, m))
            covers.append(bool(pm[y, x]))
            fn, fp = m & ~pm, pm & ~m
            region, lab = (fn, 1) if fn.sum() >= fp.sum() else (fp, 0)
            q = _sample_inside(rng, region) if region.sum() else None
            if q is not None:
                r2 = segmenter.segment(
                    key, img, [(x + 0.5, y + 0.5, 1), (q[0], q[1], lab)], mask_logits=r.logits
                )
                click2.append(iou(rle_to_mask(r2.mask), m))
            ys, xs = np.nonzero(m)
            rb = segmenter.segment(key, img, [], box=(xs.min(), ys.min(), xs.max() + 1, ys.max() + 1))
            box.append(iou(rle_to_mask(rb.mask), m))
            others = [o for j, o in enumerate(masks) if j != k]
            if others:
                nx, ny = centre(others[0])
                rn = segmenter.segment(key, img, [(x + 0.5, y + 0.5, 1), (nx + 0.5, ny + 0.5, 0)])
                pn = rle_to_mask(rn.mask)
                neg_n += 1
                neg_ok += int(pn[y, x] and not pn[ny, nx])
    return {
        "objects": len(click),
        "click_miou": round(float(np.mean(click)), 4),
        "click_covers": round(float(np.mean(covers)), 4),
        "click2_miou": round(float(np.mean(click2)), 4) if click2 else None,
        "box_miou": round(float(np.mean(box)), 4),
        "neg_ok": round(neg_ok / max(neg_n, 1), 4),
        "neg_pairs": neg_n,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fusereview.demo.build_interactive", description=__doc__)
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="the demo model (export) to give a head")
    parser.add_argument("--images", type=int, default=400, help="training photos")
    parser.add_argument("--eval-images", type=int, default=40)
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--lr", type=float, default=3e-3)
    args = parser.parse_args(argv)

    from fusereview.models import load_model
    from fusereview.models.checkpoints import LoadReport
    from fusereview.models.interactive import (
        InteractiveSegmenter,
        save_interactive_head,
        tiny_interactive_head,
    )

    torch.set_num_threads(max(1, torch.get_num_threads()))
    started = time.perf_counter()
    loaded = load_model(args.model)
    head = tiny_interactive_head(loaded.model, seed=TRAIN_SEED)
    # The head's neck starts as a copy of the detector's (as SAM3's sam2_convs do) and stays frozen
    # with the ViT: training then touches only the prompt encoder and mask decoder, and each photo's
    # pyramid is computed once.
    head.vision_encoder.neck.load_state_dict(loaded.model.vision_encoder.neck.state_dict())
    train = _render(args.images, TRAIN_SEED, args.size)
    history = train_head(head, train, steps=args.steps, lr=args.lr)
    held_out = _render(args.eval_images, EVAL_SEED, args.size)
    n = sum(1 for k in head.state_dict() if not k.startswith("vision_encoder.backbone."))
    seg = InteractiveSegmenter(
        head, fingerprint="build", report=LoadReport("build", "tiny", loaded=n), device="cpu"
    )
    metrics = evaluate_head(seg, held_out)
    print(metrics)
    meta = {
        "trained": True,
        "recipe": (
            "SAM interactive recipe on synthetic fuse-box photos (fusereview.demo.build_interactive): first "
            "prompt = click / box / box+click / click + negative click on another object, on half the steps "
            "a correction click with the previous logits; focal x20 + dice x5 + IoU MSE; ViT and neck "
            "(a copy of the detector's) frozen"
        ),
        "train": {
            "images": args.images,
            "seed": TRAIN_SEED,
            "steps": args.steps,
            "lr": args.lr,
            "size": args.size,
            "final_loss": float(np.mean([h["loss"] for h in history[-100:]])),
            "minutes": round((time.perf_counter() - started) / 60, 1),
        },
        "metrics": {"held_out_seed": EVAL_SEED, "images": args.eval_images, **metrics},
        "object_score": "not trained (every training prompt is on an object)",
    }
    target = save_interactive_head(args.model, head, base_fingerprint=loaded.fingerprint, meta=meta)
    print(f"wrote {target} in {(time.perf_counter() - started) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
