from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gcnseg.classes import IGNORE_INDEX
from gcnseg.training.losses import OHEM_MIN_KEPT, SegmentationLoss, hard_pixels, soft_dice_loss


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


def test_median_frequency_weights_lift_rare_classes() -> None:
    """SegNet's balancing: class frequency over the images a class appears in; the median class
    weighs 1, a rarer one more; ignored pixels count for nothing."""
    import numpy as np

    from gcnseg.training.losses import class_weights

    road = np.zeros((10, 10), np.uint8)  # class 0 everywhere
    pole = np.zeros((10, 10), np.uint8)
    pole[:, 0] = 2  # class 2: one column of one image
    sky = np.ones((10, 10), np.uint8)
    sky[0] = 255  # an ignored row
    weights = class_weights([road, pole, sky], num_classes=4, mode="median_frequency")
    # frequencies: road 190/200, sky 90/90, pole 10/100; class 3 never seen -> weight 1
    freq = np.array([190 / 200, 1.0, 10 / 100])
    expected = np.median(freq) / freq
    assert torch.allclose(weights[:3], torch.tensor(expected, dtype=torch.float32))
    assert weights[3] == 1.0 and weights[2] == weights.max()
    milder = class_weights([road, pole, sky], num_classes=4, mode="sqrt_median_frequency")
    assert torch.allclose(milder, weights.sqrt())
    assert class_weights([road], num_classes=4, mode="none") is None


def test_weighted_loss_is_the_weighted_mean_over_labelled_pixels() -> None:
    weight = torch.tensor([1.0, 4.0])
    logits = torch.randn(1, 2, 3, 3, generator=torch.Generator().manual_seed(0))
    target = torch.tensor([[[0, 1, 255], [1, 0, 0], [255, 1, 1]]])
    loss = SegmentationLoss(weight=weight)(logits, target)
    per_pixel = torch.nn.functional.cross_entropy(
        logits, target, ignore_index=255, reduction="none"
    )
    valid = target != 255
    w = weight[target.clamp(max=1)] * valid
    assert torch.isclose(loss, (per_pixel * w).sum() / w.sum())


def test_a_run_counts_its_class_weights_on_the_training_labels() -> None:
    """`train.class_weights` reaches the loss, counted on the readable training labels only."""
    import numpy as np

    from gcnseg.config import load_config
    from gcnseg.data.oxford_pets import PETS
    from gcnseg.errors import GcnsegError
    from gcnseg.training.distributed import DistInfo
    from gcnseg.training.run import _loss

    class Labelled:
        def __init__(self, label: np.ndarray | None) -> None:
            self.label = label

        def load_label(self) -> np.ndarray:
            if self.label is None:
                raise GcnsegError("broken.png: unreadable")
            return self.label

    labels = [np.zeros((4, 4), np.uint8), np.full((4, 4), 2, np.uint8)]
    labels[1][0, 0] = 1
    samples = [Labelled(labels[0]), Labelled(None), Labelled(labels[1])]
    cfg = load_config(None, ["train.class_weights=median_frequency"])
    loss = _loss(cfg, samples, PETS, DistInfo())
    assert loss.weight is not None and loss.weight.argmax() == 1  # the one-pixel class
    assert _loss(load_config(None, []), samples, PETS, DistInfo()).weight is None


def _confident(target: torch.Tensor, margins: torch.Tensor) -> torch.Tensor:
    """Two-class logits whose true class leads by `margins` (per pixel)."""
    logits = torch.zeros(*target.shape[:1], 2, *target.shape[1:])
    logits.scatter_(1, target.clamp(max=1).unsqueeze(1), margins.unsqueeze(1))
    return logits


def test_ohem_keeps_the_pixels_under_the_threshold_and_leaves_ignored_ones_out() -> None:
    target = torch.tensor([[[0, 1, 0, 1, 0, 1, 0, 1] * 8]])  # 64 pixels, one row
    margins = torch.linspace(-3.0, 6.0, 64).view(1, 1, 64)  # p(true) from 0.05 to 0.998
    target[0, 0, :4] = IGNORE_INDEX  # the hardest four are not labelled
    logits = _confident(target, margins)
    hard = hard_pixels(logits, target, target != IGNORE_INDEX, threshold=0.7)
    truth = torch.sigmoid(margins)  # two classes: p(true) = sigmoid(margin)
    assert torch.equal(hard, (truth <= 0.7) & (target != IGNORE_INDEX))
    assert 4 < int(hard.sum()) < 60


def test_ohem_keeps_a_share_of_an_easy_batch_and_averages_over_it() -> None:
    target = torch.randint(0, 2, (2, 16, 16), generator=torch.Generator().manual_seed(0))
    margins = torch.rand(2, 16, 16, generator=torch.Generator().manual_seed(1)) * 4 + 3
    logits = _confident(target, margins)  # every p(true) above 0.95: none under 0.7
    valid = target != IGNORE_INDEX
    hard = hard_pixels(logits, target, valid, threshold=0.7)
    assert int(hard.sum()) == int(valid.sum() * OHEM_MIN_KEPT)  # the hardest, no fewer
    assert margins[hard].max() <= margins[valid & ~hard].min()
    loss = SegmentationLoss(ohem_threshold=0.7)(logits, target)
    expected = F.cross_entropy(logits.permute(0, 2, 3, 1)[hard], target[hard])
    assert float(loss) == pytest.approx(float(expected), rel=1e-6)
    assert float(loss) > float(SegmentationLoss()(logits, target))  # the easy pixels left out
