"""A training run: the cheap checks, then everything `train_one_epoch` and `end_epoch` work on.

`check_settings` runs right after the config is read and refuses what would only fail later (an
unknown model, fp16 or SyncBatchNorm on the CPU); `setup_run` then builds the `Run` once: data,
model, optimizer, schedule, scaler, loaders and the run folder. Nothing is written to the run
folder until a resumed state has loaded, so a failed `--resume` leaves the run as it was. A
resumed run trains on the split and data it started with (see gcnseg.training.rundata).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler

from gcnseg.classes import ClassSet
from gcnseg.config import Config
from gcnseg.data.dataset import SegmentationDataset, default_workers, eval_loader
from gcnseg.data.layouts import index_dataset
from gcnseg.data.samples import DatasetIndex
from gcnseg.data.splits import load_manifest, make_split, save_manifest, select
from gcnseg.data.transforms import Transform, train_transform
from gcnseg.errors import GcnsegError
from gcnseg.extras import install_hint
from gcnseg.io.atomic import write_json, write_text
from gcnseg.models.backbones import get_backbone_spec
from gcnseg.models.registry import model_entry
from gcnseg.runtime import resolve_amp, resolve_device
from gcnseg.training.checkpoints import (
    clear_run_dir,
    remove_temp_files,
    save_run_checkpoint,
    truncate_jsonl,
)
from gcnseg.training.distributed import DistInfo, ShardSampler
from gcnseg.training.ema import WeightEMA
from gcnseg.training.init import apply_init, check_init_model
from gcnseg.training.interrupts import Interrupts
from gcnseg.training.losses import SegmentationLoss, class_weights
from gcnseg.training.rundata import DATA_FILE, MANIFEST_FILE, data_record, resume_data
from gcnseg.training.schedule import LRSchedule

log = logging.getLogger(__name__)


@dataclass
class Progress:
    """Where training stands; saved in every checkpoint, so a resume continues from exactly here."""

    epoch: int = 0  # the epoch being trained (0-based)
    step_in_epoch: int = 0  # optimizer steps already done in `epoch`
    global_step: int = 0
    best_score: float = -math.inf
    elapsed_s: float = 0.0
    # Running sums of the epoch in progress (the same on every rank: they are summed across ranks
    # each step), so a resumed epoch's train metrics cover all its steps, not only the last ones.
    epoch_loss_sum: float = 0.0
    epoch_confusion: list[int] | None = None  # flattened C×C counts of the training crops
    epoch_train_s: float = 0.0
    # The divergence guard's state (see gcnseg.training.loop.check_loss).
    loss_ema: float | None = None
    loss_ema_min: float | None = None
    # With train.time_budget_min: the epochs that fit it, as last planned (see loop.plan_epochs).
    planned_epochs: int | None = None


@dataclass
class Run:
    """Everything one training run works on, built once by `setup_run`."""

    cfg: Config
    run_dir: Path
    device: torch.device
    info: DistInfo
    classes: ClassSet
    model: nn.Module  # what the loop calls: DDP-wrapped and/or compiled
    model_without_ddp: nn.Module  # the weights being trained
    ema: WeightEMA | None  # with train.ema_decay: their average, evaluated and saved as "model"
    optimizer: torch.optim.Optimizer
    schedule: LRSchedule
    amp: str  # the autocast precision in use: train.amp with "auto" resolved
    scaler: torch.amp.GradScaler
    loss_fn: SegmentationLoss
    train_set: SegmentationDataset
    sampler: DistributedSampler
    val_loader: Any  # None without a val split: nothing is validated, no best.pt
    steps_per_epoch: int
    workers: int
    progress: Progress
    last_metrics: dict
    started: float  # time.monotonic() minus the time trained before a resume
    bar: bool = True
    tensorboard: Any = None
    interrupts: Interrupts = field(default_factory=Interrupts)
    step_records: list[dict] = field(default_factory=list)  # steps.jsonl lines not yet written

    @property
    def evaluated_model(self) -> nn.Module:
        """What validation scores and checkpoints hold as "model": the EMA when there is one."""
        return self.ema.module if self.ema is not None else self.model_without_ddp

    @property
    def epochs(self) -> int:
        """The epochs this run trains: `train.epochs`, or fewer where a time budget planned fewer."""
        planned = self.progress.planned_epochs
        return self.cfg.train.epochs if planned is None else min(planned, self.cfg.train.epochs)

    @property
    def num_classes(self) -> int:
        return len(self.classes.names)

    def save(self, name: str, metrics: dict) -> None:
        """Rank 0 writes `name` into the run folder (atomically)."""
        if self.info.is_main:
            save_run_checkpoint(self.run_dir / name, checkpoint_payload(self, metrics))


def crop_transform(cfg: Config) -> Transform:
    """The training crops `cfg.data` asks for (one place, so a new setting reaches every user)."""
    data = cfg.data
    return train_transform(
        data.crop_size, (data.scale_min, data.scale_max), data.color_jitter, data.class_crops
    )


def checkpoint_payload(run: Run, metrics: dict) -> dict:
    extra = {} if run.ema is None else {"training_model": run.model_without_ddp.state_dict()}
    return {
        **extra,
        "model": run.evaluated_model.state_dict(),
        "config": run.cfg.to_dict(),
        "classes": run.classes.to_dict(),
        "progress": vars(run.progress).copy(),
        "metrics": metrics,
        "optimizer": run.optimizer.state_dict(),
        "schedule": run.schedule.state_dict(),
        "torch_rng": torch.get_rng_state(),
    }


def make_run_dir(cfg: Config) -> Path:
    """train.output/train.name, or a timestamped name (numbered when taken, see claim_run_dir)."""
    name = cfg.train.name or f"{cfg.model.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    return Path(cfg.train.output) / name


def check_settings(cfg: Config, *, resuming: bool) -> torch.device:
    """Refusals that need no data and no model, so they come before anything heavy is built."""
    if not cfg.data.root:
        raise GcnsegError(
            "no dataset: pass --data DATA (a dataset folder) or set data.root in the config"
        )
    entry = model_entry(cfg.model.name)
    device = resolve_device(cfg.train.device)
    if cfg.train.amp == "fp16" and device.type != "cuda":
        raise GcnsegError("--amp fp16 needs a CUDA GPU; use --amp bf16 on the CPU")
    weights = cfg.model.backbone_weights
    spec = get_backbone_spec(entry.backbone)
    if (
        not resuming
        and cfg.model.init is None
        and weights == "imagenet"
        and spec.offline_weights() is None
    ):
        raise GcnsegError(spec.missing_weights(entry.backbone))
    if not resuming and cfg.model.init is not None:
        check_init_model(cfg.model.init, cfg.model.name)
    return device


def check_distributed_settings(cfg: Config, device: torch.device, info: DistInfo) -> None:
    if cfg.train.sync_bn and info.enabled and device.type != "cuda":
        # DDP refuses SyncBatchNorm on CPU modules (a ValueError deep inside)
        raise GcnsegError(
            "train.sync_bn needs CUDA GPUs (PyTorch's SyncBatchNorm does not run on the CPU); "
            "on the CPU, BatchNorm statistics stay per process"
        )


def load_data(
    cfg: Config, run_dir: Path, state: dict | None
) -> tuple[DatasetIndex, dict, dict | None]:
    """(index, manifest, the data record to save); a resumed run's own split, never a new one."""
    if state is not None:
        classes = ClassSet.from_dict(state["classes"])
        return (*resume_data(run_dir, cfg, state["config"], classes), None)
    index = index_dataset(cfg.data.root)
    if cfg.data.manifest:
        manifest = load_manifest(cfg.data.manifest)
    else:
        manifest = make_split(
            index,
            test_fraction=cfg.data.test_fraction,
            val_fraction=cfg.data.val_fraction,
            seed=cfg.data.split_seed,
            max_side=cfg.data.max_side,
        )
    for split in ("train", "val"):
        _require_split(cfg, index, manifest, split)
    select(index, [n for split in manifest["splits"].values() for n in split])  # every name known
    return index, manifest, data_record(index, manifest)


def _require_split(cfg: Config, index: DatasetIndex, manifest: dict, split: str) -> None:
    """Training needs images to learn from, and validation unless a manifest declines it.

    A manifest's empty val split is a choice (a final model trained on every labelled image); a
    seeded split left empty by a small `data.val_fraction` is a mistake and is refused.
    """
    if manifest["splits"][split]:
        return
    if split == "val" and cfg.data.manifest:
        if cfg.schedule.name == "plateau":
            raise GcnsegError(
                f"{cfg.data.manifest}: split val is empty, but schedule.name plateau decays on "
                "the validation loss: choose another schedule or give a val split"
            )
        return
    what = "training" if split == "train" else "validation (best.pt is picked by its score)"
    if cfg.data.manifest:
        raise GcnsegError(f"{cfg.data.manifest}: split {split} is empty; training needs {what}")
    fraction = "data.test_fraction" if split == "train" else "data.val_fraction"
    raise GcnsegError(
        f"{index.root}: the {split} split is empty ({len(index.samples)} pairs, "
        f"{fraction} {getattr(cfg.data, fraction.split('.')[1])}); training needs {what}: "
        f"add pairs or change {fraction}"
    )


def param_groups(model: nn.Module, cfg: Config) -> list[dict]:
    """Backbone at lr, decoder at lr × decoder_lr_mult; no weight decay on biases and norms."""
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if param.requires_grad:
            key = (name.startswith("backbone."), param.ndim <= 1)
            groups.setdefault(key, []).append(param)
    return [
        {
            "params": params,
            "lr": cfg.optim.lr * (1.0 if is_backbone else cfg.optim.decoder_lr_mult),
            "weight_decay": 0.0 if no_decay else cfg.optim.weight_decay,
        }
        for (is_backbone, no_decay), params in sorted(groups.items())
    ]


def build_optimizer(model: nn.Module, cfg: Config) -> torch.optim.Optimizer:
    groups = param_groups(model, cfg)
    if cfg.optim.name == "adamw":
        return torch.optim.AdamW(groups)
    return torch.optim.SGD(groups, momentum=cfg.optim.momentum)


def _restore(state: dict, run_dir: Path, model, ema, optimizer, schedule) -> tuple[Progress, dict]:
    """Load a resumed state; a mismatch (another model or optimizer) is one line, not a traceback.
    Other data was refused before anything was built (see `load_data`)."""
    where = run_dir / "last.pt"
    try:
        # With an EMA, "model" is the average and "training_model" the weights being trained.
        model.load_state_dict(state.get("training_model", state["model"]))
        if ema is not None:
            ema.module.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        progress = Progress(**state["progress"])
    except (RuntimeError, ValueError, KeyError, TypeError) as exc:
        raise GcnsegError(
            f"{where}: does not fit this model and optimizer ({str(exc).splitlines()[0]}); "
            "was a model, optimizer or schedule setting changed with --set?"
        ) from None
    torch.set_rng_state(state["torch_rng"])
    return progress, state["metrics"]


def _prepare_folder(
    run_dir: Path,
    cfg: Config,
    manifest: dict,
    record: dict | None,
    progress: Progress,
    overwrite: bool,
) -> None:
    """Rank 0: the run folder with its config, cleaned of temp files and torn lines; a new run's
    split and data record too (a resumed run keeps the ones it started with)."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        remove_temp_files(run_dir)
        if overwrite:
            clear_run_dir(run_dir)
        write_text(run_dir / "config.yaml", yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        if record is not None:
            save_manifest(run_dir / MANIFEST_FILE, manifest)
            write_json(run_dir / DATA_FILE, record)
        truncate_jsonl(run_dir / "metrics.jsonl", "epoch", progress.epoch)
        # step records are numbered from 1: the first `global_step` of them are done
        truncate_jsonl(run_dir / "steps.jsonl", "step", progress.global_step + 1)
    except OSError as exc:
        raise GcnsegError(
            f"{run_dir}: cannot write the run folder ({exc.strerror or exc})"
        ) from None


def setup_run(
    cfg: Config,
    run_dir: Path,
    state: dict | None,
    device: torch.device,
    info: DistInfo,
    *,
    overwrite: bool = False,
    bar: bool = True,
) -> Run:
    index, manifest, record = load_data(cfg, run_dir, state)
    classes = index.classes
    num_classes = len(classes.names)

    torch.manual_seed(cfg.train.seed)
    from_weights = state is not None or cfg.model.init is not None  # loaded over it below
    model = cfg.model.build(num_classes, backbone_weights="random" if from_weights else None)
    if state is None and cfg.model.init is not None:
        apply_init(model, cfg, classes, cfg.model.init)
    if cfg.train.sync_bn and info.enabled:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model.to(device)
    if cfg.train.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model, cfg)
    amp, why = resolve_amp(cfg.train.amp, device)
    if info.is_main:
        log.info("training precision: %s (%s)", "fp32" if amp == "none" else amp, why)

    train_set = SegmentationDataset(
        select(index, manifest["splits"]["train"]),
        crop_transform(cfg),
        seed=cfg.train.seed,
    )
    sampler = DistributedSampler(
        train_set,
        num_replicas=info.world_size,
        rank=info.rank,
        shuffle=True,
        seed=cfg.train.seed,
        drop_last=True,
    )
    steps_per_epoch = len(sampler) // cfg.data.batch_size
    if cfg.train.max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, cfg.train.max_steps_per_epoch)
    if steps_per_epoch == 0:
        raise GcnsegError(
            f"training split has {len(train_set)} images: "
            f"fewer than one batch of {cfg.data.batch_size} per process"
        )
    schedule = LRSchedule(optimizer, cfg.schedule, steps_per_epoch, cfg.train.epochs)
    progress, last_metrics = Progress(), {}
    ema = None if cfg.train.ema_decay is None else WeightEMA(model, cfg.train.ema_decay)
    if state:
        progress, last_metrics = _restore(state, run_dir, model, ema, optimizer, schedule)
    if info.is_main:
        _prepare_folder(run_dir, cfg, manifest, record, progress, overwrite)

    model_without_ddp = model
    if info.enabled:
        # static_graph: every step uses the same parameters, so DDP can skip its per-step search.
        model = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None, static_graph=True
        )
    workers = default_workers() if cfg.data.workers is None else cfg.data.workers
    val_samples = select(index, manifest["splits"]["val"])
    val_loader = None
    if val_samples:
        val_loader = eval_loader(
            val_samples,
            cfg.data.eval_size,
            batch_size=cfg.data.eval_batch_size,
            workers=workers,
            sampler=ShardSampler(len(val_samples), info),
            pin_memory=device.type == "cuda",
        )
    elif info.is_main:
        log.info("no validation split: every epoch's weights go to last.pt, no best.pt is picked")
    return Run(
        cfg=cfg,
        run_dir=run_dir,
        device=device,
        info=info,
        classes=classes,
        model=torch.compile(model) if cfg.train.compile else model,
        model_without_ddp=model_without_ddp,
        ema=ema,
        optimizer=optimizer,
        schedule=schedule,
        amp=amp,
        scaler=torch.amp.GradScaler("cuda", enabled=amp == "fp16"),
        loss_fn=_loss(cfg, train_set.samples, classes, info).to(device),
        train_set=train_set,
        sampler=sampler,
        val_loader=val_loader,
        steps_per_epoch=steps_per_epoch,
        workers=workers,
        progress=progress,
        last_metrics=last_metrics,
        started=time.monotonic() - progress.elapsed_s,
        bar=bar and info.is_main,
        tensorboard=_tensorboard(run_dir) if cfg.train.tensorboard and info.is_main else None,
    )


def _tensorboard(run_dir: Path):
    """A SummaryWriter into the run folder, or None (with a warning) without `tensorboard`."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        log.warning(
            "train.tensorboard is set but tensorboard is not installed: %s",
            install_hint("tensorboard"),
        )
        return None
    return SummaryWriter(str(run_dir / "tensorboard"))


def _loss(cfg: Config, samples: list, classes: ClassSet, info: DistInfo) -> SegmentationLoss:
    """The training loss, its class weights (if asked for) counted on the training labels."""
    weight = None
    if cfg.train.class_weights != "none":
        weight = class_weights(_labels(samples), len(classes.names), cfg.train.class_weights)
        if info.is_main:
            shown = ", ".join(
                f"{n} {w:.2f}" for n, w in zip(classes.names, weight.tolist(), strict=True)
            )
            log.info("class weights (%s): %s", cfg.train.class_weights, shown)
    return SegmentationLoss(
        cfg.train.dice_weight,
        label_smoothing=cfg.train.label_smoothing,
        weight=weight,
        ohem_threshold=cfg.train.ohem_threshold,
    )


def _labels(samples: list) -> Iterator[np.ndarray]:
    """Each readable training label (an unreadable pair is skipped here, as in training)."""
    for sample in samples:
        try:
            yield sample.load_label()
        except GcnsegError:
            continue
