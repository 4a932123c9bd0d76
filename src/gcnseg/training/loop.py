"""`gcnseg train`: the training loop. Flat functions, no trainer class, no callbacks.

Resumable at any step: checkpoints hold model, optimizer, schedule, epoch and step-in-epoch, and the
data order and augmentation are pure functions of (seed, epoch, index), so a resumed run retraces
the uninterrupted one exactly.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler
from tqdm import tqdm

from gcnseg.checkpoint import load_checkpoint, save_checkpoint
from gcnseg.classes import ClassSet
from gcnseg.config import Config, apply_overrides, config_from_dict
from gcnseg.data.dataset import SegmentationDataset, default_workers, make_loader
from gcnseg.data.layouts import index_dataset
from gcnseg.data.samples import DatasetIndex
from gcnseg.data.splits import load_manifest, make_split, save_manifest, select
from gcnseg.data.transforms import eval_transform, train_transform
from gcnseg.errors import GcnsegError
from gcnseg.evaluation.evaluate import evaluate
from gcnseg.evaluation.metrics import SegmentationMetrics
from gcnseg.io.atomic import write_text
from gcnseg.models import create_model
from gcnseg.models.registry import model_entry
from gcnseg.runtime import autocast, prepare_images, resolve_device
from gcnseg.training.distributed import (
    DistInfo,
    ShardSampler,
    SkipSampler,
    all_reduce_mean,
    all_reduce_sum,
    barrier,
    broadcast_buffers,
    cleanup_distributed,
    init_distributed,
)
from gcnseg.training.losses import SegmentationLoss
from gcnseg.training.schedule import LRSchedule

log = logging.getLogger(__name__)


class NonFiniteLoss(GcnsegError):
    pass


@dataclass
class Progress:
    """Where training stands; saved in every checkpoint."""

    epoch: int = 0  # the epoch being trained (0-based)
    step_in_epoch: int = 0  # optimizer steps already done in `epoch`
    global_step: int = 0
    best_score: float = -math.inf
    elapsed_s: float = 0.0


def load_data(cfg: Config) -> tuple[DatasetIndex, dict]:
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
    return index, manifest


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


def _truncate_jsonl(path: Path, key: str, below: int) -> None:
    """Keep only records with record[key] < below (a resumed run rewrites what came after)."""
    if path.is_file():
        lines = [ln for ln in path.read_text().splitlines() if ln and json.loads(ln)[key] < below]
        write_text(path, "".join(ln + "\n" for ln in lines))


def _append_jsonl(path: Path, records: list[dict]) -> None:
    with path.open("a") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in records)


def _checkpoint_payload(
    model: nn.Module,
    optimizer,
    schedule: LRSchedule,
    cfg: Config,
    classes: ClassSet,
    progress: Progress,
    metrics: dict,
) -> dict:
    return {
        "model": model.state_dict(),
        "config": cfg.to_dict(),
        "classes": classes.to_dict(),
        "progress": vars(progress).copy(),
        "metrics": metrics,
        "optimizer": optimizer.state_dict(),
        "schedule": schedule.state_dict(),
        "torch_rng": torch.get_rng_state(),
    }


def make_run_dir(cfg: Config) -> Path:
    name = cfg.train.name or f"{cfg.model.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    return Path(cfg.train.output) / name


def train(
    cfg: Config | None,
    *,
    resume: Path | None = None,
    resume_overrides: list[str] | None = None,
    progress_bar: bool = True,
) -> Path:
    """Train per `cfg`, or continue the run in `resume` with its saved config.

    `resume_overrides` change settings of the resumed run, e.g. `train.threads=2` or
    `train.epochs=40` when there is more time; the data order stays that of the seed.
    """
    if resume is not None:
        state = load_checkpoint(Path(resume) / "last.pt")
        cfg = config_from_dict(apply_overrides(state["config"], resume_overrides or []))
        run_dir = Path(resume)
    else:
        state, run_dir = None, make_run_dir(cfg)
    model_entry(cfg.model.name)  # a mistyped model fails now, before the dataset is read
    device = resolve_device(cfg.train.device)
    info = init_distributed(device)
    if device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    torch.set_num_threads(cfg.train.threads or max(1, (os.cpu_count() or 1) // info.world_size))
    try:
        return _train(cfg, run_dir, state, device, info, progress_bar and info.is_main)
    finally:
        cleanup_distributed()


def _train(
    cfg: Config, run_dir: Path, state: dict | None, device: torch.device, info: DistInfo, bar: bool
) -> Path:
    index, manifest = load_data(cfg)
    classes = index.classes
    num_classes = len(classes.names)
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_text(run_dir / "config.yaml", yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        save_manifest(run_dir / "manifest.json", manifest)

    torch.manual_seed(cfg.train.seed)
    model = create_model(
        cfg.model.name,
        num_classes=num_classes,
        backbone_weights="random" if state else cfg.model.backbone_weights,
        kernel_size=cfg.model.kernel_size,
        decoder_width=cfg.model.decoder_width,
        freeze_bn=cfg.model.freeze_bn,
        freeze_stem=cfg.model.freeze_stem,
    )
    if cfg.train.sync_bn and info.enabled:
        if device.type != "cuda":  # DDP refuses SyncBatchNorm on CPU modules (a ValueError)
            raise GcnsegError(
                "train.sync_bn needs CUDA GPUs (PyTorch's SyncBatchNorm does not run on the CPU); "
                "on the CPU, BatchNorm statistics stay per process"
            )
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model.to(device)
    if cfg.train.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model, cfg)

    train_set = SegmentationDataset(
        select(index, manifest["splits"]["train"]),
        train_transform(
            cfg.data.crop_size, (cfg.data.scale_min, cfg.data.scale_max), cfg.data.color_jitter
        ),
        seed=cfg.train.seed,
    )
    val_set = SegmentationDataset(
        select(index, manifest["splits"]["val"]),
        eval_transform(cfg.data.eval_size),
        keep_original=True,
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
            f"training split has {len(train_set)} images: fewer than one batch of {cfg.data.batch_size} per process"
        )
    schedule = LRSchedule(optimizer, cfg.schedule, steps_per_epoch, cfg.train.epochs)
    progress = Progress()
    if state:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        progress = Progress(**state["progress"])
        torch.set_rng_state(state["torch_rng"])
        if info.is_main:
            _truncate_jsonl(run_dir / "metrics.jsonl", "epoch", progress.epoch)
            # step records are numbered from 1: the first `global_step` of them are done
            _truncate_jsonl(run_dir / "steps.jsonl", "step", progress.global_step + 1)
    model_without_ddp = model
    if info.enabled:
        # static_graph: every step uses the same parameters, so DDP can skip its per-step search.
        model = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None, static_graph=True
        )
    forward = torch.compile(model) if cfg.train.compile else model
    loss_fn = SegmentationLoss(cfg.train.dice_weight)
    scaler = torch.amp.GradScaler("cuda", enabled=cfg.train.amp == "fp16" and device.type == "cuda")
    if cfg.train.amp == "fp16" and device.type != "cuda":
        raise GcnsegError("--amp fp16 needs a CUDA GPU; use --amp bf16 on the CPU")
    workers = default_workers() if cfg.data.workers is None else cfg.data.workers
    val_loader = make_loader(
        val_set,
        batch_size=cfg.data.eval_batch_size,
        shuffle=False,
        workers=workers,
        sampler=ShardSampler(len(val_set), info),
        pin_memory=device.type == "cuda",
    )

    def save(name: str, metrics: dict) -> None:
        if info.is_main:
            payload = _checkpoint_payload(
                model_without_ddp, optimizer, schedule, cfg, classes, progress, metrics
            )
            save_checkpoint(run_dir / name, payload)

    tensorboard = _tensorboard(run_dir) if cfg.train.tensorboard and info.is_main else None
    started = time.monotonic() - progress.elapsed_s
    last_metrics: dict = state["metrics"] if state else {}
    if state is None:
        save("last.pt", last_metrics)  # a last good state exists even if epoch 1 diverges
    try:
        while progress.epoch < cfg.train.epochs:
            epoch_start = time.monotonic()
            sampler.set_epoch(progress.epoch)
            train_set.set_epoch(progress.epoch)
            loader = make_loader(
                train_set,
                batch_size=cfg.data.batch_size,
                shuffle=False,
                workers=workers,
                sampler=SkipSampler(sampler, progress.step_in_epoch * cfg.data.batch_size),
                drop_last=True,
                pin_memory=device.type == "cuda",
            )
            train_stats = train_one_epoch(
                forward,
                loader,
                loss_fn,
                optimizer,
                schedule,
                scaler,
                cfg,
                device,
                progress,
                steps_per_epoch,
                num_classes,
                run_dir if info.is_main else None,
                bar,
            )
            # Without SyncBN each rank's BatchNorm statistics saw only its own batches: evaluate
            # rank 0's (the ones last.pt saves) on every rank, so metrics.jsonl describes last.pt.
            broadcast_buffers(model_without_ddp)
            model.eval()
            result = evaluate(
                model_without_ddp,
                val_loader,
                num_classes=num_classes,
                device=device,
                amp=cfg.train.amp,
                flip=cfg.train.eval_flip,
                channels_last=cfg.train.channels_last,
            )
            schedule.epoch_end(result.loss)
            progress.elapsed_s = time.monotonic() - started
            record = {
                "epoch": progress.epoch,
                **train_stats,
                "val_loss": result.loss,
                **{f"val_{k}": v for k, v in result.metrics.items() if k != "confusion_matrix"},
                "lr": schedule.lr,
                "elapsed_s": progress.elapsed_s,
            }
            last_metrics = record
            score = (
                -result.loss if cfg.train.monitor == "loss" else result.metrics[cfg.train.monitor]
            )
            progress.epoch += 1
            progress.step_in_epoch = 0
            is_best = score > progress.best_score
            if is_best:
                progress.best_score = score
            if info.is_main:
                _append_jsonl(run_dir / "metrics.jsonl", [record])
                save("last.pt", record)
                if is_best:
                    save("best.pt", record)
                _plot(run_dir)
                if tensorboard is not None:
                    for key, value in record.items():
                        if isinstance(value, float) and key != "epoch":
                            tensorboard.add_scalar(key, value, progress.epoch)
                    tensorboard.flush()
                log.info(
                    "epoch %d/%d  loss %.4f  val mIoU %.4f  val acc %.4f  (%.0fs)",
                    progress.epoch,
                    cfg.train.epochs,
                    train_stats["train_loss"],
                    result.metrics["miou"],
                    result.metrics["pixel_accuracy"],
                    time.monotonic() - epoch_start,
                )
            budget = cfg.train.time_budget_min
            if budget and progress.elapsed_s + (time.monotonic() - epoch_start) > budget * 60:
                if info.is_main:
                    log.info(
                        "time budget of %.1f min reached after epoch %d", budget, progress.epoch
                    )
                break
    except KeyboardInterrupt:
        progress.elapsed_s = time.monotonic() - started
        save("last.pt", last_metrics)
        if info.is_main:
            log.warning(
                "interrupted; state saved to %s (resume with --resume %s)",
                run_dir / "last.pt",
                run_dir,
            )
        raise
    except NonFiniteLoss:
        # The weights that produced a non-finite loss may already be broken: keep the last.pt of
        # the last finished epoch (or of the start) as the last good state.
        if info.is_main:
            log.warning("last good state: %s (from epoch %d)", run_dir / "last.pt", progress.epoch)
        raise
    barrier()
    return run_dir


def _tensorboard(run_dir: Path):
    """A SummaryWriter into the run folder, or None (with a warning) without `tensorboard`."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        log.warning(
            "train.tensorboard is set but tensorboard is not installed: pip install tensorboard"
        )
        return None
    return SummaryWriter(str(run_dir / "tensorboard"))


def _plot(run_dir: Path) -> None:
    from gcnseg.viz.plots import plot_learning_curve

    try:
        plot_learning_curve(run_dir)
    except Exception as exc:  # a plot must never kill a training run
        log.warning("learning curve not drawn: %s", exc)


def train_one_epoch(
    model: nn.Module,
    loader,
    loss_fn: SegmentationLoss,
    optimizer: torch.optim.Optimizer,
    schedule: LRSchedule,
    scaler: torch.amp.GradScaler,
    cfg: Config,
    device: torch.device,
    progress: Progress,
    steps_per_epoch: int,
    num_classes: int,
    log_dir: Path | None,
    bar: bool,
) -> dict:
    model.train()
    metrics = SegmentationMetrics(num_classes, device)
    loss_sum, images_seen, step_records = 0.0, 0, []
    remaining = steps_per_epoch - progress.step_in_epoch
    pbar = tqdm(
        total=remaining, desc=f"epoch {progress.epoch + 1}/{cfg.train.epochs}", disable=not bar
    )
    tic = time.monotonic()
    try:
        for batch in loader:
            if progress.step_in_epoch >= steps_per_epoch:
                break
            loss_value, logits, labels = _train_step(
                model, batch, loss_fn, optimizer, scaler, cfg, device, progress
            )
            schedule.step()
            progress.step_in_epoch += 1
            progress.global_step += 1
            with torch.no_grad():
                metrics.update_batch(logits.argmax(1), labels)
            loss_sum += loss_value * len(labels)
            images_seen += len(labels)
            step_records.append(
                {"step": progress.global_step, "epoch": progress.epoch, "loss": loss_value}
            )
            rate = images_seen / max(time.monotonic() - tic, 1e-9)
            pbar.set_postfix(loss=f"{loss_value:.4f}", lr=f"{schedule.lr:.2e}", img_s=f"{rate:.2f}")
            pbar.update()
    finally:
        pbar.close()
        if log_dir is not None:  # steps done before an interruption are logged too
            _append_jsonl(log_dir / "steps.jsonl", step_records)
    loss_sum, images_seen = all_reduce_sum([loss_sum, images_seen], device)
    summary = metrics.compute()
    return {
        "train_loss": loss_sum / max(images_seen, 1),
        "train_pixel_accuracy": summary["pixel_accuracy"],
        "train_miou": summary["miou"],
        "train_images_per_s": images_seen / max(time.monotonic() - tic, 1e-9),
    }


def _train_step(model, batch, loss_fn, optimizer, scaler, cfg: Config, device, progress: Progress):
    images = prepare_images(batch["image"], device, cfg.train.channels_last)
    labels = batch["label"].to(device, non_blocking=True).long()
    with autocast(device, cfg.train.amp):
        logits = model(images)
    loss = loss_fn(logits.float(), labels)
    # The step's loss is the mean over the ranks (what DDP's averaged gradient descends), and
    # every rank sees the same value, so a non-finite loss stops all of them together.
    loss_value = all_reduce_mean(float(loss.detach()), device)
    if not math.isfinite(loss_value):
        raise NonFiniteLoss(
            f"loss became {loss_value} at epoch {progress.epoch + 1}, step {progress.step_in_epoch + 1}: "
            "lower optim.lr, keep optim.grad_clip, or try optim.name=adamw"
        )
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    if cfg.optim.grad_clip:
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
    scaler.step(optimizer)
    scaler.update()
    return loss_value, logits.detach(), labels
