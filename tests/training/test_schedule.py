from __future__ import annotations

import math

import pytest
import torch

from gcnseg.config import ScheduleConfig
from gcnseg.training.schedule import LRSchedule


def _schedule(**kw) -> tuple[torch.optim.Optimizer, LRSchedule]:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    return opt, LRSchedule(opt, ScheduleConfig(**kw), steps_per_epoch=10, epochs=5)


def test_linear_warmup_then_poly() -> None:
    _, s = _schedule(name="poly", warmup_epochs=1, power=1.0)
    assert s.lr == pytest.approx(0.1 * 1 / 10)
    for _ in range(9):
        s.step()
    assert s.lr == pytest.approx(0.1 * (1 - 9 / 50))
    for _ in range(41):
        s.step()
    assert s.lr == pytest.approx(1e-6)  # floor


def test_cosine_halfway() -> None:
    _, s = _schedule(name="cosine", warmup_epochs=0)
    for _ in range(25):
        s.step()
    assert s.lr == pytest.approx(0.05)


def test_plateau_decays_after_patience_and_resumes() -> None:
    _, s = _schedule(name="plateau", warmup_epochs=0, patience=2, factor=0.1)
    for loss in [1.0, 0.5, 0.49999, 0.5, 0.6]:  # 0.49999 is within the 1e-4 relative threshold
        s.epoch_end(loss)
    assert s.lr == pytest.approx(0.01)
    opt2, s2 = _schedule(name="plateau", warmup_epochs=0, patience=2, factor=0.1)
    s2.load_state_dict(s.state_dict())
    assert opt2.param_groups[0]["lr"] == pytest.approx(0.01)


def test_set_epochs_moves_the_end_of_a_cosine_schedule() -> None:
    _, s = _schedule(name="cosine", warmup_epochs=0)
    for _ in range(25):
        s.step()
    s.set_epochs(10)  # a time budget lengthened the run: 25 of 100 steps done
    assert s.lr == pytest.approx(0.05 * (1 + math.cos(math.pi / 4)))
    s.set_epochs(2)  # and shortened it past where it stands: the floor
    assert s.lr == pytest.approx(1e-6)
