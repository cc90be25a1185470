"""The demo project: a synthetic fuse-box dataset in the Roboflow layout, imported once, reopened after.

Qt-free, so that tests and the ``demo`` command share it. The dataset is the same one the shipped
demo model was evaluated on (``fusereview.demo.build_model.DEMO_DATASET``): its test split is held
out from the model's training images, which come from another seed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from fusereview.core.errors import FusereviewError
from fusereview.core.project import Project
from fusereview.core.synthetic import generate_dataset
from fusereview.resources import resources_dir

#: Must match the dataset ``build_model`` scores the shipped model on.
DEMO_IMAGES = 35
DEMO_SIZE = 512
DEMO_SEED = 0


def default_workdir() -> Path:
    """Where the demo lives unless ``--workdir`` says otherwise (XDG data folder)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "fusereview" / "demo"


def demo_model_dir() -> Path:
    """The shipped demo model (export format d), or a clear error when it is missing."""
    path = resources_dir() / "demo_model"
    if not (path / "model.safetensors").is_file():
        raise FusereviewError(
            f"{path}: the demo model is missing (model.safetensors); rebuild it with "
            "`python -m fusereview.demo.build_model`"
        )
    return path


def prepare_demo_project(
    workdir: str | Path | None = None, *, progress: Callable[[str], None] | None = None
) -> Project:
    """Create the demo dataset and project in ``workdir``, or reopen them with every decision kept.

    The dataset is generated into a temporary folder and renamed into place by
    :func:`generate_dataset`, so an interrupted first start leaves nothing half-written behind.
    """
    root = Path(workdir) if workdir is not None else default_workdir()
    root.mkdir(parents=True, exist_ok=True)
    dataset = root / "dataset"
    project_dir = root / "project"
    say = progress or (lambda _msg: None)
    if not (dataset / "train" / "_annotations.coco.json").is_file():
        if dataset.exists() and any(dataset.iterdir()):
            raise FusereviewError(
                f"{dataset}: exists but holds no demo dataset (train/_annotations.coco.json); "
                "move it away or choose another --workdir"
            )
        say(f"generating the synthetic fuse-box dataset in {dataset} ...")
        generate_dataset(dataset, images=DEMO_IMAGES, size=DEMO_SIZE, seed=DEMO_SEED)
    fresh = not (project_dir / "project.db").is_file()
    if fresh:
        say(f"importing it into the project {project_dir} ...")
    return Project.open_or_import(dataset, project_dir)
