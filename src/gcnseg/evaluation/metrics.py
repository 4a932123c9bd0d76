"""Segmentation metrics from one confusion matrix (torchmetrics: it syncs across DDP ranks).

Everything is computed at each image's original resolution; ignored pixels (255) never count.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassConfusionMatrix

from gcnseg.classes import IGNORE_INDEX


class SegmentationMetrics:
    """Accumulates a confusion matrix plus the seed project's per-image pixel accuracy."""

    def __init__(self, num_classes: int, device: torch.device | str = "cpu") -> None:
        self.num_classes = num_classes
        self.confmat = MulticlassConfusionMatrix(num_classes, ignore_index=IGNORE_INDEX).to(device)
        self.image_accuracy = MeanMetric().to(device)
        self.images = 0

    def update(self, pred: Tensor, target: Tensor) -> float:
        """Add one image (H×W class indices vs labels); return its pixel accuracy (NaN if all ignored)."""
        valid = target != IGNORE_INDEX
        count = int(valid.sum())
        if count == 0:
            return float("nan")
        self.confmat.update(pred[valid].long(), target[valid].long())
        accuracy = float((pred[valid] == target[valid]).sum()) / count
        self.image_accuracy.update(torch.tensor(accuracy, dtype=torch.float64))
        self.images += 1
        return accuracy

    def update_batch(self, pred: Tensor, target: Tensor) -> None:
        """Add a batch to the confusion matrix only (training crops: no per-image accuracy)."""
        valid = target != IGNORE_INDEX
        self.confmat.update(pred[valid].long(), target[valid].long())

    def compute(self) -> dict:
        # Under DDP every rank evaluates images, so `images` is never 0 on one rank only.
        mean_accuracy = float(self.image_accuracy.compute()) if self.images else float("nan")
        return summarize(self.confmat.compute(), mean_accuracy)


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
