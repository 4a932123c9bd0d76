"""The two building blocks of "Large Kernel Matters" (Peng et al., 2017): GCN and Boundary Refinement."""

from __future__ import annotations

from torch import Tensor, nn


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
