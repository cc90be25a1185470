"""Domain values shared by every layer: what a labeler calls a prediction, a decision, a prompt.

These are plain frozen dataclasses (no Qt, no torch), so they cross threads and processes safely.
Masks are COCO RLE dicts ``{"size": [h, w], "counts": str}`` (compressed, ``counts`` as str so that
they are JSON-serialisable); boxes are in image pixels.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

RLE = dict[str, Any]


class ReviewState(str, enum.Enum):
    """The state of a prediction under review."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    EDITED = "edited"


@dataclass(frozen=True)
class Detection:
    """One object a model found in one image.

    Attributes
    ----------
    box:
        ``(x0, y0, x1, y1)`` in image pixels.
    score:
        Confidence in [0, 1].
    mask:
        COCO RLE at the image's own size, or ``None`` for box-only models.
    category_id:
        The project category this detection was prompted for.
    prompt:
        The text prompt that produced it.
    """

    box: tuple[float, float, float, float]
    score: float
    mask: RLE | None
    category_id: int
    prompt: str = ""

    def __post_init__(self) -> None:
        x0, y0, x1, y1 = self.box
        if not (x1 >= x0 and y1 >= y0):
            raise ValueError(f"Detection box must be x0<=x1, y0<=y1, got {self.box}")
        if not (0.0 <= self.score <= 1.0):
            raise ValueError(f"Detection score must be in [0, 1], got {self.score}")


@dataclass(frozen=True)
class Category:
    """A class of objects; ``prompt`` is the text SAM3 is asked with (default: the name)."""

    id: int
    name: str
    prompt: str
    supercategory: str = ""


@dataclass(frozen=True)
class ImageRecord:
    """An image of the project."""

    id: int
    file_name: str
    width: int
    height: int
    split: str
    path: str = ""
    content_hash: str = ""


@dataclass(frozen=True)
class Annotation:
    """A ground-truth or reviewed annotation (what gets exported).

    ``bbox`` is COCO xywh; ``segmentation`` is as in COCO (list of polygons, or an RLE dict);
    ``source`` is ``"gt"`` for imported annotations, ``"review"`` for those created by a decision.
    """

    id: int
    image_id: int
    category_id: int
    bbox: tuple[float, float, float, float]
    segmentation: Any
    area: float
    iscrowd: int = 0
    source: str = "gt"
    extra: dict[str, Any] = field(default_factory=dict)
    #: When the project last changed the geometry ("" = as imported or as review created it).
    geometry_edited_at: str = ""

    @property
    def box_only(self) -> bool:
        """No mask: ``segmentation`` is ``[]`` (or holds only degenerate polygons)."""
        from fusereview.core.instances import is_box_only

        return is_box_only(self.segmentation)


@dataclass(frozen=True)
class Prediction:
    """A stored model prediction with its review state.

    ``box`` and ``mask`` are the *instance* (:mod:`fusereview.core.instances`): what the canvas
    shows and accepting saves; ``note`` says how the model's output became it and ``model_box``
    is the model's own box. ``match_annotation_id``/``match_iou``/``match_kind`` name the
    annotation a pending prediction matches (:mod:`fusereview.core.matching`): ``"match"``,
    ``"duplicate"`` (a second prediction of an already matched annotation) or ``""`` (none). An
    accepted prediction with a match and no ``annotation_id`` *agrees* with that annotation.
    """

    id: int
    image_id: int
    category_id: int
    box: tuple[float, float, float, float]
    score: float
    mask: RLE | None
    model: str
    prompt: str
    state: ReviewState = ReviewState.PENDING
    decided_by: str = ""
    decided_at: str = ""
    annotation_id: int | None = None
    note: str = ""
    model_box: tuple[float, float, float, float] | None = None
    match_annotation_id: int | None = None
    match_iou: float | None = None
    match_kind: str = ""

    @property
    def matched(self) -> bool:
        """It overlaps an existing annotation of its category (IoU >= 0.5)."""
        return bool(self.match_kind)

    @property
    def agrees_with(self) -> int | None:
        """The annotation an accepted prediction was recorded as agreeing with (no annotation made)."""
        if self.state is ReviewState.ACCEPTED and self.annotation_id is None and self.matched:
            return self.match_annotation_id
        return None
