"""Where the commands get ground truth and results: a project or a dataset, a results file or a model.

Models are imported only inside :func:`model_results` (evaluation may use them to predict, never
at import time), so evaluating a results file needs no torch.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fusereview.core.errors import FusereviewError


class EvaluationSourceError(FusereviewError):
    """A project, dataset or results file given to a command cannot be used."""


@dataclass
class GroundTruth:
    """The ground truth of one split and where its images are."""

    name: str  # for messages: the json file or the project
    split: str
    gt: dict[str, Any]
    image_paths: dict[int, str] = field(default_factory=dict)
    project: Any = None  # an open Project when the source was a project (close() it)
    dataset: Any = None  # the loaded Dataset when the source was a dataset folder or json
    prompts: list[tuple[int, str]] = field(default_factory=list)

    def close(self) -> None:
        """Close the project, if one was opened."""
        if self.project is not None:
            self.project.close()
            self.project = None


def is_project(path: Path) -> bool:
    """Whether ``path`` is a fusereview project folder."""
    return (path / "project.db").is_file()


def load_ground_truth(path: str | Path, split: str) -> GroundTruth:
    """The ground truth of ``split`` from a project folder or a dataset (folder or json).

    Raises
    ------
    EvaluationSourceError
        When the path does not exist or has no such split (the message lists the splits).
    DatasetError
        When the dataset cannot be loaded (from :func:`fusereview.core.coco.load_dataset`).
    """
    path = Path(path)
    if not path.exists():
        raise EvaluationSourceError(f"{path}: no such project or dataset", file=str(path))
    if is_project(path):
        from fusereview.core.project import Project

        project = Project.open(path)
        try:
            if split not in project.splits():
                raise EvaluationSourceError(
                    f"{path}: no split {split!r} (the project has {project.splits()})", file=str(path)
                )
            gt = project.to_coco_dict(split)
            paths = {
                int(project.coco_image_id(r.id)): str(project.image_path(r.id)) for r in project.images(split)
            }
            prompts = [(c.id, c.prompt or c.name) for c in project.categories()]
        except BaseException:
            project.close()
            raise
        return GroundTruth(str(path), split, gt, paths, project=project, prompts=prompts)

    from fusereview.core.coco import load_dataset, resolve_image_path

    dataset = load_dataset(path)
    if split not in dataset.splits:
        if len(dataset.splits) == 1 and dataset.layout == "single":
            split = next(iter(dataset.splits))  # a single json is its own split, whatever it is called
        else:
            raise EvaluationSourceError(
                f"{path}: no split {split!r} (the dataset has {sorted(dataset.splits)})", file=str(path)
            )
    s = dataset.splits[split]
    paths = {}
    for im in s.data["images"]:
        try:
            paths[int(im["id"])] = str(resolve_image_path(s, im["file_name"]))
        except FusereviewError:
            continue  # overlays skip that image; evaluation does not need pixels
    real = {c["id"] for c in dataset.real_categories()}
    prompts = [(c["id"], str(c["name"])) for c in s.data["categories"] if c["id"] in real]
    return GroundTruth(str(s.json_path), split, s.data, paths, dataset=dataset, prompts=prompts)


def load_results_file(path: str | Path) -> list[dict[str, Any]]:
    """A COCO results json (a list of detections; ``{"annotations": [...]}`` is accepted too).

    Raises
    ------
    EvaluationSourceError
        When the file is missing or is not a results list (names the file).
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise EvaluationSourceError(f"{path}: no such results file", file=str(path)) from exc
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise EvaluationSourceError(f"{path}: cannot be read as JSON ({exc})", file=str(path)) from exc
    if isinstance(data, dict) and isinstance(data.get("annotations"), list):
        data = data["annotations"]
    if not isinstance(data, list):
        raise EvaluationSourceError(
            f"{path}: expected a list of detections (COCO results format)", file=str(path)
        )
    return data


def iou_types_for(
    gt: dict[str, Any], results: list[dict[str, Any]], requested: str = "both"
) -> tuple[list[str], str]:
    """The IoU types to evaluate for ``requested`` (``bbox``, ``segm`` or ``both``), and why masks are left out.

    ``both`` evaluates boxes only when masks are absent on either side: results without any
    ``segmentation`` (a detector, a box-only results file) or ground truth without any mask.
    Returns ``(types, reason)``; ``reason`` is ``""`` when masks are evaluated.
    """
    if requested != "both":
        return [requested], ""
    if results and not any(r.get("segmentation") for r in results):
        return ["bbox"], "the results have no masks"
    objects = [a for a in gt.get("annotations", []) if not a.get("iscrowd")]
    if objects and not any(a.get("segmentation") for a in objects):
        return ["bbox"], "the ground truth has no masks"
    return ["bbox", "segm"], ""


def progress_bar(label: str) -> Callable[[int, int], None]:
    """A ``progress(done, total)`` callback: a tqdm bar on stderr (plain lines when piped)."""
    from fusereview.core.progress import Progress

    return Progress(label)


def model_results(
    truth: GroundTruth,
    model: str,
    *,
    threshold: float = 0.05,
    device: str | None = None,
    batch_size: int = 4,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[dict[str, Any]], str]:
    """Predict the split with ``model`` and return ``(results, model fingerprint)``.

    The predictions are made in memory and nothing is written, for a project too: storing them
    would make them the project's current predictions and replace its review queue (the pending
    predictions of the active model) with this model's.

    Raises
    ------
    ModelLoadError
        When the model cannot be loaded completely.
    """
    from fusereview.models import load_predictor

    predictor = load_predictor(model, device=device)
    from fusereview.core.images import load_image

    images = truth.gt["images"]
    results: list[dict[str, Any]] = []
    if progress is not None:
        progress(0, len(images))
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size]
        pixels = []
        for im in batch:
            path = truth.image_paths.get(int(im["id"]))
            if path is None:
                raise EvaluationSourceError(
                    f"{truth.name}: image {im['file_name']!r} is not in the dataset folder",
                    file=str(truth.name),
                )
            pixels.append(load_image(path, expected_size=(int(im["width"]), int(im["height"]))))
        for im, dets in zip(
            batch, predictor.predict(pixels, truth.prompts, threshold=threshold), strict=True
        ):
            for d in dets:
                x0, y0, x1, y1 = d.box
                entry: dict[str, Any] = {
                    "image_id": int(im["id"]),
                    "category_id": int(d.category_id),
                    "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
                    "score": float(d.score),
                }
                if d.mask is not None:
                    entry["segmentation"] = {"size": list(d.mask["size"]), "counts": d.mask["counts"]}
                results.append(entry)
        if progress is not None:
            progress(min(start + batch_size, len(images)), len(images))
    return results, str(predictor.fingerprint)
