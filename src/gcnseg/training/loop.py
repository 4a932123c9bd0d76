"""`gcnseg train`: the epoch loop. Flat functions over one `Run`, no trainer class, no callbacks.

Resumable at any step: checkpoints hold model, optimizer, schedule, epoch, step-in-epoch and the
epoch's running sums, and the data order and augmentation are pure functions of (seed, epoch,
index), so a resumed run retraces the uninterrupted one exactly.
"""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from gcnseg.config import Config
from gcnseg.data.dataset import make_loader
from gcnseg.errors import GcnsegError
from gcnseg.evaluation.evaluate import Evaluation, evaluate
from gcnseg.evaluation.metrics import confusion_matrix, summarize
from gcnseg.inference.engines import TorchEngine
from gcnseg.inference.segmenter import Segmenter
from gcnseg.logs import progress_enabled
from gcnseg.runtime import autocast, prepare_images
from gcnseg.training.checkpoints import append_jsonl, check_run_dir, load_resume
from gcnseg.training.claim import claim_run_dir
from gcnseg.training.distributed import (
    SkipSampler,
    all_reduce_sum,
    barrier,
    broadcast_buffers,
    cleanup_distributed,
    from_main,
    init_distributed,
)
from gcnseg.training.run import (
    Progress,
    Run,
    check_distributed_settings,
    check_settings,
    make_run_dir,
    setup_run,
)

log = logging.getLogger(__name__)

# The divergence guard (see `check_loss`).
LOSS_EMA_DECAY = 0.9
DIVERGENCE_FACTOR = 1000.0
DIVERGENCE_FLOOR = 0.01  # the reference loss never counts as lower than this


class NonFiniteLoss(GcnsegError):
    pass


class Diverged(GcnsegError):
    pass


def train(
    cfg: Config | None,
    *,
    resume: Path | None = None,
    resume_overrides: list[str] | None = None,
    overwrite: bool = False,
    progress_bar: bool = True,
) -> Path:
    """Train per `cfg`, or continue the run in `resume` with its saved config.

    `resume_overrides` change settings of the resumed run, e.g. `train.threads=2` or
    `train.epochs=40` when there is more time; the data order stays that of the seed, and the
    data and split stay the run's own (other data is refused). A run folder that already holds
    a run is refused unless `overwrite` (which replaces it); one that another live run is using
    is always refused, and an automatic (timestamped) name that is taken gets a number.
    Returns the run folder.
    """
    if resume is not None:
        if overwrite:
            raise GcnsegError("--overwrite starts a new run and --resume continues one: pick one")
        run_dir = Path(resume)
        state, cfg = load_resume(run_dir, resume_overrides)
    else:
        state, run_dir = None, make_run_dir(cfg)
    resuming = state is not None
    device = check_settings(cfg, resuming=resuming)
    check_run_dir(run_dir, resuming=resuming, overwrite=overwrite)
    info = init_distributed(device)
    if device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    try:
        check_distributed_settings(cfg, device, info)
        numbered = not resuming and cfg.train.name is None
        # every rank learns the claimed folder before rank 0 writes into it
        with claim_run_dir(
            run_dir, info, numbered=numbered, resuming=resuming, overwrite=overwrite
        ) as run_dir:
            torch.set_num_threads(
                cfg.train.threads or max(1, (os.cpu_count() or 1) // info.world_size)
            )
            run = setup_run(
                cfg, run_dir, state, device, info, overwrite=overwrite, bar=progress_bar
            )
            fit(run)
            barrier()
    finally:
        cleanup_distributed()
    return run_dir


def fit(run: Run) -> None:
    """Epochs until `train.epochs` or the time budget; Ctrl-C and SIGTERM save last.pt."""
    progress = run.progress
    if progress.global_step == 0 and progress.epoch == 0:
        run.save("last.pt", run.last_metrics)  # a last good state exists even if epoch 1 diverges
    with run.interrupts.installed():
        try:
            plan_epochs(run)
            while progress.epoch < run.epochs:
                epoch_start = time.monotonic()
                train_stats = train_one_epoch(run, epoch_loader(run))
                result = validate(run) if run.val_loader is not None else None
                with run.interrupts.held():  # the epoch's record and checkpoints go together
                    end_epoch(run, train_stats, result, epoch_start)
        except KeyboardInterrupt:
            save_interrupted(run)
            raise
        except (NonFiniteLoss, Diverged):
            # The weights that produced the loss may already be broken: keep the last.pt of the
            # last finished epoch (or of the start) as the last good state; best.pt is untouched.
            if run.info.is_main:
                log.warning(
                    "last good state: %s (from epoch %d)", run.run_dir / "last.pt", progress.epoch
                )
            raise
    budget = run.cfg.train.time_budget_min
    if budget and progress.epoch < run.cfg.train.epochs and run.info.is_main:
        log.info(
            "time budget of %.1f min reached after epoch %d of %d (to train on: --resume with a "
            "larger --set train.time_budget_min)",
            budget,
            progress.epoch,
            run.cfg.train.epochs,
        )


def epoch_loader(run: Run):
    """This epoch's batches, from the step where the epoch stands (mid-epoch after a resume)."""
    run.sampler.set_epoch(run.progress.epoch)
    run.train_set.set_epoch(run.progress.epoch)
    batch_size = run.cfg.data.batch_size
    return make_loader(
        run.train_set,
        batch_size=batch_size,
        shuffle=False,
        workers=run.workers,
        sampler=SkipSampler(run.sampler, run.progress.step_in_epoch * batch_size),
        drop_last=True,
        pin_memory=run.device.type == "cuda",
    )


def train_one_epoch(run: Run, loader) -> dict:
    """The remaining steps of the current epoch; returns the whole epoch's train metrics."""
    progress = run.progress
    run.model.train()
    pbar = tqdm(
        total=run.steps_per_epoch - progress.step_in_epoch,
        desc=f"epoch {progress.epoch + 1}/{run.epochs}",
        disable=not (run.bar and progress_enabled()),
    )
    tic = mark = time.monotonic()
    images = 0
    try:
        for batch in loader:
            if progress.step_in_epoch >= run.steps_per_epoch:
                break
            loss_value = _train_step(run, batch)
            now = time.monotonic()
            progress.epoch_train_s += now - mark  # data loading included, as the rate's divisor
            mark = now
            images += len(batch["label"])
            rate = images / max(now - tic, 1e-9)
            pbar.set_postfix(
                loss=f"{loss_value:.4f}", lr=f"{run.schedule.lr:.2e}", img_s=f"{rate:.2f}"
            )
            pbar.update()
    finally:
        pbar.close()
        if run.info.is_main:  # steps done before an interruption are logged too
            append_jsonl(run.run_dir / "steps.jsonl", run.step_records)
        run.step_records = []
    return epoch_train_stats(run)


def _train_step(run: Run, batch) -> float:
    """One optimizer step, not cut by Ctrl-C; returns the step's loss (the mean over ranks)."""
    progress, cfg = run.progress, run.cfg
    with run.interrupts.held():
        images = prepare_images(batch["image"], run.device, cfg.train.channels_last)
        labels = batch["label"].to(run.device, non_blocking=True).long()
        with autocast(run.device, run.amp):
            logits = run.model(images)
        loss = run.loss_fn(logits.float(), labels)
        with torch.no_grad():
            counts = confusion_matrix(logits.argmax(1), labels, run.num_classes)
        # One all-reduce carries the loss and the batch's confusion counts: every rank sees the
        # mean loss (what DDP's averaged gradient descends) and the global counts, so all ranks
        # stop together and every rank's running sums are the job's.
        local = torch.cat([loss.detach().double().reshape(1), counts.double().flatten()])
        reduced = all_reduce_sum(local.tolist(), run.device)
        loss_value = reduced[0] / run.info.world_size
        check_loss(progress, loss_value)
        run.optimizer.zero_grad(set_to_none=True)
        run.scaler.scale(loss).backward()
        if cfg.optim.grad_clip:
            run.scaler.unscale_(run.optimizer)
            nn.utils.clip_grad_norm_(run.model.parameters(), cfg.optim.grad_clip)
        run.scaler.step(run.optimizer)
        run.scaler.update()
        run.schedule.step()
        progress.step_in_epoch += 1
        progress.global_step += 1
        if run.ema is not None:
            run.ema.update(run.model_without_ddp, progress.global_step)
        progress.epoch_loss_sum += loss_value
        confusion = progress.epoch_confusion or [0] * run.num_classes**2
        progress.epoch_confusion = [a + int(b) for a, b in zip(confusion, reduced[1:], strict=True)]
        run.step_records.append(
            {"step": progress.global_step, "epoch": progress.epoch, "loss": loss_value}
        )
    return loss_value


def check_loss(progress: Progress, loss_value: float) -> None:
    """Stop on a non-finite loss, or on one that has run away from its best.

    The guard follows an exponential moving average of the step loss (decay 0.9) and its lowest
    value so far, and stops when the average exceeds 1000 × that lowest value (never counted
    below 0.01). Normal training never comes near: batch-to-batch noise is a few times the mean,
    and one outlier batch moves the average by a tenth of its own loss, so a single batch would
    need a loss 10,000 × the best average to trip it. A run that diverges (loss 1e3 .. 1e29 with a
    too-high lr) trips it within a few steps, before it is ever saved as best.pt.
    """
    where = f"epoch {progress.epoch + 1}, step {progress.step_in_epoch + 1}"
    if not math.isfinite(loss_value):
        raise NonFiniteLoss(
            f"loss became {loss_value} at {where}: "
            "lower optim.lr, keep optim.grad_clip, or try optim.name=adamw"
        )
    ema = progress.loss_ema
    ema = loss_value if ema is None else LOSS_EMA_DECAY * ema + (1 - LOSS_EMA_DECAY) * loss_value
    lowest = ema if progress.loss_ema_min is None else min(progress.loss_ema_min, ema)
    progress.loss_ema, progress.loss_ema_min = ema, lowest
    if ema > DIVERGENCE_FACTOR * max(lowest, DIVERGENCE_FLOOR):
        raise Diverged(
            f"training diverged at {where}: the smoothed loss is {ema:.3g}, over "
            f"{DIVERGENCE_FACTOR:.0f}× its lowest ({lowest:.3g}); lower optim.lr, keep "
            "optim.grad_clip, or try optim.name=adamw"
        )


def epoch_train_stats(run: Run) -> dict:
    """Train metrics of the whole epoch, from the running sums (they survive a resume)."""
    progress = run.progress
    n = run.num_classes
    confusion = torch.tensor(progress.epoch_confusion or [0] * n * n).view(n, n)
    summary = summarize(confusion)
    images = progress.step_in_epoch * run.cfg.data.batch_size * run.info.world_size
    return {
        "train_loss": progress.epoch_loss_sum / max(progress.step_in_epoch, 1),
        "train_pixel_accuracy": summary["pixel_accuracy"],
        "train_miou": summary["miou"],
        "train_images_per_s": images / max(progress.epoch_train_s, 1e-9),
    }


def validate(run: Run) -> Evaluation:
    # Without SyncBN each rank's BatchNorm statistics saw only its own batches: evaluate rank 0's
    # (the ones last.pt saves) on every rank, so metrics.jsonl describes last.pt.
    broadcast_buffers(run.evaluated_model)
    cfg = run.cfg
    segmenter = Segmenter(
        TorchEngine(run.evaluated_model, run.device, run.amp, cfg.train.channels_last),
        run.classes,
        cfg.data.eval_size,
        cfg.model.name,
        flip=cfg.train.eval_flip,
    )
    result = evaluate(segmenter, run.val_loader)
    if result.skipped and run.info.is_main:
        names = ", ".join(item.name for item in result.skipped)
        log.warning(
            "%d validation images could not be read and are left out: %s",
            len(result.skipped),
            names,
        )
    return result


def end_epoch(run: Run, train_stats: dict, result: Evaluation | None, epoch_start: float) -> None:
    """The epoch's record, best.pt (when it is the best) then last.pt, the plot and the log line.

    best.pt is written before last.pt: if the disk fills in between, last.pt still points at the
    previous epoch, so `--resume` redoes this epoch and writes best.pt again. Without validation
    (`result` None) there is no best: last.pt is the model.
    """
    cfg, progress = run.cfg, run.progress
    val, is_best = {}, False
    if result is not None:
        run.schedule.epoch_end(result.loss)
        val = {
            "val_loss": result.loss,
            **{f"val_{k}": v for k, v in result.metrics.items() if k != "confusion_matrix"},
        }
        score = -result.loss if cfg.train.monitor == "loss" else result.metrics[cfg.train.monitor]
        is_best = score > progress.best_score
        if is_best:
            progress.best_score = score
    progress.elapsed_s = time.monotonic() - run.started
    record = {
        "epoch": progress.epoch,
        **train_stats,
        **val,
        "lr": run.schedule.lr,
        "elapsed_s": progress.elapsed_s,
    }
    run.last_metrics = record
    progress.epoch += 1
    progress.step_in_epoch = 0
    progress.epoch_loss_sum, progress.epoch_confusion, progress.epoch_train_s = 0.0, None, 0.0
    plan_epochs(run)  # before last.pt, which carries the plan to a resume
    if not run.info.is_main:
        return
    append_jsonl(run.run_dir / "metrics.jsonl", [record])
    if is_best:
        run.save("best.pt", record)
    run.save("last.pt", record)
    _plot(run.run_dir)
    if run.tensorboard is not None:
        for key, value in record.items():
            if isinstance(value, float) and key != "epoch":
                run.tensorboard.add_scalar(key, value, progress.epoch)
        run.tensorboard.flush()
    scores = "  no validation"
    if result is not None:
        scores = "  val mIoU {miou:.4f}  val acc {pixel_accuracy:.4f}".format(**result.metrics)
    log.info(
        "epoch %d/%d  loss %.4f%s  (%.0fs)",
        progress.epoch,
        run.epochs,
        train_stats["train_loss"],
        scores,
        time.monotonic() - epoch_start,
    )


def plan_epochs(run: Run) -> None:
    """Fit the run to `train.time_budget_min`: end it, schedule included, inside the budget.

    Stopping where the budget runs out would leave a cosine or poly schedule at a high learning
    rate, the weights unsettled. Instead, at the start and after each epoch, the epochs that fit
    the budget at the mean epoch time so far (never more than `train.epochs`) become the run's
    length and the schedule's, so its rate reaches the floor in time; the plan follows a machine
    that runs slower or faster than expected. Rank 0's plan is every rank's, so all stop together.
    """
    budget, progress = run.cfg.train.time_budget_min, run.progress
    before = run.epochs
    if not budget:
        progress.planned_epochs = None
    elif progress.epoch > 0:
        planned = epochs_that_fit(budget, progress.epoch, progress.elapsed_s, run.cfg.train.epochs)
        progress.planned_epochs = from_main(planned)
    run.schedule.set_epochs(run.epochs)
    if budget and run.epochs != before and run.info.is_main:
        log.info(
            "time budget of %.1f min at %.1f min an epoch: the run now ends after epoch %d of %d",
            budget,
            progress.elapsed_s / 60 / max(progress.epoch, 1),
            run.epochs,
            run.cfg.train.epochs,
        )


def epochs_that_fit(budget_min: float, done: int, elapsed_s: float, most: int) -> int:
    """How many epochs fit `budget_min` at the mean epoch time of the `done` ones: at most `most`,
    at least `done` (an overrun budget ends the run, it does not undo epochs)."""
    fits = int(budget_min * 60 * done / max(elapsed_s, 1e-9))
    return max(done, min(fits, most))


def save_interrupted(run: Run) -> None:
    if not run.info.is_main:
        return
    last = run.run_dir / "last.pt"
    if run.interrupts.torn:
        log.warning("stopped in the middle of a step: %s keeps the state saved before it", last)
        return
    run.progress.elapsed_s = time.monotonic() - run.started
    run.save("last.pt", run.last_metrics)
    log.warning("interrupted; state saved to %s (resume with --resume %s)", last, run.run_dir)


def _plot(run_dir: Path) -> None:
    from gcnseg.viz.plots import plot_learning_curve

    try:
        plot_learning_curve(run_dir)
    except Exception as exc:  # a plot must never kill a training run
        log.warning("learning curve not drawn: %s", exc)
