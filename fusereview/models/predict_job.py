"""Predict a project's images through its prediction cache.

The cache lives in the project database (:meth:`Project.store_predictions` /
:meth:`Project.cached_predictions`), keyed by the image's content hash, the model fingerprint and
:func:`~fusereview.models.base.cache_key` (prompt text + threshold + category id: two categories with
the same prompt text keep separate entries). So re-opening a project shows stored predictions at
once, and only what a changed model, prompt or image file invalidates is predicted again. Storing a
category's new set supersedes that image and category's older pending predictions (another prompt,
threshold or model): see :meth:`Project.store_predictions`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fusereview.core.errors import FusereviewError
from fusereview.core.records import Detection, ImageRecord
from fusereview.models.base import Predictor, cache_key

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


class OutOfMemoryError(FusereviewError):
    """The device ran out of memory even with one image per batch."""


@dataclass
class WorkItem:
    """One image and the prompts it still needs predictions for."""

    image: ImageRecord
    prompts: list[tuple[int, str]]


@dataclass
class JobResult:
    """Detections of one image for the prompts it needed, or why it failed."""

    image_id: int
    detections: dict[int, list[Detection]] = field(default_factory=dict)  # category id -> detections
    error: str | None = None


def project_prompts(project: Any) -> list[tuple[int, str]]:
    """``(category_id, prompt)`` of every real category (the name when the prompt is empty)."""
    return [(c.id, c.prompt or c.name) for c in project.categories()]


def plan(
    project: Any,
    fingerprint: str,
    *,
    split: str | None = None,
    image_ids: Sequence[int] | None = None,
    priority: Iterable[int] = (),
    threshold: float = 0.3,
) -> tuple[list[WorkItem], int, int]:
    """Work out which images still need which prompts.

    Returns
    -------
    tuple
        (work items in priority order, number of images fully cached, number of images considered).
    """
    records = project.images(split)
    if image_ids is not None:
        by_id = {r.id: r for r in records}
        missing = [i for i in image_ids if i not in by_id]
        if missing:
            raise FusereviewError(
                f"project has no image with id {missing[0]}" + (f" in split {split}" if split else "")
            )
        records = [by_id[i] for i in image_ids]
    first = [i for i in priority]
    if first:
        rank = {iid: k for k, iid in enumerate(first)}
        records = sorted(records, key=lambda r: rank.get(r.id, len(rank)))  # stable: rest keep their order
    prompts = project_prompts(project)
    work: list[WorkItem] = []
    cached = 0
    for rec in records:
        need = [
            (cid, text)
            for cid, text in prompts
            if project.cached_predictions(rec.id, fingerprint, cache_key(text, threshold, category_id=cid))
            is None
        ]
        if need:
            work.append(WorkItem(rec, need))
        else:
            cached += 1
    return work, cached, len(records)


def _is_oom(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, (torch.OutOfMemoryError, MemoryError)) or "out of memory" in str(exc).lower()


def _predict_with_backoff(
    predictor: Predictor, images: list[np.ndarray], prompts: list[tuple[int, str]], threshold: float
) -> list[list[Detection]]:
    """Predict; on out-of-memory, split the batch in halves and retry, down to one image."""
    try:
        return predictor.predict(images, prompts, threshold=threshold)
    except (RuntimeError, MemoryError) as exc:
        if not _is_oom(exc):
            raise
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        if len(images) == 1:
            raise OutOfMemoryError(
                f"out of memory on {getattr(predictor, 'device', 'the device')} even with one image per batch; "
                "use a smaller image size or model, or --device cpu"
            ) from exc
        half = len(images) // 2
        log.warning("out of memory with a batch of %d images; retrying with %d", len(images), half)
        return _predict_with_backoff(predictor, images[:half], prompts, threshold) + _predict_with_backoff(
            predictor, images[half:], prompts, threshold
        )


def run_work(
    project: Any,
    predictor: Predictor,
    work: Sequence[WorkItem],
    *,
    batch_size: int = 4,
    threshold: float = 0.3,
    on_batch: Callable[[list[JobResult]], None] | None = None,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    loader: Callable[[ImageRecord], np.ndarray] | None = None,
) -> tuple[list[JobResult], bool]:
    """Predict work items batch by batch; an image that fails to load is reported and skipped.

    Returns
    -------
    tuple
        (results, stopped): ``stopped`` is True when ``should_stop`` ended the run early.
    """
    from fusereview.core.images import load_image

    if batch_size < 1:
        raise FusereviewError(f"--batch-size must be at least 1, got {batch_size}")
    load = loader or (
        lambda rec: load_image(project.image_path(rec.id), expected_size=(rec.width, rec.height))
    )
    results: list[JobResult] = []
    done = 0
    if progress:
        progress(0, len(work))
    batches = [list(work[i : i + batch_size]) for i in range(0, len(work), batch_size)]

    def load_batch(batch: list[WorkItem]) -> list[tuple[WorkItem, np.ndarray | FusereviewError]]:
        loaded: list[tuple[WorkItem, np.ndarray | FusereviewError]] = []
        for item in batch:
            try:
                loaded.append((item, load(item.image)))
            except FusereviewError as exc:  # ImageDecodeError, missing file, path outside the dataset
                loaded.append((item, exc))
        return loaded

    # Decode the next batch in a background thread while the model runs on this one.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="fusereview-decode") as pool:
        pending = pool.submit(load_batch, batches[0]) if batches else None
        for k, batch in enumerate(batches):
            if should_stop is not None and should_stop():
                if pending is not None:
                    pending.cancel()
                return results, True
            assert pending is not None
            loaded = pending.result()
            pending = pool.submit(load_batch, batches[k + 1]) if k + 1 < len(batches) else None
            good: list[tuple[WorkItem, np.ndarray]] = []
            batch_results: list[JobResult] = []
            for item, img in loaded:
                if isinstance(img, FusereviewError):
                    log.warning("skipping image %s: %s", item.image.file_name, img)
                    batch_results.append(JobResult(item.image.id, error=str(img)))
                else:
                    good.append((item, img))
            if good:
                prompts = sorted({p for item, _ in good for p in item.prompts})
                dets = _predict_with_backoff(predictor, [img for _, img in good], prompts, threshold)
                for (item, _), image_dets in zip(good, dets, strict=True):
                    wanted = {cid for cid, _ in item.prompts}
                    by_cat: dict[int, list[Detection]] = {cid: [] for cid in wanted}
                    for d in image_dets:
                        if d.category_id in wanted:
                            by_cat[d.category_id].append(d)
                    batch_results.append(JobResult(item.image.id, by_cat))
            if on_batch is not None:
                on_batch(batch_results)
            results.extend(batch_results)
            done += len(batch)
            if progress:
                progress(done, len(work))
    return results, False


def store_results(project: Any, fingerprint: str, results: Iterable[JobResult], threshold: float) -> int:
    """Write successful results into the project's prediction cache; returns detections stored."""
    prompts = dict(project_prompts(project))
    n = 0
    for res in results:
        if res.error is not None:
            continue
        for cid, dets in res.detections.items():
            key = cache_key(prompts[cid], threshold, category_id=cid)
            # skip_empty: a detection clamped to the image edge with no area and no mask cannot be
            # reviewed; everything else wrong (NaN scores, bad masks) still refuses the set
            n += len(
                project.store_predictions(
                    res.image_id, fingerprint, key, dets, category_id=cid, skip_empty=True
                )
            )
    return n


def predict_project(
    project: Any,
    predictor: Predictor,
    *,
    split: str | None = None,
    image_ids: Sequence[int] | None = None,
    batch_size: int = 4,
    threshold: float = 0.3,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    priority: Iterable[int] = (),
) -> dict[str, Any]:
    """Predict the project's images that are not cached yet, storing each batch as it completes.

    Parameters
    ----------
    project:
        A :class:`fusereview.core.project.Project`.
    predictor:
        Any :class:`~fusereview.models.base.Predictor` (its ``fingerprint`` keys the cache).
    split, image_ids:
        Which images (default: all, in import order).
    batch_size:
        Images per model call (halved automatically on out-of-memory).
    threshold:
        Score threshold (part of the cache key).
    progress:
        Called as ``progress(done, total)`` with images done of those needing prediction.
    should_stop:
        Checked between batches; when it returns True the job stops, keeping what is stored.
    priority:
        Image ids to predict first (the image on screen), then the rest in order.

    Returns
    -------
    dict
        ``images`` (considered), ``cached`` (already cached), ``predicted``, ``failed``,
        ``failures`` (list of ``{"image_id", "file_name", "error"}``), ``detections`` (stored now),
        ``stopped`` (bool).
    """
    work, cached, total = plan(
        project,
        predictor.fingerprint,
        split=split,
        image_ids=image_ids,
        priority=priority,
        threshold=threshold,
    )
    stored = 0

    def on_batch(batch: list[JobResult]) -> None:
        nonlocal stored
        stored += store_results(project, predictor.fingerprint, batch, threshold)

    results, stopped = run_work(
        project,
        predictor,
        work,
        batch_size=batch_size,
        threshold=threshold,
        on_batch=on_batch,
        progress=progress,
        should_stop=should_stop,
    )
    return summarize(project, results, cached=cached, total=total, stored=stored, stopped=stopped)


def summarize(
    project: Any, results: Sequence[JobResult], *, cached: int, total: int, stored: int, stopped: bool
) -> dict[str, Any]:
    """The counts dict :func:`predict_project` returns."""
    names = {}
    failures = []
    for r in results:
        if r.error is not None:
            if not names:
                names = {rec.id: rec.file_name for rec in project.images()}
            failures.append(
                {"image_id": r.image_id, "file_name": names.get(r.image_id, ""), "error": r.error}
            )
    return {
        "images": total,
        "cached": cached,
        "predicted": sum(1 for r in results if r.error is None),
        "failed": len(failures),
        "failures": failures,
        "detections": stored,
        "stopped": stopped,
    }


def box_rle(box: Sequence[float], height: int, width: int) -> dict[str, Any]:
    """The RLE of a box's rectangle (xyxy), rasterised as COCO rasterises the polygon."""
    from fusereview.core.geometry import polygons_to_rle

    x0, y0, x1, y1 = (float(v) for v in box)
    return polygons_to_rle([[x0, y0, x1, y0, x1, y1, x0, y1]], height, width)


def coco_results(project: Any, fingerprint: str, *, split: str, threshold: float) -> list[dict[str, Any]]:
    """The cached predictions of one split as a COCO results list (what ``COCO.loadRes`` reads).

    These are the stored *instances* (:mod:`fusereview.core.instances`): what review shows and
    accepting saves; a box-only instance's segmentation is its box.

    Image and category ids are the dataset's own (the split's COCO image ids; category ids are
    kept on import), so the list loads against the user's json for that split, and against
    ``Project.to_coco_dict(split)``.
    """
    prompts = project_prompts(project)
    out: list[dict[str, Any]] = []
    for rec in project.images(split):
        image_id = project.coco_image_id(rec.id)
        for cid, text in prompts:
            preds = project.cached_predictions(
                rec.id, fingerprint, cache_key(text, threshold, category_id=cid)
            )
            for p in preds or []:
                x0, y0, x1, y1 = p.box
                entry: dict[str, Any] = {
                    "image_id": int(image_id),
                    "category_id": int(p.category_id),
                    "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
                    "score": float(p.score),
                }
                if p.mask is not None:
                    entry["segmentation"] = {"size": list(p.mask["size"]), "counts": p.mask["counts"]}
                else:
                    # a box-only instance (core.instances): its mask is its box, as the evaluator
                    # counts a box-only label; pycocotools' loadRes needs every result to have one
                    entry["segmentation"] = box_rle(p.box, rec.height, rec.width)
                out.append(entry)
    return out
