"""BatchNorm with fixed statistics and affine parameters (timm's `FrozenBatchNorm2d`, adapted).

Swapped in for `nn.BatchNorm2d` by `freeze_batchnorm`: `model.train()` cannot wake it up, unlike the
old trick of patching `train()` on each layer. Everything it holds is a buffer with the names
`nn.BatchNorm2d` uses (`num_batches_tracked` included), so checkpoints load in both directions with
the same keys, and `F.batch_norm` in inference mode gives the same numbers as a BatchNorm in eval().
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class FrozenBatchNorm2d(nn.Module):
    """`nn.BatchNorm2d` in eval mode forever: no gradients, no running-statistics updates."""

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))
        self.training = False

    @classmethod
    def from_batchnorm(cls, bn: nn.BatchNorm2d) -> FrozenBatchNorm2d:
        frozen = cls(bn.num_features, bn.eps)
        with torch.no_grad():
            if bn.affine:
                frozen.weight.copy_(bn.weight)
                frozen.bias.copy_(bn.bias)
            if bn.track_running_stats:
                frozen.running_mean.copy_(bn.running_mean)
                frozen.running_var.copy_(bn.running_var)
                frozen.num_batches_tracked.copy_(bn.num_batches_tracked)
        return frozen.to(bn.running_mean.device if bn.track_running_stats else "cpu")

    def train(self, mode: bool = True) -> FrozenBatchNorm2d:
        """Stays in eval mode, so `training` tells the truth to whoever asks."""
        return super().train(False)

    def forward(self, x: Tensor) -> Tensor:
        return F.batch_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
        )

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}"


def freeze_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every `nn.BatchNorm2d` inside `module` (or `module` itself) by a FrozenBatchNorm2d."""
    if isinstance(module, nn.BatchNorm2d):
        return FrozenBatchNorm2d.from_batchnorm(module)
    for name, child in module.named_children():
        frozen = freeze_batchnorm(child)
        if frozen is not child:
            setattr(module, name, frozen)
    return module
