"""The training-only fast paths of the layers compute what the plain convolutions compute."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gcnseg.models.layers import DepthwiseConv2d, GCNBlock


def _grads(module: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    module.zero_grad()
    x = x.clone().requires_grad_()
    out = module(x)
    (out * torch.linspace(0.5, 1.5, out.numel()).view_as(out)).sum().backward()
    return (out.detach(), x.grad, *(p.grad for p in module.parameters()))


@pytest.mark.parametrize("bf16", [False, True])
@pytest.mark.parametrize("channels_last", [False, True])
def test_gcn_block_training_path_equals_the_plain_convolutions(
    channels_last: bool, bf16: bool
) -> None:
    """Also under bf16 autocast: on a CPU without native bf16, torch's own bf16 convolution
    refused a channels-last weight in its backward ("grad_weight must be contiguous")."""
    torch.manual_seed(0)
    block = GCNBlock(8, 3, 7)
    x = torch.randn(2, 8, 12, 17)  # H != W: a transposition mix-up cannot pass
    if channels_last:
        block, x = (
            block.to(memory_format=torch.channels_last),
            x.contiguous(memory_format=torch.channels_last),
        )
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        trained = _grads(block.train(), x)
        plain = _grads(block.eval(), x)  # eval: the plain 1×k convolutions
    for a, b in zip(trained, plain, strict=True):
        if bf16:  # bf16 rounds each element by up to ~1%: compare the whole tensors
            assert float((a.float() - b.float()).norm()) <= 0.03 * float(b.float().norm())
        else:
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_depthwise_conv_trains_in_fp32_only_where_bf16_is_slow() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 8, 16, 16)
    for kernel, stride, fp32 in [(5, 1, True), (3, 2, True), (3, 1, False)]:
        conv = DepthwiseConv2d(8, 8, kernel, stride, padding=kernel // 2, groups=8, bias=False)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            trained = conv.train()(x)
            inferred = conv.eval()(x)
        assert trained.dtype == (torch.float32 if fp32 else torch.bfloat16), (kernel, stride)
        assert inferred.dtype == torch.bfloat16  # inference keeps bf16: its forward is fast
        plain = nn.functional.conv2d(x, conv.weight, stride=stride, padding=kernel // 2, groups=8)
        tolerance = 1e-6 if fp32 else 5e-2
        torch.testing.assert_close(trained.float(), plain, rtol=tolerance, atol=tolerance)
