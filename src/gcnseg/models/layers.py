"""The two building blocks of "Large Kernel Matters" (Peng et al., 2017): GCN and Boundary Refinement."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _conv_rows_as_columns(x: Tensor, conv: nn.Conv2d) -> Tensor:
    """`conv` (a 1×k kernel) applied as a k×1 kernel to the H/W-transposed, channels-last input.

    Same result; used when training on the CPU only, because oneDNN's weight gradient for 1×k
    kernels is several times slower than for k×1 ones (benchmarks/README.md). Inference keeps the
    plain convolution: its forward costs the same. The input alone decides the channels-last
    kernel; the weight stays in the default format, which torch's own bf16 convolution (used
    where the CPU has no native bf16) needs for its weight gradient.
    """
    weight = conv.weight.transpose(2, 3).contiguous()
    padding = (conv.padding[1], conv.padding[0])
    x = x.transpose(2, 3).contiguous(memory_format=torch.channels_last)
    return F.conv2d(x, weight, conv.bias, padding=padding).transpose(2, 3)


class DepthwiseConv2d(nn.Conv2d):
    """A depthwise convolution that trains in fp32 where oneDNN's bf16 backward is slow.

    Under CPU bf16 autocast, the backward of a depthwise convolution with a kernel above 3×3 or a
    stride above 1 is several times slower in bf16 than in fp32 (input gradient of stride 2,
    weight gradient of 5×5), while 3×3 stride-1 ones are faster in bf16. Training runs those in
    fp32 (benchmarks/README.md); inference and export are a plain convolution.
    """

    def forward(self, x: Tensor) -> Tensor:
        slow_in_bf16 = self.kernel_size[0] > 3 or self.stride[0] > 1
        if (
            slow_in_bf16
            and self.training
            and x.device.type == "cpu"
            and torch.is_autocast_enabled("cpu")
            and torch.is_grad_enabled()
        ):
            with torch.autocast("cpu", enabled=False):
                return super().forward(x.float())
        return super().forward(x)


class GCNBlock(nn.Module):
    """Global Convolutional Network module: (k×1 → 1×k) + (1×k → k×1), linear (no BN/ReLU inside).

    Two separable branches give a dense k×k receptive field at O(k) cost. k=1 degenerates to the
    paper's baseline, a plain 1×1 score layer.
    """

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"GCN kernel size must be odd and >= 1, got {kernel_size}")
        self.kernel_size = kernel_size
        k, p = kernel_size, kernel_size // 2
        if k == 1:
            self.score = nn.Conv2d(in_chs, out_chs, 1)
            return
        self.left = nn.Sequential(
            nn.Conv2d(in_chs, out_chs, (k, 1), padding=(p, 0)),
            nn.Conv2d(out_chs, out_chs, (1, k), padding=(0, p)),
        )
        self.right = nn.Sequential(
            nn.Conv2d(in_chs, out_chs, (1, k), padding=(0, p)),
            nn.Conv2d(out_chs, out_chs, (k, 1), padding=(p, 0)),
        )

    def forward(self, x: Tensor) -> Tensor:
        if self.kernel_size == 1:
            return self.score(x)
        if self.training and torch.is_grad_enabled() and x.device.type == "cpu":
            # Both 1×k convolutions as k×1 on transposed maps (see `_conv_rows_as_columns`).
            first, second = self.left
            left = _conv_rows_as_columns(first(x), second)
            first, second = self.right
            right = second(_conv_rows_as_columns(x, first))
            return left + right
        return self.left(x) + self.right(x)


class BoundaryRefine(nn.Module):
    """Boundary Refinement: a residual branch `x + conv3x3(relu(conv3x3(x)))` that sharpens edges.

    The ReLU between the two convolutions is the point: without it the branch is one linear map.
    The second convolution starts at zero, so each BR starts as the identity: the decoder has no
    normalisation, and six stacked random residual branches made early training diverge.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(self.relu(self.conv1(x)))
