"""JSON encoding, database rows to domain records, and the geometry of annotations made from masks and boxes.

Shared by the parts of :class:`fusereview.core.project.Project`; no state of its own.
"""

from __future__ import annotations

import json
from typing import Any

from fusereview.core.records import Annotation, Prediction, ReviewState

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
try:
    # JSONEncoder.encode builds a new C encoder on every call; import encodes 100,000+ small
    # values, so build it once (a third faster). No circular check: values come from json.load.
    _c_encode = json.encoder.c_make_encoder(  # type: ignore[attr-defined]
        None,
        _encoder.default,
        json.encoder.c_encode_basestring,
        None,
        ":",
        ",",
        False,
        False,
        False,  # type: ignore[attr-defined]
    )
except (AttributeError, TypeError):  # no C accelerator (PyPy) or another signature
    _c_encode = None


def dumps(value: Any) -> str:
    """The one JSON encoding of the project tables: compact, unicode kept, NaN refused (not JSON)."""
    if _c_encode is None:
        return _encoder.encode(value)
    if isinstance(value, str):  # the C encoder only takes containers at the top
        return _encoder.encode(value)
    return "".join(_c_encode(value, 0))


PRED_COLUMNS = (
    "id, image_id, category_id, x0, y0, x1, y1, score, mask, model, prompt, state, decided_by, decided_at,"
    " annotation_id, geometry, match_annotation_id, match_iou, match_kind"
)
ANN_COLUMNS = (
    "id, image_id, category_id, bbox, segmentation, area, iscrowd, source, extra, geometry_edited_at"
)


def prediction_from_row(row: tuple) -> Prediction:
    """A :class:`Prediction` from a row of ``SELECT PRED_COLUMNS FROM predictions``."""
    (
        pid,
        image_id,
        cat,
        x0,
        y0,
        x1,
        y1,
        score,
        mask,
        model,
        prompt,
        state,
        by,
        at,
        ann,
        geo,
        m_ann,
        m_iou,
        kind,
    ) = row
    info = json.loads(geo) if geo else {}
    model_box = info.get("model_box")
    return Prediction(
        id=pid,
        image_id=image_id,
        category_id=cat,
        box=(x0, y0, x1, y1),
        score=score,
        mask=json.loads(mask) if mask else None,
        model=model,
        prompt=prompt,
        state=ReviewState(state),
        decided_by=by,
        decided_at=at,
        annotation_id=ann,
        note=info.get("note", ""),
        model_box=tuple(model_box) if model_box else None,
        match_annotation_id=m_ann,
        match_iou=m_iou,
        match_kind=kind or "",
    )


def annotation_from_row(row: tuple) -> Annotation:
    """An :class:`Annotation` from a row of ``SELECT ANN_COLUMNS FROM annotations``."""
    aid, image_id, cat, bbox, seg, area, iscrowd, source, extra, edited_at = row
    return Annotation(
        id=aid,
        image_id=image_id,
        category_id=cat,
        bbox=tuple(json.loads(bbox)),
        segmentation=json.loads(seg),
        area=area,
        iscrowd=iscrowd,
        source=source,
        extra=json.loads(extra) if extra else {},
        geometry_edited_at=edited_at or "",
    )


def box_polygon(bbox: tuple[float, float, float, float]) -> list[list[float]]:
    """The rectangle of a COCO ``xywh`` box as one COCO polygon.

    Schema 1 stored a box-only review annotation this way; schema 2 writes ``segmentation: []``
    (core.instances), and the migration (core.project_migrate) recognises the old form by it.
    """
    x, y, w, h = bbox
    return [[x, y, x + w, y, x + w, y + h, x, y + h]]


def xyxy_to_xywh(box: Any) -> tuple[float, float, float, float]:
    """``(x0, y0, x1, y1)`` to COCO ``(x, y, w, h)``; raises ``ValueError`` for an inverted box."""
    x0, y0, x1, y1 = (float(v) for v in box)
    if x1 < x0 or y1 < y0:
        raise ValueError(f"box must be (x0, y0, x1, y1) with x0 <= x1 and y0 <= y1, got {tuple(box)}")
    return (x0, y0, x1 - x0, y1 - y0)


def geometry_from_segmentation(
    segmentation: Any, height: int, width: int, bbox: Any = None
) -> tuple[tuple[float, ...], Any, float]:
    """``(bbox xywh, segmentation, area)`` of an annotation given as COCO segmentation.

    The segmentation is kept as given (polygons stay polygons); area and, unless ``bbox`` (xywh)
    is given, the box are computed from it.
    """
    from fusereview.core import geometry

    rle = geometry.segmentation_to_rle(segmentation, height, width)
    if rle is None:
        raise ValueError("segmentation is empty: give polygons or an RLE mask")
    area = float(geometry.rle_area(rle))
    box = (
        tuple(float(v) for v in bbox) if bbox is not None else tuple(float(v) for v in geometry.rle_bbox(rle))
    )
    return box, segmentation, area
