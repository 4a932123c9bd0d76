"""Cross-entropy over labelled pixels only, optionally class-weighted, limited to the hard pixels
(OHEM) and mixed with soft Dice."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gcnseg.classes import IGNORE_INDEX

ClassWeighting = Literal["none", "median_frequency", "sqrt_median_frequency"]


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


def class_weights(
    labels: Iterable[np.ndarray], num_classes: int, mode: ClassWeighting
) -> Tensor | None:
    """Per-class CE weights from the training labels, or None for `none`.

    `median_frequency` is SegNet's median frequency balancing: a class's frequency is its pixels
    over the pixels of the images it appears in, and its weight median(freq) / freq, so thin,
    rare classes (poles, signs, cyclists) count as much as road and sky. `sqrt_median_frequency`
    takes the square root of those weights: the same order, a milder spread.
    """
    if mode == "none":
        return None
    pixels = np.zeros(num_classes, np.float64)
    present_in = np.zeros(num_classes, np.float64)  # pixels of the images each class appears in
    for label in labels:
        counts = np.bincount(label.ravel(), minlength=IGNORE_INDEX + 1)[:num_classes]
        pixels += counts
        present_in += (counts > 0) * counts.sum()
    seen = pixels > 0
    freq = np.where(seen, pixels / np.maximum(present_in, 1), 0.0)
    weights = np.where(seen, np.median(freq[seen]) / np.where(seen, freq, 1.0), 1.0)
    if mode == "sqrt_median_frequency":
        weights = np.sqrt(weights)
    return torch.tensor(weights, dtype=torch.float32)


# OHEM keeps at least this share of a batch's labelled pixels, so an easy batch still teaches.
OHEM_MIN_KEPT = 1 / 16


def hard_pixels(logits: Tensor, target: Tensor, valid: Tensor, threshold: float) -> Tensor:
    """OHEM's selection (as in PSPNet's and OCNet's code): the labelled pixels whose true class
    has a probability at most `threshold`, and at least the OHEM_MIN_KEPT share of them that are
    hardest; thin structures and boundaries are what stays once road and sky are learnt."""
    with torch.no_grad():
        probs = logits.float().softmax(dim=1)
        truth = probs.gather(1, target.clamp(max=logits.shape[1] - 1).unsqueeze(1)).squeeze(1)
        truth = truth.masked_fill(~valid, 2.0)  # above any threshold: never picked
        min_kept = max(1, int(valid.sum() * OHEM_MIN_KEPT))
        kth = truth.flatten().kthvalue(min_kept).values
        return valid & (truth <= torch.clamp(kth, min=threshold))


class SegmentationLoss(nn.Module):
    """CE averaged over the non-ignored pixels (the seed averaged over all of them, diluting it),
    each pixel weighted by its class's weight when `weight` is given; with `ohem_threshold`,
    over the hard pixels only (`hard_pixels`)."""

    def __init__(
        self,
        dice_weight: float = 0.0,
        ignore_index: int = IGNORE_INDEX,
        label_smoothing: float = 0.0,
        weight: Tensor | None = None,
        ohem_threshold: float | None = None,
    ) -> None:
        super().__init__()
        self.register_buffer("weight", weight)
        self.dice_weight = dice_weight
        self.label_smoothing = label_smoothing
        self.ignore_index = ignore_index
        self.ohem_threshold = ohem_threshold

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        target = target.long()
        valid = target != self.ignore_index
        if not valid.any():
            return logits.sum() * 0.0  # keeps the graph; a fully ignored crop teaches nothing
        ce_target = target
        if self.ohem_threshold is not None:
            hard = hard_pixels(logits, target, valid, self.ohem_threshold)
            ce_target = target.masked_fill(~hard, self.ignore_index)
        loss = F.cross_entropy(
            logits.float(),
            ce_target,
            weight=self.weight,
            ignore_index=self.ignore_index,
            label_smoothing=self.label_smoothing,
        )
        if self.dice_weight:  # over every labelled pixel, not only the hard ones
            loss = loss + self.dice_weight * soft_dice_loss(logits, target, self.ignore_index)
        return loss
