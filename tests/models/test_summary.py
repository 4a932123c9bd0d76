"""The one FLOP counter, shared by `gcnseg models` and `gcnseg bench`."""

from __future__ import annotations

import pytest
from torch import nn

from gcnseg.models.summary import count_gflops


def test_grouped_conv_backward_costs_two_forwards() -> None:
    depthwise = nn.Conv2d(32, 32, 3, padding=1, groups=32)
    model = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), depthwise).eval()
    # multiply-adds per pixel: 3·32·9 dense + 32·9 depthwise; ×2 for FLOPs, 8×8 pixels
    forward = 2 * 64 * (3 * 32 * 9 + 32 * 9) / 1e9
    assert count_gflops(model, 8) == pytest.approx(forward)
    # the input needs no gradient: the first conv pays grad_weight only, the depthwise both
    backward = 2 * 64 * (3 * 32 * 9 + 2 * 32 * 9) / 1e9
    assert count_gflops(model, 8, train=True) == pytest.approx(forward + backward)
    assert not model.training, "counting must leave the model in the mode it came in"
