"""Ask the model about a label's own box: is there an object inside it? (label issues, ADR 0022)

A label that no detection supports is either a box on nothing (a spurious label) or an object the
model overlooked, and detections cannot tell the two apart: both have nothing near them. The
interactive head can (:mod:`fusereview.models.interactive`): prompted with the label's box, it
segments the object inside when there is one; on nothing its mask is empty or lands on something
beside the box. :func:`check_label_boxes` asks it about the labels the spurious queue lists and
returns, per label, :func:`fusereview.core.label_issues.box_support_score` of the mask it gives:
what :func:`fusereview.core.label_issues.find_label_issues` takes as ``box_support``.

One vision pass per image (the head keeps the image's embedding while the same key is asked
about), then the prompt encoder and mask decoder per label. Measured on a 2-core CPU with the demo
model: 66 ms for an image's first label, 11 ms for each further one (27 labels of the demo project
in 1.0 s). With full-size SAM3 the vision pass dominates (``tests/benchmarks/bench_click.py``
measures it): on a CPU, ask about a few images at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from fusereview.core.label_issues import ISSUE_MIN, box_support_score, find_label_issues

if TYPE_CHECKING:
    from fusereview.core.project import Project


def labels_to_check(
    project: Project,
    model: str | None = None,
    *,
    min_score: float = ISSUE_MIN,
    image_ids: Iterable[int] | None = None,
) -> list[int]:
    """The labels worth asking about: those the spurious queue lists at ``min_score`` or more (of some images)."""
    report = find_label_issues(project, model, image_ids=image_ids, min_score=min_score, kind="spurious")
    return [i.annotation_id for i in report.issues if i.annotation_id is not None]


def check_label_boxes(
    project: Project,
    segmenter: Any,
    annotation_ids: Iterable[int],
    *,
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> dict[int, float]:
    """Prompt the interactive head with each label's box; its support that an object is there.

    Parameters
    ----------
    project:
        The open project (its images are read from disk, once per image).
    segmenter:
        An :class:`~fusereview.models.interactive.InteractiveSegmenter` (``load_interactive``).
    annotation_ids:
        The labels to ask about (:func:`labels_to_check`).
    progress:
        Called with (labels done, labels in all) after each label.
    cancelled:
        Polled before each label; when it returns True the labels asked so far are returned.

    Returns
    -------
    dict
        Annotation id -> support in [0, 1] (:func:`~fusereview.core.label_issues.box_support_score`).
    """
    from fusereview.core.images import load_image

    wanted = sorted(set(annotation_ids))
    by_image: dict[int, list[Any]] = {}
    for aid in wanted:
        ann = project.annotation(aid)
        by_image.setdefault(ann.image_id, []).append(ann)
    out: dict[int, float] = {}
    total, done = len(wanted), 0
    for image_id in sorted(by_image):
        img = project.image(image_id)
        path = project.image_path(image_id)
        key = f"label-box-check:{project.root}:{image_id}"
        for ann in by_image[image_id]:
            if cancelled is not None and cancelled():
                return out
            x, y, w, h = (float(v) for v in ann.bbox)
            box = (x, y, x + w, y + h)
            result = segmenter.segment(
                key, lambda p=path, s=(img.width, img.height): load_image(p, expected_size=s), [], box=box
            )
            out[ann.id] = box_support_score(result.mask, box)
            done += 1
            if progress is not None:
                progress(done, total)
    return out
