"""Evaluation at each image's original resolution: letterboxed logits are mapped back first."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader
from tqdm import tqdm

from gcnseg.classes import IGNORE_INDEX
from gcnseg.data.transforms import unletterbox
from gcnseg.evaluation.metrics import SegmentationMetrics
from gcnseg.runtime import predict_logits, prepare_images
from gcnseg.training.distributed import all_reduce_sum


@dataclass
class ImageResult:
    index: int
    pixel_accuracy: float
    miou: float  # over the classes present in the image's label or prediction


@dataclass
class Evaluation:
    metrics: dict
    loss: float
    images: list[ImageResult] = field(default_factory=list)


def image_miou(pred: Tensor, target: Tensor, num_classes: int) -> float:
    valid = target != IGNORE_INDEX
    p, t = pred[valid].long(), target[valid].long()
    cm = torch.bincount(t * num_classes + p, minlength=num_classes**2).view(
        num_classes, num_classes
    )
    tp = cm.diag().double()
    union = cm.sum(0) + cm.sum(1) - cm.diag()
    present = union > 0
    return float((tp[present] / union[present]).mean()) if present.any() else float("nan")


def evaluate(
    model: Callable[[Tensor], Tensor],
    loader: DataLoader,
    *,
    num_classes: int,
    device: torch.device,
    amp: str = "none",
    flip: bool = False,
    channels_last: bool = False,
    progress: bool = False,
    on_prediction: Callable[[int, Tensor, Tensor], None] | None = None,
) -> Evaluation:
    """Metrics over the loader (synced across ranks); `on_prediction(index, pred, label)` per image."""
    metrics = SegmentationMetrics(num_classes, device)
    loss_sum, loss_pixels = 0.0, 0.0
    results = []
    for batch in tqdm(loader, desc="eval", disable=not progress, leave=False):
        images = prepare_images(batch["image"], device, channels_last)
        logits = predict_logits(model, images, device=device, amp=amp, flip=flip)
        labels = batch["label"].to(device).long()
        loss_sum += float(
            F.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX, reduction="sum")
        )
        loss_pixels += float((labels != IGNORE_INDEX).sum())
        for row, index in enumerate(batch["index"].tolist()):
            target = batch["original_label"][row].to(device)
            pred = unletterbox(logits[row], batch["letterbox"][row]).argmax(0).to(torch.uint8)
            accuracy = metrics.update(pred, target)
            results.append(ImageResult(index, accuracy, image_miou(pred, target, num_classes)))
            if on_prediction is not None:
                on_prediction(index, pred.cpu(), target.cpu())
    loss_sum, loss_pixels = all_reduce_sum([loss_sum, loss_pixels], device)
    return Evaluation(metrics.compute(), loss_sum / max(loss_pixels, 1.0), results)
