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
    from fusereview.training.presets import PRESET_HELP

    parser.add_argument(
        "--preset",
        "-p",
        default="customer",
        # argparse formats help with %: a literal % must be doubled
        help="; ".join(f"{n}: {t}" for n, t in PRESET_HELP.items()).replace("%", "%%")
        + " (default: customer)",
    )
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
    from fusereview.training.hooks import ConsoleProgress, ProjectRunRecord
    from fusereview.training.interrupt import EXIT_INTERRUPTED, StopOnSignals
    from fusereview.training.presets import preset_config
    from fusereview.training.resume import check_resumable
    from fusereview.training.runs import new_run_dir

    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    project = None
    hooks: list[object] = [ConsoleProgress(summary=False)]  # the command prints how the run ended, once
    if args.resume is not None:
        # absolute: the run's row, its best model and the resume command must work from any folder
        run_dir = args.resume.expanduser().resolve()
        saved = check_resumable(run_dir)  # a refusal is one line, before anything is opened or written
        source = args.source or saved.get("project")
        if not source:
            raise FusereviewError(f"{run_dir / 'config.json'}: project: missing; give PROJECT|DATASET")
        source = Path(source).expanduser().resolve()
        project = _open_project(source)
        data = project if project is not None else load_train_data(source)
        preset, model = str(saved.get("preset", "")), str(saved.get("model_spec", ""))
        row = ProjectRunRecord(project, run_dir, preset, model, resumed=True) if not distributed else None
        trainer = Trainer(
            data,
            model,
            preset_config("tiny"),  # ignored on resume: the run's own config.json is used
            run_dir,
            hooks=[*hooks, *([row] if row else [])],
            resume=True,
            project=project,
        )
    else:
        if not args.source:
            raise FusereviewError("give PROJECT|DATASET (or --resume RUN)")
        if not args.model:
            raise FusereviewError("--model: required (e.g. 'tiny', a transformers folder or sam3.pt)")
        source = Path(args.source).expanduser()
        if not source.exists():
            raise FusereviewError(f"{source}: no such project or dataset folder")
        source = source.resolve()  # config.json's "project" is read by --resume and report elsewhere
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
        run_dir = (args.run_dir or new_run_dir(runs_root, args.preset)).expanduser().resolve()
        data = project if project is not None else load_train_data(source)
        row = ProjectRunRecord(project, run_dir, args.preset, args.model) if not distributed else None
        trainer = Trainer(
            data, args.model, cfg, run_dir, hooks=[*hooks, *([row] if row else [])], project=project
        )
    try:
        with StopOnSignals(trainer.request_stop) as interrupt:
            result = trainer.train()
    except KeyboardInterrupt:  # a second signal: out at once, the last checkpoint stays resumable
        if trainer.is_main:
            print(f"interrupted; resume from the last checkpoint with: {resume_command(trainer)}")
        return EXIT_INTERRUPTED
    for notice in trainer.notices:
        print(f"note: {notice}")
    if result.status == "failed":
        raise FusereviewError(result.message)
    if interrupt.received is not None and result.status == "stopped":
        if trainer.is_main:
            print(
                f"{interrupt.received}: stopped after step {result.step}; {result.last_path} holds a "
                f"resumable checkpoint.\nresume with: {resume_command(trainer)}"
            )
        return EXIT_INTERRUPTED
    print(f"{result.status}: {result.message}\nrun folder: {result.run_dir}")
    return 0


def resume_command(trainer: object) -> str:
    """The exact command that continues ``trainer``'s run (under torchrun with as many processes)."""
    import shlex

    world = int(getattr(getattr(trainer, "dist", None), "world_size", 1) or 1)
    run_dir = str(trainer.run.path)  # type: ignore[attr-defined]
    if world > 1:
        return shlex.join(
            ["torchrun", "--nproc_per_node", str(world), "-m", "fusereview", "train", "--resume", run_dir]
        )
    return shlex.join(["fusereview", "train", "--resume", run_dir])


def _open_project(path: Path) -> object | None:
    """The project at ``path``, or ``None`` when ``path`` is a dataset folder."""
    if not (path / "project.db").exists():
        return None
    from fusereview.core.project import Project

    return Project.open(path)
