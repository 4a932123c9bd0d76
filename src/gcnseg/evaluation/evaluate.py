"""Evaluation at each image's original resolution, through the one inference pipeline.

An item the loader could not read is never replaced by another: it is left out of every metric
and named in `Evaluation.skipped` (or, with `strict`, the run stops on it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader
from tqdm import tqdm

from gcnseg.classes import IGNORE_INDEX
from gcnseg.errors import GcnsegError
from gcnseg.evaluation.metrics import ImageScore, SegmentationMetrics
from gcnseg.inference.segmenter import Segmenter, class_indices
from gcnseg.logs import progress_enabled


@dataclass(frozen=True)
class ImageResult:
    index: int  # position in the dataset
    score: ImageScore


@dataclass(frozen=True)
class SkippedItem:
    index: int
    name: str
    reason: str


@dataclass
class Evaluation:
    metrics: dict
    loss: float
    images: list[ImageResult] = field(default_factory=list)
    skipped: list[SkippedItem] = field(default_factory=list)


# (index, prediction, label, scores, decoded image if the dataset keeps it): CPU tensors.
OnImage = Callable[[int, Tensor, Tensor, ImageScore, "np.ndarray | None"], None]


def evaluate(
    segmenter: Segmenter,
    loader: DataLoader,
    *,
    progress: bool = False,
    strict: bool = False,
    on_image: OnImage | None = None,
) -> Evaluation:
    """Metrics over the loader (summed across DDP ranks); `on_image` is called once per scored
    image, so callers never score (nor, with `keep_image`, decode) an image twice."""
    num_classes = len(segmenter.classes.names)
    metrics: SegmentationMetrics | None = None  # on the device the logits come on
    loss_sum, loss_pixels = 0.0, 0.0
    results, skipped = [], []
    batches = tqdm(loader, desc="eval", disable=not (progress and progress_enabled()), leave=False)
    for prediction in segmenter.stream(batches):
        if prediction.error is not None:
            if strict:
                raise GcnsegError(f"{prediction.error} (strict: no image may be left out)")
            skipped.append(SkippedItem(prediction.index, prediction.name, prediction.error))
            continue
        fields = prediction.fields
        label = fields["label"].to(prediction.boxed_logits.device).long()
        loss_sum += float(
            F.cross_entropy(
                prediction.boxed_logits[None],
                label[None],
                ignore_index=IGNORE_INDEX,
                reduction="sum",
            )
        )
        loss_pixels += float((label != IGNORE_INDEX).sum())
        metrics = metrics or SegmentationMetrics(num_classes, prediction.logits.device)
        target = fields["original_label"].to(prediction.logits.device)
        pred = class_indices(prediction.logits)
        score = metrics.update(pred, target)
        results.append(ImageResult(prediction.index, score))
        if on_image is not None:
            on_image(
                prediction.index, pred.cpu(), target.cpu(), score, fields.get("original_image")
            )
    metrics = metrics or SegmentationMetrics(num_classes)
    totals = torch.tensor([loss_sum, loss_pixels], dtype=torch.float64)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        totals = totals.to(metrics.matrix.device)
        torch.distributed.all_reduce(totals)
    loss_sum, loss_pixels = totals.tolist()
    return Evaluation(metrics.compute(), loss_sum / max(loss_pixels, 1.0), results, skipped)
