"""Metrics against hand-computed confusion matrices, with ignored pixels and absent classes."""

from __future__ import annotations

import math

import pytest
import torch

from gcnseg.evaluation.metrics import (
    SegmentationMetrics,
    confusion_matrix,
    image_score,
    summarize,
)

IGN = 255


def test_confusion_matrix_ignores_255_and_handles_absent_class() -> None:
    target = torch.tensor([[0, 0, 1, 1], [0, IGN, 1, IGN]], dtype=torch.uint8)
    pred = torch.tensor([[0, 1, 1, 1], [0, 2, 0, 2]], dtype=torch.uint8)
    metrics = SegmentationMetrics(3)
    score = metrics.update(pred, target)
    result = metrics.compute()
    # valid pixels: (0,0) (0,1) (1,1) (1,1) (0,0) (1,0) -> rows truth, columns prediction
    assert result["confusion_matrix"] == [[2, 1, 0], [1, 2, 0], [0, 0, 0]]
    assert score.pixel_accuracy == pytest.approx(4 / 6)
    assert score.miou == pytest.approx(0.5)  # classes 0 and 1; class 2 absent from both
    assert result["pixel_accuracy"] == pytest.approx(4 / 6)
    # IoU0 = 2 / (3 + 3 - 2), IoU1 = 2 / (3 + 3 - 2); class 2 absent everywhere -> NaN, not 0
    assert result["iou"][:2] == pytest.approx([0.5, 0.5])
    assert math.isnan(result["iou"][2])
    assert result["miou"] == pytest.approx(0.5)
    assert result["dice"][:2] == pytest.approx([2 / 3, 2 / 3])
    assert result["class_accuracy"][:2] == pytest.approx([2 / 3, 2 / 3])


def test_predicted_but_absent_class_counts_as_zero_iou() -> None:
    cm = torch.tensor([[3, 1, 0], [0, 4, 0], [0, 0, 0]])
    cm[0, 2] = 2  # class 2 predicted twice, never true
    result = summarize(cm)
    assert result["iou"][2] == 0.0
    assert result["iou"][0] == pytest.approx(3 / 6)
    assert result["iou"][1] == pytest.approx(4 / 5)
    assert result["miou"] == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    assert result["pixel_accuracy"] == pytest.approx(7 / 10)


def test_seed_metric_is_mean_of_per_image_accuracies() -> None:
    metrics = SegmentationMetrics(2)
    metrics.update(
        torch.zeros(2, 2, dtype=torch.uint8), torch.zeros(2, 2, dtype=torch.uint8)
    )  # 1.0
    big_target = torch.ones(4, 4, dtype=torch.uint8)
    big_pred = torch.zeros(4, 4, dtype=torch.uint8)
    big_pred[0] = 1
    metrics.update(big_pred, big_target)  # 4 / 16
    result = metrics.compute()
    assert result["mean_image_accuracy"] == pytest.approx((1.0 + 0.25) / 2)
    assert result["pixel_accuracy"] == pytest.approx((4 + 4) / 20)


def test_fully_ignored_image_is_skipped() -> None:
    metrics = SegmentationMetrics(2)
    assert math.isnan(metrics.update(torch.zeros(2, 2), torch.full((2, 2), IGN)).pixel_accuracy)
    metrics.update(torch.ones(1, 1), torch.ones(1, 1))
    assert metrics.compute()["mean_image_accuracy"] == 1.0


def test_image_miou_over_present_classes() -> None:
    target = torch.tensor([0, 0, 1, IGN])
    pred = torch.tensor([0, 1, 1, 2])
    score = image_score(confusion_matrix(pred, target, 3))
    assert score.miou == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert score.pixel_accuracy == pytest.approx(2 / 3)


def test_pixel_shares_count_each_class_of_a_mask() -> None:
    import numpy as np

    from gcnseg.evaluation.metrics import pixel_shares

    mask = np.array([[0, 0, 2], [2, 2, 2]], np.uint8)
    assert pixel_shares(mask, 3) == [round(2 / 6, 6), 0.0, round(4 / 6, 6)]
