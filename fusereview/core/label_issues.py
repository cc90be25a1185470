"""Which labels are wrong: where a project's annotations and one model's predictions disagree.

A labelled dataset (a customer's 35 images, a Roboflow export of thousands) has mistakes buried
among correct labels. A model that is good, but not perfect, points at them: where it confidently
sees an object nobody labelled, where nothing it sees supports a label, where it puts the object
somewhere else, or calls it something else. This module finds those disagreements and scores
each one, so that the review queue can show the likeliest mistakes first (ADR 0022).

Overlap is what the review matcher uses (:func:`fusereview.core.matching.iou_matrix`: mask IoU when
both have a mask, else box IoU) and a label counts as *confirmed* by the prediction
:func:`~fusereview.core.matching.match_image` gives it (same category, IoU >= 0.5, greedy by
score, one prediction per label). Write ``s`` for a prediction's score and ``u`` for its IoU with
the label in question; every score below is in [0, 1], higher = likelier a mistake.

**missing label** (a prediction, no annotation)
    A confident prediction that matches no annotation and duplicates none:
    ``s · (1 − u_max)``, ``u_max`` its largest overlap with any annotation of any category (a
    prediction half on top of another label is half as likely to be a new object). One per
    object: a prediction overlapping (IoU >= 0.5) one that a label's match or issue explains, or
    a likelier missing label, is the same object (SAM3 answers the other category's prompt on
    it too, often as strongly) and is not asked about again.
**spurious label** (an annotation)
    Nothing the model sees supports it: ``(1 − E) · r``, where ``E`` is the largest of the
    confirming prediction's support ``1 − (1 − s)(1 − u)`` (its score or its exact overlap: a weak
    prediction lying exactly on the label is no coincidence) and ``s · min(1, u / 0.5)`` over the
    unmatched predictions (any category) that overlap it at ``u >=`` :data:`NEAR_IOU`, and ``r``
    is the share of the labels
    of its category that the model confirms (:func:`model_recall`): not being seen by a model
    that sees 60 % of the labels says less than not being seen by one that sees 95 %. When the
    model was also asked about the label's own box (``box_support``: its interactive head,
    prompted with the box, segments an object inside it), that answer is support too, and ``r``
    is 1 for the label (the model looked there: finding nothing is its answer, not a blind
    spot): it tells a label the model overlooked from a box on nothing, which no detection can.
**misplaced box or mask** (an annotation and a prediction of its category)
    The model puts the object elsewhere: ``max ρ · band(u) · (1 − w)`` over the confirming
    prediction and the unmatched same-category predictions overlapping it at ``u >=``
    :data:`NEAR_IOU`. ``ρ = 1 − (1 − s)(1 − min(1, u / 0.5))`` is how surely the object beside
    the label is real: by the prediction's score or by its lying beside a label of its category
    (a false positive seldom lands there by chance; the same noisy-or as the support above, the
    overlap counting fully from the match IoU), so a label beside its object's prediction
    outranks a lone prediction of the same score, whose object may be nothing. ``band`` is 1 up to
    :data:`MISPLACED_FULL` IoU and falls linearly to 0 at :data:`MISPLACED_ZERO` (a good model's
    own jitter), and ``w = s_c · (1 − band(u_c))`` is how strongly the confirming prediction
    vouches for the label where it is. A prediction whose box and the label's lie one inside the
    other (:data:`NESTED` of the smaller box) disagrees about the size, not the place: its ``u``
    counts as at least :data:`MISPLACED_ZERO` in ``band`` (a model that draws tight or loose
    boxes around the labelled object does not make its labels misplaced).
**wrong class** (an annotation and a prediction of another category)
    An unmatched prediction of another category covers it (``u >=`` 0.5) more confidently than
    any of its own: ``s_other · (1 − s_own)``, ``s_own`` the best score of its own category's
    predictions covering it at ``u >=`` 0.5.

An annotation gets one issue, of the kind that scores highest (with the prediction that gave
it); the queue of **one kind** (``kind=``) instead scores every label for that kind, so that a
label whose likeliest issue is another kind is still listed there, by its score for this one. A
prediction that already explains a label's issue (misplaced, wrong class) at a higher score is
not also a missing label. An **image score** aggregates its issues as the chance that at least
one is real, if each score were a probability: ``1 − ∏(1 − score)``. The scores rank; they are not
calibrated probabilities.

What takes part (:func:`find_label_issues`): the live annotations, and the predictions of one
model fingerprint that are model evidence: not rejected (the reviewer said the model was wrong
there) and not turned into an annotation (a reviewed label is not evidence about itself). Only
annotations as imported and never edited are checked (the reviewer made or fixed the others);
only pending predictions can be missing labels. A "label is right" verdict
(:mod:`fusereview.core.project_label_checks`) hides an annotation's issues for good, and on a
missing label it hides the predictions of its category that overlap its box at IoU >= 0.5.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from fusereview.core.errors import FusereviewError
from fusereview.core.geometry import box_containment
from fusereview.core.matching import MATCH_IOU, Candidate, annotation_candidate, iou_matrix, match_image

if TYPE_CHECKING:
    from fusereview.core.project import Project

#: The four kinds, in the order the table lists them.
KINDS = ("missing", "spurious", "misplaced", "wrong_class")
KIND_NAMES = {
    "missing": "missing label",
    "spurious": "spurious label",
    "misplaced": "misplaced box or mask",
    "wrong_class": "wrong class",
}
#: The kinds in the plural (a queue of one kind, a count).
KIND_PLURALS = {
    "missing": "missing labels",
    "spurious": "spurious labels",
    "misplaced": "misplaced boxes or masks",
    "wrong_class": "wrong classes",
}
#: Below this IoU a prediction says nothing about a label.
NEAR_IOU = 0.1
#: At or below this IoU a prediction of the label's category puts the object fully elsewhere.
MISPLACED_FULL = 0.5
#: At or above this IoU the label is where the model puts it (the model's own jitter).
MISPLACED_ZERO = 0.65
#: A prediction whose box and the label's lie one inside the other this much (intersection over
#: the smaller box) disagrees with the label about its size, not its place: not misplaced.
NESTED = 0.9
#: Scores below this are not reported as issues by default (a label its model confirms with a
#: middling score would be one); the CLI and the queue show them on request (min score).
ISSUE_MIN = 0.25

Box = tuple[float, float, float, float]


class LabelIssuesError(FusereviewError):
    """Label issues cannot be computed as asked (no predictions, an unknown model)."""


@dataclass(frozen=True)
class LabelIssue:
    """One disagreement between a label and the model.

    Attributes
    ----------
    kind:
        One of :data:`KINDS`.
    score:
        In [0, 1], higher = likelier a mistake (see the module docstring).
    image_id:
        The image (project id).
    annotation_id:
        The label in question (``None`` for a missing label).
    prediction_id:
        The prediction that disagrees (``None`` when a spurious label has none near it).
    category_id:
        The label's category (the prediction's for a missing label).
    prediction_category_id, prediction_score, prediction_box:
        The disagreeing prediction's category, score and box (xyxy), ``None`` without one.
    iou:
        The overlap of label and prediction (``None`` when either is missing).
    label_box:
        The label's box (xyxy), ``None`` for a missing label.
    scores:
        ``(kind, score)`` of every kind the label (or prediction) was scored for, the issue's
        own kind first: what else it might be.
    """

    kind: str
    score: float
    image_id: int
    annotation_id: int | None
    prediction_id: int | None
    category_id: int
    prediction_category_id: int | None = None
    prediction_score: float | None = None
    prediction_box: Box | None = None
    iou: float | None = None
    label_box: Box | None = None
    scores: tuple[tuple[str, float], ...] = ()

    def kind_score(self, kind: str) -> float:
        """This item's score for one kind (0 when it was not scored for it)."""
        return dict(self.scores).get(kind, 0.0)

    @property
    def key(self) -> tuple[str, int]:
        """What the issue is about: ``("gt", annotation id)`` or ``("pred", prediction id)`` (missing)."""
        if self.annotation_id is not None:
            return ("gt", self.annotation_id)
        assert self.prediction_id is not None
        return ("pred", self.prediction_id)


@dataclass
class IssueReport:
    """Every label issue of a project for one model, most likely first."""

    model: str
    issues: list[LabelIssue]
    image_scores: dict[int, float] = field(default_factory=dict)
    n_annotations: int = 0
    n_predictions: int = 0
    hidden: int = 0  # issues a "label is right" verdict hides
    recall: dict[int, float] = field(default_factory=dict)  # model_recall: per category

    def counts(self) -> dict[str, int]:
        """How many issues of each kind."""
        out = dict.fromkeys(KINDS, 0)
        for issue in self.issues:
            out[issue.kind] += 1
        return out


def band(u: float) -> float:
    """How much an overlap ``u`` says "the object is elsewhere" (1 fully, 0 not at all)."""
    if u < NEAR_IOU:
        return 0.0
    if u <= MISPLACED_FULL:
        return 1.0
    return float(np.clip((MISPLACED_ZERO - u) / (MISPLACED_ZERO - MISPLACED_FULL), 0.0, 1.0))


#: A mask filling this share of the box it was prompted with is a whole object there (an object
#: never fills its box: corners, a tilt; the demo's fuses fill 0.64-0.77 of their labels' boxes).
BOX_FILL_FULL = 0.6


def box_support_score(mask: Any, box: Box) -> float:
    """How surely a mask, segmented with ``box`` as its prompt, is an object inside that box.

    ``min(1, fill / BOX_FILL_FULL) · share``: ``fill`` the share of the box the mask covers,
    ``share`` the share of the mask inside the box. On nothing, a prompted head gives an empty
    mask or one on something beside the box (``share`` ~0); on an object it fills the box.

    Parameters
    ----------
    mask:
        COCO RLE (``size`` and ``counts``) or a bool ``HxW`` array, at the image's size.
    box:
        ``(x0, y0, x1, y1)`` in pixels.
    """
    from fusereview.core.geometry import rle_to_mask

    pixels = mask.astype(bool) if isinstance(mask, np.ndarray) else rle_to_mask(mask)
    height, width = pixels.shape[:2]
    x0, y0, x1, y1 = (float(v) for v in box)
    c0, r0 = max(0, int(np.floor(x0))), max(0, int(np.floor(y0)))
    c1, r1 = min(width, int(np.ceil(x1))), min(height, int(np.ceil(y1)))
    area = int(pixels.sum())
    box_area = max(c1 - c0, 0) * max(r1 - r0, 0)
    if area == 0 or box_area == 0:
        return 0.0
    inside = int(pixels[r0:r1, c0:c1].sum())
    return _unit(min(1.0, inside / box_area / BOX_FILL_FULL) * inside / area)


def image_score(scores: Iterable[float]) -> float:
    """The chance that at least one issue of an image is real, were the scores probabilities."""
    keep = 1.0
    for s in scores:
        keep *= 1.0 - float(s)
    return 1.0 - keep


def score_image(
    image_id: int,
    anns: Sequence[Candidate],
    preds: Sequence[Candidate],
    *,
    checked: set[int] | None = None,
    missing_ok: set[int] | None = None,
    recall: dict[int, float] | None = None,
    min_score: float = ISSUE_MIN,
    kind: str | None = None,
    box_support: Mapping[int, float] | None = None,
) -> list[LabelIssue]:
    """The label issues of one image (see the module docstring for the scores).

    Parameters
    ----------
    image_id:
        Written into the issues.
    anns, preds:
        The image's annotations and the model's predictions (``Candidate.score`` = the model's
        score), boxes xyxy.
    checked:
        Annotation ids that may have issues (default all); the others still explain predictions.
    missing_ok:
        Prediction ids that may be missing labels (default all).
    recall:
        Per category, the share of labels the model confirms (:func:`model_recall`; default 1):
        a label the model does not see is only as suspicious as the model is good at seeing labels.
    min_score:
        Issues scoring less are left out.
    kind:
        Only issues of this kind (one of :data:`KINDS`), each scored for it: a label's issue is
        then its score for that kind, with the prediction that gives it, even where another
        kind scores higher (the per-kind queue). Default: every label's likeliest kind.
    box_support:
        Annotation id -> the model's answer to the label's own box as a prompt, in [0, 1]
        (:func:`fusereview.models.box_check.check_label_boxes`): evidence that an object is there,
        beside the predictions (a spurious label's support is the larger).
    """
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind {kind!r}: expected one of {', '.join(KINDS)}")
    checked = {a.id for a in anns} if checked is None else checked
    missing_ok = {p.id for p in preds} if missing_ok is None else missing_ok
    n_p, n_a = len(preds), len(anns)
    ious = iou_matrix(preds, anns) if n_p and n_a else np.zeros((n_p, n_a))
    nested = (
        box_containment(np.array([p.box for p in preds]), np.array([a.box for a in anns])) >= NESTED
        if n_p and n_a
        else np.zeros((n_p, n_a), dtype=bool)
    )
    matches = match_image(preds, anns) if n_p and n_a else {}
    col = {a.id: j for j, a in enumerate(anns)}
    confirmed: dict[int, int] = {}  # annotation column -> prediction row
    free = []
    for i, p in enumerate(preds):
        m = matches.get(p.id)
        if m is None:
            free.append(i)
        elif m.kind == "match":
            confirmed[col[m.annotation_id]] = i
    issues: list[LabelIssue] = []
    claimed: dict[int, float] = {}  # prediction row -> best label issue it explains
    for j, a in enumerate(anns):
        if a.id not in checked:
            continue
        rate = 1.0 if recall is None else recall.get(a.category_id, 1.0)
        boxed = 0.0
        if box_support is not None and a.id in box_support:
            # the model looked at the label's box itself: what it says there needs no tempering by
            # how often it overlooks objects (its recall): "nothing here" is now its answer
            boxed, rate = float(box_support[a.id]), 1.0
        issue, of_kind = _label_issue(
            image_id, a, j, preds, ious, nested, confirmed.get(j), free, rate, boxed, kind
        )
        if issue.score < min_score:
            continue
        if kind is None:
            issues.append(issue)
        elif of_kind is not None and of_kind.score >= min_score:
            issues.append(of_kind)
        if issue.kind in ("misplaced", "wrong_class") and issue.prediction_id is not None:
            row = next(i for i, p in enumerate(preds) if p.id == issue.prediction_id)
            claimed[row] = max(claimed.get(row, 0.0), issue.score)
    if kind not in (None, "missing"):
        return issues
    # missing labels: one per object. What a label's issue (or its match) explains is not a new
    # object, nor is a weaker answer of the same object (the other category's prompt often answers
    # it too, and a second issue for it would ask the reviewer twice)
    missing: list[tuple[float, int, float]] = []
    for i in free:
        u_max = float(ious[i].max()) if n_a else 0.0
        score = preds[i].score * (1.0 - u_max)
        if claimed.get(i, -1.0) < score:
            missing.append((score, i, u_max))
    missing.sort(key=lambda t: (-t[0], preds[t[1]].id))
    picked = {i for _, i, _ in missing}
    explained = [i for i in range(n_p) if i not in picked]
    rows = [i for _, i, _ in missing]
    # overlap of each candidate (a row) with every prediction (a column)
    pp = iou_matrix([preds[i] for i in rows], preds) if rows and n_p > 1 else np.zeros((len(rows), n_p))
    emitted: list[int] = []
    for r, (score, i, u_max) in enumerate(missing):
        p = preds[i]
        if any(pp[r, k] >= MATCH_IOU for k in explained + emitted):
            continue
        emitted.append(i)
        if p.id not in missing_ok or score < min_score:
            continue
        issues.append(
            LabelIssue(
                "missing",
                _unit(score),
                image_id,
                None,
                p.id,
                p.category_id,
                p.category_id,
                p.score,
                p.box,
                u_max if n_a else None,
                scores=(("missing", _unit(score)),),
            )
        )
    return issues


def _either(p: float, q: float) -> float:
    """Noisy-or of two independent pieces of evidence: ``1 − (1 − p)(1 − q)``."""
    return 1.0 - (1.0 - p) * (1.0 - q)


def _label_issue(
    image_id: int,
    a: Candidate,
    j: int,
    preds: Sequence[Candidate],
    ious: np.ndarray,
    nested: np.ndarray,
    own: int | None,
    free: list[int],
    rate: float,
    boxed: float = 0.0,
    kind: str | None = None,
) -> tuple[LabelIssue, LabelIssue | None]:
    """The highest-scoring issue of one annotation (``own``: the row of its confirming prediction).

    And, with ``kind``, its issue of that kind (``None`` when it cannot be one: misplaced needs a
    prediction of its category near it, wrong class one of another category on it; never for
    ``"missing"``, which is about predictions), from the same scoring.
    """
    s_own = preds[own].score if own is not None else 0.0
    u_own = float(ious[own, j]) if own is not None else 0.0
    near = [i for i in free if ious[i, j] >= NEAR_IOU]
    # spurious: nothing supports it. A confirming prediction supports it by its score and by how
    # exactly it lies on the label (a weak prediction at IoU 0.95 is no coincidence): noisy-or
    confirm = _either(s_own, u_own) if own is not None else 0.0
    evidence = [(confirm, own)] + [(preds[i].score * min(1.0, ious[i, j] / MATCH_IOU), i) for i in near]
    if boxed > 0.0:
        evidence.append((min(1.0, boxed), None))  # the model, prompted with the label's box, found it
    support, support_row = max(evidence, key=lambda t: t[0])
    candidates: list[tuple[float, str, int | None]] = [((1.0 - support) * rate, "spurious", support_row)]

    # misplaced: a prediction of its category puts it elsewhere. That the object is real is said
    # by the prediction's score and by the label beside it (a false positive seldom lands next to a
    # label of its own category): noisy-or, the overlap counting fully from MATCH_IOU
    # a box inside the label's (or around it) is the object where the label is, sized otherwise:
    # "elsewhere" is read from an overlap of at least MISPLACED_ZERO (NESTED)
    def elsewhere(i: int) -> float:
        u = float(ious[i, j])
        return band(max(u, MISPLACED_ZERO) if nested[i, j] else u)

    vouch = s_own * (1.0 - elsewhere(own)) if own is not None else 0.0
    same = ([own] if own is not None else []) + [i for i in near if preds[i].category_id == a.category_id]
    if same:

        def placed_elsewhere(i: int) -> float:
            u = float(ious[i, j])
            return _either(preds[i].score, min(1.0, u / MATCH_IOU)) * elsewhere(i)

        best = max(same, key=lambda i: (placed_elsewhere(i), -i))
        score = placed_elsewhere(best) * (1.0 - vouch)
        candidates.append((score, "misplaced", best))
    # wrong class: another category covers it more confidently than its own
    others = [i for i in near if preds[i].category_id != a.category_id and ious[i, j] >= MATCH_IOU]
    if others:
        best = max(others, key=lambda i: (preds[i].score * float(ious[i, j]), -i))
        own_cover = [
            preds[i].score
            for i in range(len(preds))
            if preds[i].category_id == a.category_id and ious[i, j] >= MATCH_IOU
        ]
        score = preds[best].score * (1.0 - max(own_cover, default=0.0))
        candidates.append((score, "wrong_class", best))
    ranked = sorted(candidates, key=lambda t: (-t[0], KINDS.index(t[1])))
    scores = tuple((k, _unit(v)) for v, k, _ in ranked)

    def issue(chosen: tuple[float, str, int | None]) -> LabelIssue:
        score, what, row = chosen
        p = preds[row] if row is not None else None
        return LabelIssue(
            what,
            _unit(score),
            image_id,
            a.id,
            p.id if p is not None else None,
            a.category_id,
            p.category_id if p is not None else None,
            p.score if p is not None else None,
            p.box if p is not None else None,
            float(ious[row, j]) if row is not None else None,
            a.box,
            scores,
        )

    of_kind = next((c for c in ranked if c[1] == kind), None) if kind is not None else None
    return issue(ranked[0]), (issue(of_kind) if of_kind is not None else None)


def _unit(x: float) -> float:
    return float(min(1.0, max(0.0, x)))


# --- a project's issues ---------------------------------------------------------------------


def prediction_models(project: Project) -> list[tuple[str, int]]:
    """The model fingerprints that have predictions in the project, with how many (most first)."""
    rows = project.db.read(
        "SELECT model, COUNT(*) FROM predictions GROUP BY model ORDER BY COUNT(*) DESC, MAX(id) DESC"
    )
    return [(str(m), int(n)) for m, n in rows]


def choose_model(project: Project, model: str | None = None) -> str:
    """The model whose predictions label issues are computed from.

    ``model`` when given (it must have predictions); else the project's active model when it has
    predictions; else the only model that has any.

    Raises
    ------
    LabelIssuesError
        No predictions at all, an unknown model, or several models and none chosen (the message
        lists them).
    """
    models = prediction_models(project)
    known = dict(models)
    if model is not None:
        if model not in known:
            raise LabelIssuesError(
                f"project {project.root.name} has no predictions of model {model!r}"
                + (f" (it has: {', '.join(known)})" if known else "")
            )
        return model
    if not models:
        raise LabelIssuesError(
            f"project {project.root.name} has no predictions: predict first (`fusereview predict`, "
            "or `label-issues --model M`)"
        )
    active = (project.active_model() or {}).get("fingerprint")
    if active in known:
        return str(active)
    if len(models) == 1:
        return models[0][0]
    listing = ", ".join(f"{m} ({n})" for m, n in models)
    raise LabelIssuesError(
        f"project {project.root.name} has predictions of {len(models)} models and no active model among "
        f"them: choose one ({listing})"
    )


def model_recall(project: Project, model: str) -> dict[int, float]:
    """Per category, the share of the checked labels a prediction of ``model`` confirms.

    Read from the matches the project stores (:mod:`fusereview.core.matching`: a pending or
    agreed prediction of the label's category at IoU >= 0.5), so it costs one pass over the
    tables. It estimates the model's recall on this dataset (most labels are right): the weight
    of "the model does not see this label".
    """
    confirmed = {
        int(r[0])
        for r in project.db.read(
            "SELECT match_annotation_id FROM predictions WHERE model = ? AND match_kind = 'match'"
            " AND state != 'rejected' AND match_annotation_id IS NOT NULL",
            (model,),
        )
    }
    totals: dict[int, list[int]] = {}
    for aid, cat in project.db.read(
        "SELECT id, category_id FROM annotations WHERE deleted = 0 AND source = 'gt' AND geometry_edited_at = ''"
    ):
        t = totals.setdefault(int(cat), [0, 0])
        t[0] += 1
        t[1] += int(aid) in confirmed
    return {cat: (n_conf / n if n else 1.0) for cat, (n, n_conf) in totals.items()}


def find_label_issues(
    project: Project,
    model: str | None = None,
    *,
    image_ids: Iterable[int] | None = None,
    min_score: float = ISSUE_MIN,
    recall: dict[int, float] | None = None,
    kind: str | None = None,
    box_support: Mapping[int, float] | None = None,
) -> IssueReport:
    """The label issues of a project (or of some images) for one model, most likely first.

    Parameters
    ----------
    project:
        The open project.
    model:
        A model fingerprint (default :func:`choose_model`).
    image_ids:
        Only these images (default all): what the GUI recomputes after a fix.
    min_score:
        Leave out issues scoring less (0 keeps every annotation that has any disagreement).
    recall:
        :func:`model_recall` of the model when known (a recomputation of a few images reuses the
        report's, ``IssueReport.recall``); default: computed now.
    kind:
        Only issues of this kind, each label scored for it (:func:`score_image`): the queue of
        one kind, for a reviewer who fixes one kind of mistake at a time. Default: every kind.
    box_support:
        Annotation id -> the model's answer to the label's box as a prompt (:func:`score_image`),
        for the labels it was asked about; default none.
    """
    from fusereview.core.project_label_checks import verdicts

    model = choose_model(project, model)
    images = {img.id: img for img in project.images()}
    wanted = set(images) if image_ids is None else set(image_ids) & set(images)
    anns_by_image: dict[int, list[Any]] = {i: [] for i in wanted}
    preds_by_image: dict[int, list[Any]] = {i: [] for i in wanted}
    # a few images (the GUI after a fix): read those; else one pass over each table
    few = len(wanted) <= 16 and len(wanted) < len(images)
    anns = (
        (a for i in sorted(wanted) for a in project.annotations(image_id=i)) if few else project.annotations()
    )
    for ann in anns:
        if ann.image_id in anns_by_image:
            anns_by_image[ann.image_id].append(ann)
    preds = (
        (p for i in sorted(wanted) for p in project.predictions(image_id=i, model=model))
        if few
        else project.predictions(model=model)
    )
    for pred in preds:
        if pred.image_id in preds_by_image and pred.state.value != "rejected" and pred.annotation_id is None:
            preds_by_image[pred.image_id].append(pred)
    right_anns, right_boxes = verdicts(project, wanted)
    recall = model_recall(project, model) if recall is None else recall
    report = IssueReport(model, [], recall=recall)
    for image_id in sorted(wanted):
        img = images[image_id]
        anns = anns_by_image[image_id]
        preds = preds_by_image[image_id]
        report.n_annotations += len(anns)
        report.n_predictions += len(preds)
        cands = [
            annotation_candidate(a.id, a.category_id, a.bbox, a.segmentation, img.height, img.width)
            for a in anns
        ]
        pcands = [Candidate(p.id, p.category_id, tuple(p.box), p.mask, p.score) for p in preds]
        checkable = {a.id for a in anns if a.source == "gt" and not a.geometry_edited_at and not a.iscrowd}
        found = score_image(
            image_id,
            cands,
            pcands,
            checked=checkable,
            missing_ok={p.id for p in preds if p.state.value == "pending"},
            recall=recall,
            min_score=min_score,
            kind=kind,
            box_support=box_support,
        )
        kept = [i for i in found if not _hidden(i, right_anns, right_boxes.get(image_id, []))]
        report.hidden += len(found) - len(kept)
        report.issues.extend(kept)
        if kept:
            report.image_scores[image_id] = image_score(i.score for i in kept)
    report.issues.sort(key=lambda i: (-i.score, i.image_id, i.annotation_id or 0, i.prediction_id or 0))
    return report


def _hidden(issue: LabelIssue, right_anns: set[int], right_boxes: list[tuple[int, Box]]) -> bool:
    """Whether a "label is right" verdict hides an issue."""
    from fusereview.core.geometry import box_iou

    if issue.annotation_id is not None:
        return issue.annotation_id in right_anns
    if issue.prediction_box is None:
        return False
    boxes = [b for cat, b in right_boxes if cat == issue.category_id]
    if not boxes:
        return False
    overlap = box_iou(np.array([issue.prediction_box]), np.array(boxes))
    return bool((overlap >= MATCH_IOU).any())
