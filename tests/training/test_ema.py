"""The weight EMA's arithmetic (a training run with it: tests/training/test_train.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gcnseg.training.ema import WeightEMA


def test_ema_moves_towards_the_weights_and_copies_counters() -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2))
    ema = WeightEMA(model, decay=0.9)
    before = {k: v.clone() for k, v in ema.module.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    model[1].num_batches_tracked += 7
    ema.update(model, step=1000)  # past the ramp: the decay is 0.9
    state = ema.module.state_dict()
    weight = "0.weight"
    torch.testing.assert_close(state[weight], before[weight] + 0.1)
    assert int(state["1.num_batches_tracked"]) == 7
    assert all(not p.requires_grad for p in ema.module.parameters())


def test_ema_decay_ramps_up_from_the_first_steps() -> None:
    model = nn.Linear(1, 1, bias=False)
    ema = WeightEMA(model, decay=0.999)
    with torch.no_grad():
        model.weight.fill_(ema.module.weight.item() + 1.0)
    ema.update(model, step=1)  # decay (1 + 1) / (10 + 1): the average moves 9/11 of the way
    assert ema.module.weight.item() == pytest.approx(model.weight.item() - 2 / 11, abs=1e-6)
