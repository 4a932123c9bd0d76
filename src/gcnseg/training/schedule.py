"""Learning-rate schedules with linear warm-up: the seed's plateau rule, poly and cosine.

One small class instead of chained torch schedulers, because warm-up (per step) and plateau decay
(per epoch, on a metric) must compose, and resume must restore both.
"""

from __future__ import annotations

import math

from torch.optim import Optimizer

from gcnseg.config import ScheduleConfig


class LRSchedule:
    def __init__(
        self, optimizer: Optimizer, cfg: ScheduleConfig, steps_per_epoch: int, epochs: int
    ):
        self.optimizer = optimizer
        self.cfg = cfg
        self.steps_per_epoch = steps_per_epoch
        self.total_steps = max(1, steps_per_epoch * epochs)
        self.warmup_steps = int(cfg.warmup_epochs * steps_per_epoch)
        self.base_lrs = [group["lr"] for group in optimizer.param_groups]
        self.step_count = 0
        self.plateau_scale = 1.0
        self.best = math.inf
        self.bad_epochs = 0
        self._apply()

    def factor(self) -> float:
        step = self.step_count
        warmup = min(1.0, (step + 1) / self.warmup_steps) if self.warmup_steps else 1.0
        progress = min(1.0, step / self.total_steps)
        if self.cfg.name == "poly":
            decay = (1 - progress) ** self.cfg.power
        elif self.cfg.name == "cosine":
            decay = 0.5 * (1 + math.cos(math.pi * progress))
        elif self.cfg.name == "plateau":
            decay = self.plateau_scale
        else:
            decay = 1.0
        return warmup * decay

    def _apply(self) -> None:
        factor = self.factor()
        for group, base in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = max(base * factor, min(self.cfg.min_lr, base)) if factor < 1 else base

    def set_epochs(self, epochs: int) -> None:
        """Make the schedule end after `epochs` (a time budget shortened or lengthened the run)."""
        self.total_steps = max(1, self.steps_per_epoch * epochs)
        self._apply()

    def step(self) -> None:
        """Call after every optimizer step."""
        self.step_count += 1
        self._apply()

    def epoch_end(self, val_loss: float) -> None:
        """Plateau rule: after `patience` epochs without a relative improvement, scale by `factor`."""
        if self.cfg.name != "plateau":
            return
        if val_loss < self.best * (1 - self.cfg.threshold):
            self.best = val_loss
            self.bad_epochs = 0
        else:
            self.bad_epochs += 1
            if self.bad_epochs > self.cfg.patience:
                self.plateau_scale *= self.cfg.factor
                self.bad_epochs = 0
        self._apply()

    def state_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("step_count", "plateau_scale", "best", "bad_epochs")}

    def load_state_dict(self, state: dict) -> None:
        for key, value in state.items():
            setattr(self, key, value)
        self._apply()

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]
