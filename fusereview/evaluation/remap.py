"""Id-remapped copies of ground truth and results, safe for pycocotools' evaluator.

pycocotools' ``COCOeval.evaluateImg`` stores the id of the matched annotation in ``dtMatches`` and
``gtMatches`` and later treats the value ``0`` as "no match". A ground-truth annotation with id 0
(Roboflow exports start at 0) is therefore never counted as found: the detection that matches it
becomes a false positive, and the object can be matched a second time. We never hand the user's ids
to the evaluator: images, categories and annotations are renumbered from 1 on copies, and mapped
back when we report per-image results. The user's dicts are never modified.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pycocotools import mask as mask_utils

from fusereview.core import geometry
from fusereview.core.errors import FusereviewError, Problem
from fusereview.core.rle_check import check_rle_strings

IOU_TYPES = ("bbox", "segm")


class EvaluationInputError(FusereviewError):
    """Ground truth or results cannot be evaluated; names the file and the field."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        super().__init__(str(problem), file=problem.file, field=problem.where or None)


@dataclass
class RemappedData:
    """Renumbered copies of a ground-truth dict and a results list.

    Attributes
    ----------
    gt:
        COCO dict with image, category and annotation ids renumbered from 1.
    results:
        Results with ``image_id`` / ``category_id`` renumbered; ``results[i]`` came from
        ``original_results[result_index[i]]``.
    image_ids, category_ids, annotation_ids:
        New id - 1 -> original id (index lists).
    result_index:
        Position in the caller's results list of each kept result.
    """

    gt: dict[str, Any]
    results: list[dict[str, Any]]
    image_ids: list[int] = field(default_factory=list)
    category_ids: list[int] = field(default_factory=list)
    annotation_ids: list[int] = field(default_factory=list)
    result_index: list[int] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)
    categories: list[dict[str, Any]] = field(default_factory=list)
    original_annotations: list[Mapping[str, Any]] = field(default_factory=list)
    original_results: Sequence[Mapping[str, Any]] = ()

    def original_image_id(self, new_id: int) -> int:
        """The caller's id of the image renumbered ``new_id``."""
        return self.image_ids[int(new_id) - 1]

    def original_category_id(self, new_id: int) -> int:
        """The caller's id of the category renumbered ``new_id``."""
        return self.category_ids[int(new_id) - 1]

    def original_annotation_id(self, new_id: int) -> int:
        """The caller's id of the annotation renumbered ``new_id``."""
        return self.annotation_ids[int(new_id) - 1]


def _is_number(value: Any) -> bool:
    # numbers.Real: numpy scalars from in-memory callers are numbers too.
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int of 400 digits: JSON allows it, no float holds it
        return False


def _is_id(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _box(value: Any) -> list[float] | None:
    """``value`` as 4 finite floats, or ``None`` when it is not a box (checked per result: keep it cheap)."""
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        return None
    try:
        x, y, w, h = value
        # ``v + 0.0`` accepts ints, floats and numpy numbers but, unlike float(v), refuses strings.
        box = [float(x + 0.0), float(y + 0.0), float(w + 0.0), float(h + 0.0)]
    except (TypeError, OverflowError):
        return None
    if not math.isfinite(box[0] + box[1] + box[2] + box[3]) or box[2] < 0 or box[3] < 0:
        return None
    if max(abs(v) for v in box) > _MAX_COORD:
        return None  # pycocotools would rasterise or compare it as pixels of a 10-million-pixel image
    return box


# Coordinates beyond this are no pixel of any image (50 megapixels at most).
_MAX_COORD = 1e7


def _fail(file: str, where: str, message: str) -> EvaluationInputError:
    return EvaluationInputError(Problem(file, where, message))


def remap(
    gt: Mapping[str, Any],
    results: Sequence[Mapping[str, Any]],
    *,
    iou_type: str = "bbox",
    score_threshold: float = 0.0,
    missing_masks: str = "error",
    gt_name: str = "ground truth",
    results_name: str = "results",
) -> RemappedData:
    """Validate ground truth and results and return renumbered copies.

    Parameters
    ----------
    gt:
        A COCO dict (``images``, ``categories``, ``annotations``).
    results:
        COCO results: dicts with ``image_id``, ``category_id``, ``score`` and ``bbox`` (xywh) and/or
        ``segmentation`` (RLE, or polygons which are converted to RLE at the image's size).
    iou_type:
        ``"bbox"`` or ``"segm"``: decides which fields are required.
    score_threshold:
        Results scoring below it are left out (their indices are skipped in ``result_index``).
    missing_masks:
        For segm, what a ground-truth annotation without a mask (a box-only review) means:
        ``"error"`` (default) refuses it; ``"box"`` evaluates its box as its mask.
    gt_name, results_name:
        How to name the two inputs in error messages (usually their file paths).

    Raises
    ------
    EvaluationInputError
        On the first field that cannot be used; the message names the file and the field.
    """
    if missing_masks not in ("error", "box"):
        raise _fail(gt_name, "", f"missing_masks must be 'error' or 'box', got {missing_masks!r}")
    if iou_type not in IOU_TYPES:
        raise _fail(gt_name, "", f"iou_type must be one of {IOU_TYPES}, got {iou_type!r}")
    for key in ("images", "categories", "annotations"):
        if not isinstance(gt.get(key), list):
            raise _fail(gt_name, key, "missing or not a list")

    image_new: dict[int, int] = {}
    images: list[dict[str, Any]] = []
    sizes: dict[int, tuple[int, int]] = {}
    for i, img in enumerate(gt["images"]):
        iid = img.get("id") if isinstance(img, Mapping) else None
        if not isinstance(iid, int) or isinstance(iid, bool):
            raise _fail(gt_name, f"images[{i}].id", "missing or not an integer")
        if iid in image_new:
            raise _fail(gt_name, f"images[{i}].id", f"duplicate image id {iid}")
        for key in ("width", "height"):
            if not _is_number(img.get(key)) or img[key] <= 0:
                raise _fail(gt_name, f"images[{i}].{key}", "missing or not a positive number")
        image_new[iid] = len(image_new) + 1
        # Only what the evaluator needs: file names etc. stay with the caller's dicts.
        images.append({"id": image_new[iid], "width": int(img["width"]), "height": int(img["height"])})
        sizes[image_new[iid]] = (int(img["height"]), int(img["width"]))

    cat_new: dict[int, int] = {}
    categories: list[dict[str, Any]] = []
    for i, cat in enumerate(gt["categories"]):
        cid = cat.get("id") if isinstance(cat, Mapping) else None
        if not isinstance(cid, int) or isinstance(cid, bool):
            raise _fail(gt_name, f"categories[{i}].id", "missing or not an integer")
        if cid in cat_new:
            raise _fail(gt_name, f"categories[{i}].id", f"duplicate category id {cid}")
        cat_new[cid] = len(cat_new) + 1
        categories.append({"id": cat_new[cid], "name": str(cat.get("name", cid))})

    annotations: list[dict[str, Any]] = []
    ann_ids: list[int] = []
    seen_ann: set[int] = set()
    for i, ann in enumerate(gt["annotations"]):
        where = f"annotations[{i}]"
        if not isinstance(ann, Mapping):
            raise _fail(gt_name, where, "not an object")
        aid = ann.get("id")
        if not isinstance(aid, int) or isinstance(aid, bool):
            raise _fail(gt_name, f"{where}.id", "missing or not an integer")
        if aid in seen_ann:
            raise _fail(gt_name, f"{where}.id", f"duplicate annotation id {aid}")
        seen_ann.add(aid)
        if ann.get("image_id") not in image_new:
            raise _fail(gt_name, f"{where}.image_id", f"image {ann.get('image_id')!r} is not in images")
        if ann.get("category_id") not in cat_new:
            raise _fail(
                gt_name, f"{where}.category_id", f"category {ann.get('category_id')!r} is not in categories"
            )
        bbox = _box(ann.get("bbox"))
        if bbox is None:
            raise _fail(gt_name, f"{where}.bbox", "must be 4 numbers [x, y, w, h]")
        if not _is_number(ann.get("area")):
            raise _fail(gt_name, f"{where}.area", "missing or not a number")
        new_image = image_new[ann["image_id"]]
        copy = {
            "id": len(annotations) + 1,
            "image_id": new_image,
            "category_id": cat_new[ann["category_id"]],
            "bbox": bbox,
            "area": float(ann["area"]),
            "iscrowd": int(ann.get("iscrowd", 0) or 0),
        }
        seg = ann.get("segmentation")
        if iou_type == "segm":
            if not seg and missing_masks == "box":
                x, y, w, h = bbox
                seg = [[x, y, x + w, y, x + w, y + h, x, y + h]]
            if not seg:
                raise _fail(
                    gt_name,
                    f"{where}.segmentation",
                    "empty: segm evaluation needs a mask or polygon (evaluate boxes only, or count boxes as masks)",
                )
            copy["segmentation"] = seg  # read, never modified: pycocotools replaces the key on the copy
        elif seg:
            copy["segmentation"] = seg
        annotations.append(copy)
        ann_ids.append(aid)

    new_results: list[dict[str, Any]] = []
    kept: list[int] = []
    rle_checks: list[int] = []  # positions in new_results of masks to check before pycocotools reads them
    need_box, need_mask = iou_type == "bbox", iou_type == "segm"
    # This loop runs once per detection (100,000 in the benchmark): plain dict lookups on the
    # common path; anything unusual goes through _check_result, which names the bad field.
    for i, res in enumerate(results):
        try:
            new_image = image_new.get(res["image_id"])
            new_cat = cat_new.get(res["category_id"])
            score = res["score"]
            ok = (
                new_image is not None
                and new_cat is not None
                and type(score) in (float, int)
                and math.isfinite(score)
            )
        except (KeyError, TypeError, OverflowError):
            ok = False
        if not ok:
            _check_result(res, i, image_new, cat_new, results_name)
            new_image, new_cat, score = (
                image_new[res["image_id"]],
                cat_new[res["category_id"]],
                float(res["score"]),
            )
        if score < score_threshold:
            continue
        out: dict[str, Any] = {"image_id": new_image, "category_id": new_cat, "score": float(score)}
        bbox = res.get("bbox")
        if bbox is not None:
            box = _box(bbox)
            if box is None:
                raise _fail(
                    results_name, f"[{i}].bbox", "must be 4 finite numbers [x, y, w, h] with w, h >= 0"
                )
            out["bbox"] = box
        elif need_box:
            raise _fail(results_name, f"[{i}].bbox", "missing: bbox evaluation needs a box")
        # Masks matter only to segm evaluation; bbox evaluation never reads them (overlays take
        # them from the caller's list), so we skip the conversion there.
        if need_mask:
            seg = res.get("segmentation")
            if not seg:
                raise _fail(results_name, f"[{i}].segmentation", "missing: segm evaluation needs a mask")
            out["segmentation"] = _result_rle(seg, sizes[new_image], results_name, f"[{i}].segmentation")
            rle_checks.append(len(new_results))
        new_results.append(out)
        kept.append(i)
    _check_result_rles(new_results, rle_checks, kept, sizes, results_name)

    # pycocotools' loadRes decides bbox-vs-segm from the first result only; a mixed list would be
    # evaluated wrongly without a word, so refuse it.
    if new_results:
        first_has_box = "bbox" in new_results[0]
        for j, res in enumerate(new_results):
            if ("bbox" in res) != first_has_box:
                raise _fail(results_name, f"[{kept[j]}].bbox", "some results have a bbox and others not")

    gt_copy: dict[str, Any] = {"images": images, "categories": categories, "annotations": annotations}
    return RemappedData(
        gt=gt_copy,
        results=new_results,
        image_ids=list(image_new),
        category_ids=list(cat_new),
        annotation_ids=ann_ids,
        result_index=kept,
        images=list(gt["images"]),
        categories=list(gt["categories"]),
        original_annotations=list(gt["annotations"]),
        original_results=results,
    )


def _check_result(
    res: Any, i: int, image_new: dict[int, int], cat_new: dict[int, int], results_name: str
) -> None:
    """Raise the error that names what is wrong with result ``i`` (the slow, thorough path)."""
    where = f"[{i}]"
    if not isinstance(res, Mapping):
        raise _fail(results_name, where, "not an object")
    image_id = res.get("image_id")
    if not _is_id(image_id) or image_id not in image_new:
        raise _fail(results_name, f"{where}.image_id", f"image {image_id!r} is not in the ground truth")
    cat_id = res.get("category_id")
    if not _is_id(cat_id) or cat_id not in cat_new:
        raise _fail(results_name, f"{where}.category_id", f"category {cat_id!r} is not in the ground truth")
    if not _is_number(res.get("score")):
        raise _fail(results_name, f"{where}.score", "missing or not a number")


def _check_result_rles(
    results: list[dict[str, Any]],
    positions: list[int],
    kept: list[int],
    sizes: dict[int, tuple[int, int]],
    file: str,
) -> None:
    """Every result mask must decode to exactly its image's pixels, checked before pycocotools.

    pycocotools trusts RLE counts: runs summing past height x width made ``computeIoU`` loop
    forever, and garbage characters were read as some mask. All strings are checked in one pass.
    """
    counts = [results[j]["segmentation"]["counts"] for j in positions]
    text = [c.decode("ascii", "replace") if isinstance(c, bytes) else c for c in counts]
    img_sizes = [sizes[results[j]["image_id"]] for j in positions]
    for j, reason in zip(positions, check_rle_strings(text, img_sizes), strict=True):
        if reason is not None:
            raise _fail(file, f"[{kept[j]}].segmentation.counts", reason)


def _result_rle(seg: Any, size: tuple[int, int], file: str, where: str) -> dict[str, Any]:
    """A result's mask as compressed RLE (pycocotools' loadRes only understands that)."""
    h, w = size
    if type(seg) is dict and type(seg.get("counts")) is str and seg.get("size") == [h, w]:
        return {"size": [h, w], "counts": seg["counts"]}  # the common case, checked cheaply
    if isinstance(seg, Mapping):
        counts = seg.get("counts")
        rle_size = seg.get("size")
        if not (isinstance(rle_size, (list, tuple)) and len(rle_size) == 2):
            raise _fail(file, f"{where}.size", "RLE needs size [height, width]")
        if not all(type(v) is int for v in rle_size):
            raise _fail(file, f"{where}.size", "RLE size must be two integers [height, width]")
        if [int(rle_size[0]), int(rle_size[1])] != [h, w]:
            raise _fail(
                file, f"{where}.size", f"RLE size {list(rle_size)} differs from the image's [{h}, {w}]"
            )
        if isinstance(counts, list):
            try:
                return dict(geometry.check_rle({"size": [h, w], "counts": counts}, h, w))
            except (geometry.SegmentationError, OverflowError) as exc:
                raise _fail(file, f"{where}.counts", str(exc)) from None
        if isinstance(counts, (str, bytes)):
            return {"size": [h, w], "counts": counts}  # checked with all the others afterwards
        raise _fail(file, f"{where}.counts", "must be a string or a list of run lengths")
    if isinstance(seg, list) and all(isinstance(p, list) for p in seg):
        polys = [p for p in seg if len(p) >= 6]
        if not polys:
            raise _fail(file, where, "no polygon with at least 3 points")
        for k, poly in enumerate(polys):
            if len(poly) % 2 or not all(_is_number(v) and abs(v) <= _MAX_COORD for v in poly):
                raise _fail(
                    file, f"{where}[{k}]", "a polygon must be an even number of finite pixel coordinates"
                )
        return dict(mask_utils.merge(mask_utils.frPyObjects([[float(v) for v in p] for p in polys], h, w)))
    raise _fail(file, where, "must be an RLE dict or a list of polygons")
