"""`fusereview train`: fine-tune a SAM3 model on a project's (or a COCO dataset's) train split.

Multi-GPU: ``torchrun --nproc_per_node N -m fusereview train ... --run-dir D`` (DDP; every process
runs this command, only the first writes files).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from fusereview.core.errors import FusereviewError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register this command's arguments."""
    parser.add_argument(
        "source",
        metavar="PROJECT|DATASET",
        nargs="?",
        help="project folder or COCO dataset folder (not needed with --resume)",
    )
    parser.add_argument(
        "--model",
        "-m",
        default=None,
        help="model to start from: 'tiny', an export folder, a transformers folder, sam3.pt",
    )
    parser.add_argument("--preset", "-p", default="customer", help="customer (default), fast, or tiny")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None, help="images per step over all processes")
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--image-size", type=int, default=None, help="tiny models only: their resolution")
    parser.add_argument("--eval-every", type=int, default=None, help="validate every N epochs")
    parser.add_argument("--max-steps", type=int, default=None, help="stop after N steps (a smoke test)")
    parser.add_argument(
        "--dropout", type=float, default=None, help="override the model's dropout probability"
    )
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda when available)")
    parser.add_argument(
        "--export-dtype", choices=("float32", "bfloat16"), default=None, help="dtype of the best export"
    )
    parser.add_argument(
        "--run-dir", type=Path, default=None, help="run folder (default: PROJECT/runs/<preset>-<time>)"
    )
    parser.add_argument(
        "--resume",
        type=Path,
        default=None,
        metavar="RUN",
        help="continue a run folder exactly from its last checkpoint",
    )


def run(args: argparse.Namespace) -> int:
    """Run the command."""
    from fusereview.training.engine import Trainer, load_train_data
    from fusereview.training.hooks import ConsoleProgress, RegisterRun
    from fusereview.training.presets import preset_config
    from fusereview.training.runs import new_run_dir

    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    project = None
    if args.resume is not None:
        run_dir = args.resume
        cfg_path = run_dir / "config.json"
        if not cfg_path.exists():
            raise FusereviewError(f"--resume {run_dir}: not a run folder (no config.json)")
        import json

        saved = json.loads(cfg_path.read_text())
        source = args.source or saved.get("project")
        if not source:
            raise FusereviewError(f"{cfg_path}: project: missing; give PROJECT|DATASET")
        project = _open_project(Path(source))
        data = project if project is not None else load_train_data(source)
        trainer = Trainer(
            data,
            saved.get("model_spec", ""),
            preset_config("tiny"),
            run_dir,
            hooks=[ConsoleProgress()],
            resume=True,
            project=project,
        )
    else:
        if not args.source:
            raise FusereviewError("give PROJECT|DATASET (or --resume RUN)")
        if not args.model:
            raise FusereviewError("--model: required (e.g. 'tiny', a transformers folder or sam3.pt)")
        source = Path(args.source)
        if not source.exists():
            raise FusereviewError(f"{source}: no such project or dataset folder")
        project = _open_project(source)
        cfg = preset_config(
            args.preset,
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            image_size=args.image_size,
            eval_every=args.eval_every,
            max_steps=args.max_steps,
            device=args.device,
            dropout=args.dropout,
            export_dtype=args.export_dtype,
        )
        if args.run_dir is None and distributed:
            raise FusereviewError(
                "--run-dir: required under torchrun (every process must write to the same folder)"
            )
        runs_root = (project.root / "runs") if project is not None else Path.cwd() / "runs"
        run_dir = args.run_dir or new_run_dir(runs_root, args.preset)
        data = project if project is not None else load_train_data(source)
        trainer = Trainer(data, args.model, cfg, run_dir, hooks=[ConsoleProgress()], project=project)
    register = None
    if project is not None and not distributed:
        # the runs row is added once the run has started (its folder exists): a model that does
        # not load must not leave a row stuck at "created"
        register = RegisterRun(
            project, run_dir, {"preset": args.preset, "model": args.model, "resume": args.resume is not None}
        )
        trainer.hooks.append(register)
    try:
        result = trainer.train()
    except BaseException:
        if register is not None and register.run_id is not None:
            project.update_run(register.run_id, status="failed")  # type: ignore[union-attr]
        raise
    run_id = register.run_id if register is not None else None
    if project is not None and run_id is not None:
        project.update_run(
            run_id,
            status=result.status,
            best_metric=result.best_map,
            best_model_path=str(result.best_path) if result.best_path else None,
        )
    for notice in trainer.notices:
        print(f"note: {notice}")
    if result.status == "failed":
        raise FusereviewError(result.message)
    print(f"{result.status}: {result.message}\nrun folder: {result.run_dir}")
    return 0


def _open_project(path: Path) -> object | None:
    """The project at ``path``, or ``None`` when ``path`` is a dataset folder."""
    if not (path / "project.db").exists():
        return None
    from fusereview.core.project import Project

    return Project.open(path)
