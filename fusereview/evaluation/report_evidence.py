"""What a run report may conclude from its evidence, and the sentences that say so.

* **Which metrics to reason from.** A run whose ground truth has masks but whose masks are still
  weak must not be called unusable when its boxes find the objects: conclusions come from masks
  only when masks are there and not much weaker than boxes, and the report says which it used.
* **Is the best epoch real?** Judged with the paired bootstrap (the same method as ``compare``)
  on the validation split's images, not from epoch-to-epoch swings: a steady rise is not noise.
* **Train longer** when the best epoch is the last one and validation was still rising.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fusereview.evaluation.bootstrap import Interval, bootstrap, paired_bootstrap
from fusereview.evaluation.cocoeval import Evaluation

#: Masks count as "much weaker" than boxes below this fraction of the box AP50.
WEAK_MASK_RATIO = 0.5
#: Bootstrap resamples of the report's intervals (seeded: a report is reproducible).
RESAMPLES = 1000
SEED = 0


@dataclass
class Evidence:
    """The evaluation conclusions are drawn from, and a sentence naming it and why."""

    evaluation: Evaluation
    note: str

    @property
    def kind(self) -> str:
        """``"boxes"`` or ``"masks"``."""
        return "masks" if self.evaluation.iou_type == "segm" else "boxes"

    @property
    def noun(self) -> str:
        """``"box"`` or ``"mask"`` (as in "box AP")."""
        return "mask" if self.evaluation.iou_type == "segm" else "box"


def _ap50(ev: Evaluation | None) -> float | None:
    return None if ev is None else ev.metrics.values.get("AP50")


def choose_evidence(evaluations: Mapping[str, Evaluation], no_masks: str = "") -> Evidence | None:
    """Boxes or masks: the evaluation a report's conclusions rest on.

    Parameters
    ----------
    evaluations:
        IoU type -> evaluation, as saved by ``eval --json`` / ``report --evaluate``.
    no_masks:
        Why there is no mask evaluation, when the file says (``"the ground truth has no masks"``).
    """
    box, mask = evaluations.get("bbox"), evaluations.get("segm")
    if box is None and mask is None:
        return None
    if mask is None:
        reason = no_masks or "the evaluation has boxes only"
        return Evidence(box, f"Conclusions are from boxes: {reason}.")  # type: ignore[arg-type]
    if box is None:
        return Evidence(mask, "Conclusions are from masks (the evaluation has no box metrics).")
    b50, m50 = _ap50(box), _ap50(mask)
    if b50 is not None and b50 > 0 and (m50 is None or m50 < WEAK_MASK_RATIO * b50):
        return Evidence(
            box,
            f"Conclusions are from boxes: the masks are much weaker than the boxes (mask AP50 "
            f"{0.0 if m50 is None else m50:.3f} vs box AP50 {b50:.3f}), so judging by masks would call "
            "a model that finds the objects unusable. The masks need more training (more epochs, a "
            "higher mask dice weight) before mask outlines can be trusted in review.",
        )
    return Evidence(
        mask,
        f"Conclusions are from masks (mask AP50 {0.0 if m50 is None else m50:.3f}, box AP50 "
        f"{0.0 if b50 is None else b50:.3f}).",
    )


def ap_interval(ev: Evaluation | None) -> Interval | None:
    """The bootstrap interval of an evaluation's AP (``None`` without per-detection matches)."""
    if ev is None or ev.matches is None:
        return None
    return bootstrap(ev.matches, resamples=RESAMPLES, seed=SEED)["AP"]


@dataclass
class Stability:
    """The stability sentences, and how the last checkpoint compares with the best.

    ``last_vs_best`` / ``best_vs_start``: ``"worse"`` / ``"better"`` / ``"same"`` (no clear
    difference) from the paired bootstrap (the last checkpoint against the best; the best
    against the model the run started from), or ``None`` when not measured. ``start_line``: the
    sentence on the starting model.
    """

    lines: list[str]
    last_vs_best: str | None = None
    best_vs_start: str | None = None
    start_line: str = ""


def stability(
    best: Evaluation | None,
    last: Evaluation | None,
    *,
    best_epoch: Any,
    last_epoch: Any,
    run_path: str,
    epoch_aps: Sequence[tuple[Any, float | None]] = (),
    start: Evaluation | None = None,
    start_label: str = "the starting model",
) -> Stability:
    """Sentences on how much the validation split lets one trust the best epoch.

    ``best`` / ``last``: evaluations of the best and last checkpoints on the validation split
    (same IoU type), when ``report --evaluate`` made them; ``epoch_aps``: ``(epoch, AP)`` as the
    training's validation logged them.
    """
    kind = "mask" if best is not None and best.iou_type == "segm" else "box"
    ci = ap_interval(best)
    if ci is None:
        return Stability(
            [
                "Stability not measured: `fusereview report "
                f"{run_path} --evaluate` evaluates the best checkpoint on the validation split and "
                "gives the bootstrap interval of its AP (and compares it with the last checkpoint)."
            ]
        )
    n = best.n_images if best is not None else 0
    inside = [(e, ap) for e, ap in epoch_aps if ap is not None and ci.low <= ap <= ci.high]
    logged = [(e, ap) for e, ap in epoch_aps if ap is not None]
    band = ""
    if logged:
        which = "all" if len(inside) == len(logged) else f"{len(inside)} of the"
        band = (
            f" {which.capitalize() if which == 'all' else which} {len(logged)} validated epochs lie in "
            f"it (epochs {', '.join(str(e) for e, _ in inside) or 'none'})."
        )
    out = [
        f"Validation {kind} AP of the best checkpoint (epoch {best_epoch}), evaluated again as "
        f"`eval` does: {ci.value:.3f}, {ci.confidence:.0%} CI {ci.low:.3f}…{ci.high:.3f} (bootstrap "
        f"over the {n} validation images). Epochs whose validation AP lies in this band cannot be "
        f"told apart on this split.{band}"
    ]
    verdict = None
    if last is not None and last.matches is not None and best is not None and best.matches is not None:
        diff = paired_bootstrap(best.matches, last.matches, resamples=RESAMPLES, seed=SEED)["AP"]
        if diff is not None:
            verdict = "worse" if diff.high < 0 else ("better" if diff.low > 0 else "same")
            if diff.high < 0:
                out.append(
                    f"The last epoch ({last_epoch}) is worse than the best ({best_epoch}): ΔAP "
                    f"{diff.format()}. Later epochs overfit the training images; the best checkpoint "
                    "(already saved) is the one to use."
                )
            elif diff.low > 0:
                out.append(
                    f"The last epoch ({last_epoch}) is better than the recorded best ({best_epoch}) on "
                    f"these images: ΔAP {diff.format()}; the best epoch was chosen on the metrics "
                    "logged during training, which differ from this evaluation."
                )
            else:
                out.append(
                    f"The best epoch ({best_epoch}) and the last ({last_epoch}) show no clear "
                    f"difference: ΔAP {diff.format()}; the choice between them is within chance."
                )
    against, start_line = None, ""
    if start is not None and start.matches is not None and best is not None and best.matches is not None:
        gain = paired_bootstrap(start.matches, best.matches, resamples=RESAMPLES, seed=SEED)["AP"]
        if gain is not None:
            against = "better" if gain.low > 0 else ("worse" if gain.high < 0 else "same")
            start_line = {
                "better": f"This run's best checkpoint is better than the model it started from "
                f"({start_label}) on the validation images: ΔAP {gain.format()}.",
                "worse": f"This run's best checkpoint is worse than the model it started from "
                f"({start_label}) on the validation images: ΔAP {gain.format()}. Keep the starting "
                "model; fine-tune again with a lower learning rate or more data.",
                "same": f"This run's best checkpoint shows no clear difference from the model it "
                f"started from ({start_label}) on the validation images: ΔAP {gain.format()}. The "
                "fine-tuning did not measurably help; more (or more varied) training data, or a "
                "larger validation split to see a small gain, before switching models.",
            }[against]
            out.append(start_line)
    return Stability(out, verdict, against, start_line)


def still_rising(
    valid: Sequence[Mapping[str, Any]],
    best: Mapping[str, Any] | None,
    metric: Any,
    *,
    finished: bool,
    run_path: str,
) -> str | None:
    """ "Train longer" when the best epoch is the last and validation was still going up.

    ``metric(record) -> float | None`` reads the validation AP the best epoch was chosen on.
    """
    if not finished or best is None or len(valid) < 2 or best is not valid[-1]:
        return None
    prev, last = metric(valid[-2]), metric(valid[-1])
    if prev is None or last is None or last <= prev:
        return None
    return (
        f"The best epoch is the last one ({valid[-1].get('epoch')}) and validation box AP was still "
        f"rising ({prev:.3f} → {last:.3f} from epoch {valid[-2].get('epoch')}): train longer, e.g. "
        f"twice the epochs, or a new run from this one's best checkpoint (--model {run_path}/checkpoints/best)."
    )
