"""The training loop. Everything beyond one optimizer step is a hook (see :mod:`fusereview.training.hooks`).

``Trainer.train()`` reads as: set up → ``before_train`` → for each step: ``before_step``, run the
step, ``after_step``, at epoch ends validate and checkpoint → ``after_train`` in a ``finally``.
Faults end the run with a status and a message instead of killing the process: CUDA out of memory
(with a suggestion), a non-finite loss (with the step and the component), a failed checkpoint write
(the previous checkpoint stays intact).
"""

from __future__ import annotations

import errno
import math
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError

from fusereview.core.errors import FusereviewError
from fusereview.training import distributed as D
from fusereview.training.config import TrainConfig
from fusereview.training.data import (
    Sample,
    TrainDataset,
    collate,
    find_split_json,
    samples_from_coco,
    samples_from_project,
)
from fusereview.training.forward import enable_activation_checkpointing, forward_all_layers
from fusereview.training.hooks import HookBase, MetricsWriter
from fusereview.training.losses import COMPONENTS, SetCriterion, recipe
from fusereview.training.memory import check_fits, check_ram, estimate_peak_memory
from fusereview.training.modelio import LoadedModel, load_model, save_export, tokenize
from fusereview.training.optim import apply_freeze, build_optimizer, build_scheduler
from fusereview.training.presets import LIGHTER
from fusereview.training.resume import ResumeRefusedError, check_resumable, load_trainer_state
from fusereview.training.runs import RunFolder, env_info
from fusereview.training.validation import gt_from_samples, validate


class TrainingError(FusereviewError):
    """A run cannot start or continue (bad data, bad resume folder...)."""


class NonFiniteLossError(TrainingError):
    """A loss component became NaN or infinite."""


class TrainingOutOfMemoryError(TrainingError):
    """The device ran out of memory."""


class CheckpointSaveError(TrainingError):
    """A checkpoint could not be written (the previous one is intact)."""


# safetensors raises its own SafetensorError (not an OSError) when the disk is full
_SAVE_ERRORS = (OSError, SafetensorError)


@dataclass
class TrainData:
    """What a run trains and validates on.

    Attributes
    ----------
    train, valid:
        Samples of the train and valid splits (``valid`` may be empty: no validation).
    categories:
        ``(category_id, prompt)`` pairs.
    valid_gt:
        COCO ground truth of ``valid`` (for the metrics).
    source:
        Where it came from (for ``config.json``).
    """

    train: list[Sample]
    valid: list[Sample]
    categories: list[tuple[int, str]]
    valid_gt: dict[str, Any] | None = None
    source: str = ""

    def __post_init__(self) -> None:
        if self.valid and self.valid_gt is None:
            self.valid_gt = gt_from_samples(self.valid, self.categories)


def load_train_data(source: Any) -> TrainData:
    """Build :class:`TrainData` from a project (object or folder) or a COCO dataset folder."""
    if isinstance(source, TrainData):
        return source
    if hasattr(source, "annotations") and hasattr(source, "images"):
        return _from_project(source)
    path = Path(source)
    if (path / "project.db").exists():
        from fusereview.core.project import Project

        return _from_project(Project.open(path))
    train_json = find_split_json(path, "train")
    if train_json is None:
        raise TrainingError(
            f"{path}: no train split (expected {path}/train/*.json or a project folder)", file=str(path)
        )
    train, cats, _ = samples_from_coco(train_json)
    valid_json = find_split_json(path, "valid")
    valid, gt = [], None
    if valid_json is not None:
        valid, _, _ = samples_from_coco(valid_json)
        gt = gt_from_samples(valid, cats)
    return TrainData(train, valid, cats, gt, str(path))


def _from_project(project: Any) -> TrainData:
    train, cats = samples_from_project(project, "train")
    splits = project.splits()
    vsplit = "valid" if "valid" in splits else ("val" if "val" in splits else None)
    valid = samples_from_project(project, vsplit)[0] if vsplit else []
    return TrainData(train, valid, cats, None, str(project.root))


@dataclass
class RunResult:
    """How a run ended.

    Attributes
    ----------
    status:
        ``finished``, ``stopped`` or ``failed``.
    message:
        In words: what happened and, for a failure, what to try.
    """

    status: str
    message: str
    run_dir: Path
    step: int = 0
    best_epoch: int | None = None
    best_map: float | None = None
    best_path: Path | None = None
    last_path: Path | None = None
    last_validation: dict[str, Any] | None = None
    promoted: bool | None = None


@dataclass
class _EpochPlan:
    order: list[int]
    steps: int


@dataclass
class _State:
    """What ``trainer_state.pt`` holds besides optimizer and scheduler."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best_map: float | None = None
    best_epoch: int | None = None
    epoch_loss_sum: float = 0.0
    epoch_loss_n: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class Trainer:
    """Fine-tune a SAM3 model.

    Parameters
    ----------
    data:
        A project, a project / dataset folder, or :class:`TrainData`.
    model_spec:
        ``"tiny"``, an export folder or a transformers folder (see :func:`fusereview.training.modelio.load_model`).
    config:
        The run's configuration (ignored on resume: the run's own ``config.json`` is used).
    run_dir:
        The run folder (created), or the folder to resume when ``resume`` is true.
    hooks:
        Extra hooks (the metrics writer is always installed).
    resume:
        Continue ``run_dir`` exactly from ``checkpoints/last``.
    project:
        When given, a finished run proposes its best model as the project's active model.
    """

    def __init__(
        self,
        data: Any,
        model_spec: str,
        config: TrainConfig,
        run_dir: str | Path,
        hooks: Sequence[HookBase] = (),
        *,
        resume: bool = False,
        project: Any = None,
    ) -> None:
        self.data_source = data
        self.model_spec = model_spec
        self.base_fingerprint: str | None = None  # the starting model's (set in setup)
        self.config = config
        self.run = RunFolder(run_dir)
        self.resume = resume
        self.project = (
            project if project is not None else (data if hasattr(data, "set_active_model") else None)
        )
        self.hooks: list[HookBase] = [MetricsWriter(config.log_every), *hooks]
        self._stop = False
        self.dist = D.DistInfo()
        self.step = 0
        self.start_step = 0
        self.total_steps = 0
        self.epoch = 0
        self.latest: dict[str, Any] = {}
        self.epoch_record: dict[str, Any] = {}
        self.last_validation: dict[str, Any] | None = None
        self.result: RunResult | None = None
        #: True once setup succeeded (model loaded, run folder written); a run that never
        #: started has no folder to record its failure in, and no runs row.
        self.started = False
        self.state = _State()
        self._feature_cache: dict[int, Any] = {}
        self.notices: list[str] = []

    # ------------------------------------------------------------------ public

    @property
    def is_main(self) -> bool:
        """Whether this process writes files (rank 0)."""
        return self.dist.is_main

    def request_stop(self) -> None:
        """Ask the loop to stop after the current step (``last`` is saved); safe from any thread."""
        self._stop = True

    def train(self) -> RunResult:
        """Run to the end, a stop request or a fault; returns how it ended."""
        try:
            self._setup()
            for h in self.hooks:
                h.before_train(self)
            self._loop()
        except ResumeRefusedError:
            raise  # nothing was written, and no end record must be (a finished run stays finished)
        except KeyboardInterrupt:
            # a second Ctrl-C (the first one only asks for a stop: training/interrupt.py)
            self.result = self._result(
                "stopped",
                f"interrupted during step {self.step + 1} without saving it; resume from the last "
                f"checkpoint with --resume {self.run.path}",
            )
            raise
        except NonFiniteLossError as exc:
            self._save_last_quietly()
            self.result = self._result("failed", str(exc))
        except TrainingOutOfMemoryError as exc:
            self.result = self._result("failed", str(exc))
        except CheckpointSaveError as exc:
            self.result = self._result("failed", str(exc))
        except BaseException as exc:
            self.result = self._result("failed", f"{type(exc).__name__}: {exc}")
            raise
        finally:
            try:
                for h in self.hooks:
                    h.after_train(self)
            finally:
                D.cleanup(self.dist)
        return self.result

    # ------------------------------------------------------------------ setup

    def _setup(self) -> None:
        cfg = self.config
        if self.resume:
            # refused before anything is written (no end record, no runs row): see training/resume.py
            saved = check_resumable(self.run.path)
            try:
                cfg = self.config = TrainConfig.from_dict(saved)
                cfg.check()
            except (TypeError, FusereviewError) as exc:
                raise ResumeRefusedError(f"{self.run.path / 'config.json'}: {exc}") from None
            self.model_spec = saved.get("model_spec", self.model_spec)
            # the base of partial exports is the model the run started from, never `last`
            self.base_fingerprint = saved.get("model_fingerprint")
        cfg.check()
        dev_name = cfg.device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.dist = D.init_from_env(dev_name.split(":")[0])
        if dev_name == "cuda" and self.dist.world_size > 1:
            dev_name = f"cuda:{self.dist.local_rank}"
        self.device = torch.device(dev_name)
        self.amp_dtype = (
            torch.bfloat16 if (cfg.bf16 if cfg.bf16 is not None else self.device.type == "cuda") else None
        )
        _seed_everything(cfg.seed)

        self.data = load_train_data(self.data_source)
        spec = str(self.run.last) if self.resume else self.model_spec
        self.loaded: LoadedModel = load_model(spec, seed=cfg.seed, image_size=cfg.image_size)
        if not self.resume:
            self.base_fingerprint = self.loaded.fingerprint
        if cfg.image_size and cfg.image_size != self.loaded.image_size:
            raise TrainingError(
                f"--image-size {cfg.image_size}: the model {self.model_spec} works at {self.loaded.image_size} px"
            )
        model = self.loaded.model
        apply_freeze(model, cfg.freeze)
        if cfg.dropout is not None:
            for m in model.modules():
                if isinstance(m, torch.nn.Dropout):
                    m.p = cfg.dropout
        if cfg.activation_checkpointing:
            enable_activation_checkpointing(model)
        if self.device.type == "cuda" and self.is_main:
            card = torch.cuda.get_device_properties(self.device).total_memory / 2**30
            check_fits(
                estimate_peak_memory(model, cfg, self.loaded.image_size),
                card,
                cfg.preset,
                LIGHTER.get(cfg.preset),
            )
        elif self.device.type == "cpu" and self.is_main:
            # the same estimate against RAM: refused when it cannot fit, a warning when RAM is short now
            warning = check_ram(
                estimate_peak_memory(model, cfg, self.loaded.image_size, device_type="cpu"),
                cfg.preset,
                LIGHTER.get(cfg.preset),
                processes=self.dist.world_size,
            )
            if warning:
                self.notices.append(warning)
                print(f"warning: {warning}", file=sys.stderr)
        # float32 master weights whatever the file's dtype (a bf16 transformers folder); the
        # compute dtype is autocast's (amp_dtype), so weights and inputs always agree
        model.to(device=self.device, dtype=torch.float32).train()
        self.core_model = model
        self.model = model
        if self.dist.world_size > 1:
            # find_unused_parameters: text-prompt training never runs the geometry (box prompt) encoder.
            self.model = torch.nn.parallel.DistributedDataParallel(
                model,
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=True,
            )
        self.vision_frozen = not any(p.requires_grad for p in model.vision_encoder.parameters())
        self.use_cache = cfg.feature_cache and self.vision_frozen and cfg.augment == "none"
        if cfg.feature_cache and not self.use_cache:
            self.notices.append("feature cache off: it needs a frozen vision tower and augment 'none'")

        self.mask_size = 4 * (self.loaded.image_size // 14)
        self.dataset = TrainDataset(
            self.data.train,
            self.data.categories,
            image_size=self.loaded.image_size,
            mask_size=self.mask_size,
            augment=cfg.augment,
            negatives_per_image=cfg.negatives_per_image,
            seed=cfg.seed,
        )
        self.global_micro = cfg.batch_size
        D.shard(list(range(self.global_micro)), self.dist)  # refuses a batch that does not split evenly
        self.steps_per_epoch = math.ceil(len(self.dataset) / (cfg.batch_size * cfg.grad_accum))
        self.total_steps = self.steps_per_epoch * cfg.epochs
        self.criterion = SetCriterion(recipe=recipe(cfg.loss_recipe, cfg.loss_weights))
        self.optimizer = build_optimizer(
            model, cfg.lr, cfg.weight_decay, layer_decay=cfg.layer_decay, device=self.device
        )
        self.scheduler = build_scheduler(
            self.optimizer,
            warmup_steps=round(cfg.warmup_epochs * self.steps_per_epoch),
            total_steps=self.total_steps,
            schedule=cfg.schedule,
        )
        if self.resume:
            self._load_state()
        elif self.is_main:
            self.run.create(
                {
                    **cfg.to_dict(),
                    "model_spec": self.model_spec,
                    "model_fingerprint": self.loaded.fingerprint,
                    "project": self.data.source,
                    "started_at": time.time(),
                    "image_size_used": self.loaded.image_size,
                    "steps_per_epoch": self.steps_per_epoch,
                    "world_size": self.dist.world_size,
                    "notices": self.notices,
                },
                env_info(str(self.device)),
            )
        self.start_step = self.step = self.state.step
        self.started = True  # the run folder exists now: hooks may write into it
        D.barrier(self.dist)

    def _load_state(self) -> None:
        # weights_only: the state holds tensors, numbers, strings and numpy RNG state only (the
        # numpy types are allow-listed below); a pickle that wants more is refused, never run
        st = load_trainer_state(self.run.last / "trainer_state.pt", _NUMPY_STATE_GLOBALS)
        self.optimizer.load_state_dict(st["optimizer"])
        self.scheduler.load_state_dict(st["scheduler"])
        self.state = _State(**st["state"])
        rng = st["rng"]
        torch.set_rng_state(rng["torch"])
        np.random.set_state(rng["numpy"])
        random.setstate(rng["python"])
        if rng.get("cuda") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        if self.is_main:
            # The uninterrupted run's file would hold exactly the records up to this step.
            self.run.truncate_after_step(self.state.step)

    # ------------------------------------------------------------------ loop

    def _plan(self, epoch: int) -> _EpochPlan:
        self.dataset.set_epoch(epoch)
        n = len(self.dataset)
        per_step = self.config.batch_size * self.config.grad_accum
        order = np.random.default_rng([self.config.seed, epoch, 3]).permutation(n).tolist()
        steps = math.ceil(n / per_step)
        # Wrap around so that every step is full: equal shards for DDP, equal statistics per step.
        order = (order * (1 + (steps * per_step) // max(1, n)))[: steps * per_step]
        return _EpochPlan(order, steps)

    def _loop(self) -> None:
        cfg = self.config
        for epoch in range(self.state.epoch, cfg.epochs):
            self.epoch = epoch
            plan = self._plan(epoch)
            if self.state.batch_in_epoch == 0:
                self.state.epoch_loss_sum, self.state.epoch_loss_n = 0.0, 0
                self.state.extra["epoch_t0"] = time.time()
            for i in range(self.state.batch_in_epoch, plan.steps):
                if D.broadcast_flag(self._stop, self.dist):
                    self._save_last()
                    self.result = self._result(
                        "stopped", f"stopped at step {self.step}; resume with --resume {self.run.path}"
                    )
                    return
                for h in self.hooks:
                    h.before_step(self)
                per_step = cfg.batch_size * cfg.grad_accum
                idx = plan.order[i * per_step : (i + 1) * per_step]
                record = self.run_step(idx)
                self.step += 1
                self.state.step = self.step
                self.state.batch_in_epoch = i + 1
                self.state.epoch_loss_sum += record["loss"]
                self.state.epoch_loss_n += 1
                record.update(
                    type="step",
                    step=self.step,
                    epoch=epoch + (i + 1) / plan.steps,
                    time=time.time(),
                    total_steps=self.total_steps,
                )
                self.latest = record
                for h in self.hooks:
                    h.after_step(self)
                if cfg.max_steps is not None and self.step >= cfg.max_steps:
                    self._save_last()
                    self.result = self._result("stopped", f"reached max_steps {cfg.max_steps}")
                    return
            self._end_epoch(epoch)
        self._save_last()
        self.result = self._result("finished", self._finish_message())
        if self.is_main and self.project is not None:
            self.result.promoted = self._propose_model()

    def _end_epoch(self, epoch: int) -> None:
        cfg = self.config
        self.state.epoch = epoch + 1
        self.state.batch_in_epoch = 0
        self.epoch_record = {
            "type": "epoch",
            "epoch": epoch + 1,
            "step": self.step,
            "time": time.time(),
            "seconds": time.time() - self.state.extra.get("epoch_t0", time.time()),
            "loss": self.state.epoch_loss_sum / max(1, self.state.epoch_loss_n),
        }
        for h in self.hooks:
            h.after_epoch(self)
        if self.data.valid and ((epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs):
            self._validate(epoch + 1)
        if epoch + 1 < cfg.epochs:
            self._save_last()

    def run_step(self, indices: list[int]) -> dict[str, Any]:
        """One optimizer step over ``grad_accum`` micro-batches of the global indices; returns its record."""
        cfg = self.config
        t0 = time.perf_counter()
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        sums = dict.fromkeys(COMPONENTS, 0.0)
        total = 0.0
        try:
            for j in range(cfg.grad_accum):
                micro = D.shard(indices[j * cfg.batch_size : (j + 1) * cfg.batch_size], self.dist)
                batch = collate([self.dataset[k] for k in micro])
                loss, comps = self._forward_loss(batch)
                values = {k: float(v.detach()) for k, v in comps.items()}
                for k, v in [("loss", float(loss.detach())), *values.items()]:
                    if not math.isfinite(v):
                        raise NonFiniteLossError(
                            f"loss is not finite at step {self.step + 1}: {k} = {v}; lower --lr or check the annotations"
                        )
                (loss / cfg.grad_accum).backward()
                total += float(loss.detach()) / cfg.grad_accum
                for k, v in values.items():
                    sums[k] += v / cfg.grad_accum
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(
                    [p for p in self.core_model.parameters() if p.requires_grad], cfg.grad_clip
                )
            lr = max(g["lr"] for g in self.optimizer.param_groups)  # the rate this step used
            self.optimizer.step()
            self.scheduler.step()
        except torch.cuda.OutOfMemoryError as exc:
            self._recover_from_oom()
            raise TrainingOutOfMemoryError(self._oom_message()) from exc
        except RuntimeError as exc:
            if "out of memory" in str(exc) or "can't allocate memory" in str(exc):
                self._recover_from_oom()
                raise TrainingOutOfMemoryError(self._oom_message()) from exc
            raise
        finally:
            self.optimizer.zero_grad(set_to_none=True)
        dt = time.perf_counter() - t0
        return {
            "lr": lr,
            "loss": total,
            **sums,
            "images_per_s": cfg.batch_size * cfg.grad_accum / dt,
            "gpu_mem_gb": torch.cuda.max_memory_allocated(self.device) / 2**30
            if self.device.type == "cuda"
            else None,
            "step_seconds": dt,
        }

    def _forward_loss(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        ids, am = tokenize(self.loaded.tokenizer, batch["prompts"])
        ids, am = ids.to(self.device), am.to(self.device)
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
            o2m = self.criterion.wants_o2m  # one-to-many queries of the recipe (training forward only)
            if self.use_cache:
                out = forward_all_layers(
                    self.model,
                    vision_embeds=self._cached_vision(batch),
                    input_ids=ids,
                    attention_mask=am,
                    o2m=o2m,
                )
            else:
                out = forward_all_layers(
                    self.model,
                    pixel_values=batch["pixels"].to(self.device),
                    input_ids=ids,
                    attention_mask=am,
                    o2m=o2m,
                )
            return self.criterion(out, batch)

    def _cached_vision(self, batch: dict[str, Any]) -> Any:
        """Vision features of each image, computed once (valid: the tower is frozen, no augmentation)."""
        from transformers.models.sam3.modeling_sam3 import Sam3VisionEncoderOutput

        per_item = []
        for k, si in enumerate(batch["sample_index"]):
            if si not in self._feature_cache:
                with torch.no_grad():
                    vo = self.core_model.vision_encoder(batch["pixels"][k : k + 1].to(self.device))
                self._feature_cache[si] = (
                    tuple(t.detach() for t in vo.fpn_hidden_states),
                    tuple(t.detach() for t in vo.fpn_position_encoding),
                )
            per_item.append(self._feature_cache[si])
        levels = len(per_item[0][0])
        return Sam3VisionEncoderOutput(
            fpn_hidden_states=tuple(torch.cat([p[0][lv] for p in per_item]) for lv in range(levels)),
            fpn_position_encoding=tuple(torch.cat([p[1][lv] for p in per_item]) for lv in range(levels)),
        )

    # ------------------------------------------------------------------ faults

    def _recover_from_oom(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        self._feature_cache.clear()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _oom_message(self) -> str:
        cfg = self.config
        hints = []
        if cfg.batch_size > 1:
            hints.append(f"--batch-size {max(1, cfg.batch_size // 2)}")
        if not cfg.activation_checkpointing and cfg.freeze in ("full", "freeze_text"):
            hints.append("activation checkpointing")
        if LIGHTER.get(cfg.preset):
            hints.append(f"--preset {LIGHTER[cfg.preset]}")
        return (
            f"out of memory at step {self.step + 1} (batch {cfg.batch_size}, {self.loaded.image_size} px, freeze {cfg.freeze}); try "
            + (" or ".join(hints) or "a smaller image size")
        )

    # ------------------------------------------------------------------ validation, checkpoints

    def _validate(self, epoch: int) -> None:
        if self.is_main:
            metrics = validate(
                self.loaded,
                self.data.valid,
                self.data.categories,
                self.data.valid_gt,
                device=self.device,
                autocast_dtype=self.amp_dtype,
            )
            self.last_validation = {
                "type": "val",
                "step": self.step,
                "epoch": epoch,
                "time": time.time(),
                "split": "valid",
                **metrics,
            }
            ap = metrics["bbox"]["AP"]
            if ap is not None and (self.state.best_map is None or ap > self.state.best_map):
                self.state.best_map, self.state.best_epoch = ap, epoch
                self._save_best(metrics, epoch)
            for h in self.hooks:
                h.after_validation(self)
        D.barrier(self.dist)

    def _partial_base(self) -> tuple[str, str] | None:
        """The base checkpoint of partial exports, or ``None`` when every parameter is saved.

        Frozen towers are not copied (ADR 0010): an export names the model the run started from
        and holds what trains. The seeded training tiny model is not a file, so it is saved whole.
        """
        if self.config.freeze == "full" or self.model_spec == "tiny":
            return None
        return self.model_spec, self.base_fingerprint or self.loaded.fingerprint

    def _save_best(self, metrics: dict[str, Any], epoch: int) -> None:
        base = self._partial_base()
        try:
            save_export(
                self.loaded,
                self.run.best,
                dtype=self.config.export_dtype,
                only_trainable=base is not None,
                base=base,
                prompts=dict(self.data.categories),
                metrics={"split": "valid", **metrics},
                run_id=self.run.path.name,
                extra={"epoch": epoch, "step": self.step, "run_dir": str(self.run.path)},
            )
        except _SAVE_ERRORS as exc:
            raise self._save_error(self.run.best, exc, "the previous best checkpoint is intact") from exc

    def _save_last(self) -> None:
        D.barrier(self.dist)
        if not self.is_main:
            return
        state = {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "state": self.state.__dict__,
            "rng": {
                "torch": torch.get_rng_state(),
                "numpy": np.random.get_state(),
                "python": random.getstate(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            },
        }
        base = self._partial_base()  # `last` too: a frozen-tower run saves only what trains
        try:
            save_export(
                self.loaded,
                self.run.last,
                only_trainable=base is not None,
                base=base,
                prompts=dict(self.data.categories),
                run_id=self.run.path.name,
                extra={"step": self.step, "epoch": self.state.epoch},
                write_more=lambda d: torch.save(state, d / "trainer_state.pt"),
            )
        except _SAVE_ERRORS as exc:
            raise self._save_error(self.run.last, exc, "the previous checkpoint is intact") from exc

    def _save_error(self, target: Path, exc: BaseException, kept: str) -> CheckpointSaveError:
        """One message for a failed save; a full disk says how much space a checkpoint needs."""
        text = str(exc)
        full = getattr(exc, "errno", None) == errno.ENOSPC or "No space left" in text or "os error 28" in text
        if full:
            needed = sum(t.numel() * t.element_size() for t in self.core_model.state_dict().values())
            return CheckpointSaveError(
                f"disk full: {max(1, round(needed / 1e6))} MB needed at {target.parent}; {kept}",
                file=str(target),
            )
        return CheckpointSaveError(f"could not save {target}: {exc}; {kept}", file=str(target))

    def _save_last_quietly(self) -> None:
        try:
            self._save_last()
        except Exception as exc:
            print(f"warning: {exc}", file=sys.stderr)

    def _finish_message(self) -> str:
        if self.state.best_map is None:
            return f"finished {self.step} steps (no validation split)"
        return f"finished {self.step} steps; best val bbox AP {self.state.best_map:.4f} at epoch {self.state.best_epoch}"

    def _result(self, status: str, message: str) -> RunResult:
        return RunResult(
            status=status,
            message=message,
            run_dir=self.run.path,
            step=self.step,
            best_epoch=self.state.best_epoch,
            best_map=self.state.best_map,
            best_path=self.run.best if self.run.best.exists() else None,
            last_path=self.run.last if self.run.last.exists() else None,
            last_validation=self.last_validation,
        )

    def _propose_model(self) -> bool | None:
        """Make the best model the project's active one if its val mAP is at least the current model's."""
        return propose_active_model(
            self.project, self.result, self.data, device=self.device, start_spec=self.model_spec
        )


def propose_active_model(
    project: Any,
    result: RunResult,
    data: TrainData,
    *,
    device: torch.device | None = None,
    start_spec: str | None = None,
) -> bool | None:
    """Promote ``result``'s best model when its val bbox AP ≥ the current model's on the same split.

    The current model is the project's active model, or, when the project has none yet, the
    model the run started from (``start_spec``: fine-tuning must not replace a model with a
    worse one just because nobody registered it). Its AP is taken from stored metrics when they
    are for the valid split; otherwise it is measured now. Returns ``True`` (promoted), ``False``
    (kept the old one, and ``result.message`` says why) or ``None`` (nothing to propose).
    """
    if result.best_path is None or result.best_map is None:
        return None
    current = project.active_model() or ({"spec": start_spec} if start_spec else None)
    current_ap: float | None = None
    if current:
        m = current.get("metrics") or {}
        if m.get("split") == "valid" and m.get("bbox_AP") is not None:
            current_ap = float(m["bbox_AP"])
        else:
            try:
                cur = load_model(current["spec"])
                cur.model.to(device or "cpu")
                current_ap = validate(
                    cur, data.valid, data.categories, data.valid_gt, device=device or torch.device("cpu")
                )["bbox"]["AP"]
            except FusereviewError as exc:
                result.message += f"; kept the active model {current['spec']}: could not measure it ({exc})"
                return False
    if current_ap is not None and result.best_map < current_ap:
        result.message += f"; kept the active model {current['spec']} (val AP {current_ap:.4f} > this run's {result.best_map:.4f})"
        return False
    project.set_active_model(
        str(result.best_path),
        _fingerprint(result.best_path),
        {"split": "valid", "bbox_AP": result.best_map, "run_dir": str(result.run_dir)},
    )
    result.message += f"; {result.best_path} is now the project's active model"
    return True


def _fingerprint(folder: Path) -> str:
    """The fingerprint the models layer gives an export (its export id and its weights' hash)."""
    from fusereview.models.checkpoints import export_fingerprint

    return export_fingerprint(folder)


def _numpy_state_globals() -> list[Any]:
    """What ``np.random.get_state()`` pickles into (allowed for ``torch.load(weights_only=True)``)."""
    out: list[Any] = [np.ndarray, np.dtype, type(np.dtype("uint32"))]
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy 1
        from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]
    out.append(_reconstruct)
    return out


_NUMPY_STATE_GLOBALS = _numpy_state_globals()


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
