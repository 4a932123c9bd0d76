"""Cross-entropy over labelled pixels only, optionally mixed with a soft Dice loss."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from gcnseg.classes import IGNORE_INDEX


def soft_dice_loss(logits: Tensor, target: Tensor, ignore_index: int = IGNORE_INDEX) -> Tensor:
    """1 - mean over classes of soft Dice, counting only non-ignored pixels."""
    num_classes = logits.shape[1]
    valid = (target != ignore_index).unsqueeze(1)
    probs = logits.float().softmax(dim=1) * valid
    one_hot = F.one_hot(target.clamp(max=num_classes - 1).long(), num_classes).permute(0, 3, 1, 2)
    one_hot = one_hot * valid
    dims = (0, 2, 3)
    intersection = (probs * one_hot).sum(dims)
    denominator = probs.sum(dims) + one_hot.sum(dims)
    dice = (2 * intersection + 1.0) / (denominator + 1.0)
    return 1 - dice.mean()


class SegmentationLoss(nn.Module):
    """CE averaged over the non-ignored pixels (the seed averaged over all of them, diluting it)."""

    def __init__(
        self,
        dice_weight: float = 0.0,
        ignore_index: int = IGNORE_INDEX,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        self.dice_weight = dice_weight
        self.label_smoothing = label_smoothing
        self.ignore_index = ignore_index

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        target = target.long()
        if not (target != self.ignore_index).any():
            return logits.sum() * 0.0  # keeps the graph; a fully ignored crop teaches nothing
        loss = F.cross_entropy(
            logits.float(),
            target,
            ignore_index=self.ignore_index,
            label_smoothing=self.label_smoothing,
        )
        if self.dice_weight:
            loss = loss + self.dice_weight * soft_dice_loss(logits, target, self.ignore_index)
        return loss
