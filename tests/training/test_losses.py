from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gcnseg.classes import IGNORE_INDEX
from gcnseg.training.losses import SegmentationLoss, soft_dice_loss


def test_cross_entropy_averages_over_labelled_pixels_only() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 4, 4)
    target = torch.randint(0, 3, (2, 4, 4))
    target[0, :2] = 255
    valid = target != 255
    expected = F.cross_entropy(logits.permute(0, 2, 3, 1)[valid], target[valid])
    assert SegmentationLoss()(logits, target) == pytest.approx(float(expected), rel=1e-6)
    diluted = F.cross_entropy(logits, target, ignore_index=255, reduction="sum") / target.numel()
    assert float(diluted) < float(expected)  # what the seed computed


def test_dice_is_zero_for_perfect_prediction_and_ignores_255() -> None:
    target = torch.tensor([[[0, 1], [1, 255]]])
    logits = F.one_hot(target.clamp(max=1), 2).permute(0, 3, 1, 2).float() * 100
    logits[0, :, 1, 1] = torch.tensor([100.0, -100.0])  # wrong, but ignored
    assert float(soft_dice_loss(logits, target)) == pytest.approx(0.0, abs=1e-4)


def test_dice_weight_mixes_in() -> None:
    logits = torch.randn(1, 2, 3, 3)
    target = torch.randint(0, 2, (1, 3, 3))
    plain = SegmentationLoss()(logits, target)
    mixed = SegmentationLoss(dice_weight=0.5)(logits, target)
    assert float(mixed) == pytest.approx(
        float(plain + 0.5 * soft_dice_loss(logits, target)), rel=1e-6
    )


def test_fully_ignored_batch_gives_zero_with_gradient() -> None:
    logits = torch.randn(1, 2, 2, 2, requires_grad=True)
    loss = SegmentationLoss()(logits, torch.full((1, 2, 2), 255))
    loss.backward()
    assert float(loss.detach()) == 0.0
    assert logits.grad is not None


def test_label_smoothing_softens_the_targets_of_labelled_pixels_only() -> None:
    logits = torch.tensor([[[[4.0, 0.0]], [[0.0, 4.0]]]])  # (1, 2 classes, 1, 2 pixels), correct
    target = torch.tensor([[[0, IGNORE_INDEX]]])
    plain = SegmentationLoss()(logits, target)
    smoothed = SegmentationLoss(label_smoothing=0.2)(logits, target)
    log_p = logits[0, :, 0, 0].log_softmax(0)
    expected = -(0.9 * log_p[0] + 0.1 * log_p[1])  # 0.2 spread over 2 classes; pixel 2 ignored
    torch.testing.assert_close(smoothed, expected)
    assert smoothed > plain
