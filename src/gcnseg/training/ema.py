"""An exponential moving average of the weights: what is validated, saved and shipped.

On a few hundred images the weights of the last steps wander around a good solution; their
running average generalises better than any one of them (Polyak averaging; the "model EMA" of
timm and MMSegmentation). BatchNorm statistics are averaged too, counters are copied.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class WeightEMA:
    def __init__(self, model: nn.Module, decay: float) -> None:
        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay = decay

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """Move the average towards `model` after optimizer step `step` (counted from 1).

        The decay ramps up as (1 + step) / (10 + step) until it reaches `decay`, so the average
        does not hold on to the random decoder of the first steps.
        """
        decay = min(self.decay, (1 + step) / (10 + step))
        averaged, current = [], []
        for ema_value, value in zip(
            self.module.state_dict().values(), model.state_dict().values(), strict=True
        ):
            if ema_value.is_floating_point():
                averaged.append(ema_value)
                current.append(value.detach())
            else:
                ema_value.copy_(value)
        torch._foreach_lerp_(averaged, current, 1 - decay)
