"""Segmentation metrics from one confusion matrix: one bincount per image, one all-reduce.

A plain bincount, as torchvision's references do: several times faster than torchmetrics' on
one image (benchmarks/README.md), and each image's own matrix gives its scores for free. Everything is at each image's original resolution; ignored pixels (255) never count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor

from gcnseg.classes import IGNORE_INDEX


@dataclass(frozen=True)
class ImageScore:
    """One image's scores; NaN when all its pixels are ignored."""

    pixel_accuracy: float
    miou: float  # over the classes present in the image's label or prediction


def confusion_matrix(pred: Tensor, target: Tensor, num_classes: int) -> Tensor:
    """(C, C) int64 counts, rows ground truth, columns prediction; ignored pixels left out."""
    valid = target != IGNORE_INDEX
    index = target[valid].long() * num_classes + pred[valid].long()
    return torch.bincount(index, minlength=num_classes**2).view(num_classes, num_classes)


def image_score(matrix: Tensor) -> ImageScore:
    total = int(matrix.sum())
    if total == 0:
        return ImageScore(float("nan"), float("nan"))
    tp = matrix.diag().double()
    union = matrix.sum(0) + matrix.sum(1) - matrix.diag()
    present = union > 0
    return ImageScore(float(tp.sum()) / total, float((tp[present] / union[present]).mean()))


class SegmentationMetrics:
    """Accumulates the confusion matrix plus the seed project's mean per-image pixel accuracy."""

    def __init__(self, num_classes: int, device: torch.device | str = "cpu") -> None:
        self.num_classes = num_classes
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)
        self.accuracy_sum = 0.0
        self.images = 0

    def update(self, pred: Tensor, target: Tensor) -> ImageScore:
        """Add one image (HxW class indices vs labels) and return its own scores."""
        matrix = confusion_matrix(pred, target, self.num_classes)
        self.matrix += matrix
        score = image_score(matrix)
        if matrix.sum() > 0:
            self.accuracy_sum += score.pixel_accuracy
            self.images += 1
        return score

    def update_batch(self, pred: Tensor, target: Tensor) -> None:
        """Add a batch to the confusion matrix only (training crops: no per-image accuracy)."""
        self.matrix += confusion_matrix(pred, target, self.num_classes)

    def compute(self) -> dict:
        """Totals over every process of a DDP job (each rank saw its own images)."""
        matrix = self.matrix.clone()
        counts = torch.tensor([self.accuracy_sum, float(self.images)], dtype=torch.float64)
        if dist.is_available() and dist.is_initialized():
            counts = counts.to(matrix.device)
            dist.all_reduce(matrix)
            dist.all_reduce(counts)
        accuracy_sum, images = counts.tolist()
        return summarize(matrix, accuracy_sum / images if images else float("nan"))


def summarize(confmat: Tensor, mean_image_accuracy: float = float("nan")) -> dict:
    """Rows are ground truth, columns predictions. A class with no pixels anywhere has NaN IoU."""
    cm = confmat.double().cpu()
    tp = cm.diag()
    gt = cm.sum(1)
    pred = cm.sum(0)
    union = gt + pred - tp
    nan = torch.tensor(float("nan"), dtype=torch.float64)
    iou = torch.where(union > 0, tp / union, nan)
    dice = torch.where(gt + pred > 0, 2 * tp / (gt + pred), nan)
    class_acc = torch.where(gt > 0, tp / gt, nan)
    total = cm.sum()
    return {
        "pixel_accuracy": float(tp.sum() / total) if total else float("nan"),
        "mean_image_accuracy": mean_image_accuracy,
        "miou": float(iou.nanmean()),
        "mean_dice": float(dice.nanmean()),
        "mean_class_accuracy": float(class_acc.nanmean()),
        "iou": iou.tolist(),
        "dice": dice.tolist(),
        "class_accuracy": class_acc.tolist(),
        "confusion_matrix": cm.long().tolist(),
    }


def pixel_shares(mask: np.ndarray, num_classes: int) -> list[float]:
    """Each class's share of a predicted mask's pixels (0-1, 6 decimals), in class order."""
    counts = np.bincount(mask.ravel(), minlength=num_classes)[:num_classes]
    return [round(int(n) / mask.size, 6) for n in counts]
