"""Engine accuracy guard: every engine's metrics beside torch fp32's on the same images, and the
share of pixels where its argmax agrees with torch fp32's."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from gcnseg.data.dataset import eval_loader
from gcnseg.data.layouts import index_dataset
from gcnseg.data.splits import split_samples
from gcnseg.evaluation.evaluate import evaluate
from gcnseg.inference import TORCH_FP32
from gcnseg.inference.segmenter import Segmenter

REFERENCE = TORCH_FP32


@dataclass(frozen=True)
class EngineRow:
    engine: str
    miou: float
    mean_image_accuracy: float
    pixel_accuracy: float
    agreement: float  # argmax agreement with the reference engine, over all pixels
    seconds: float
    class_iou: tuple[float, ...]  # per class, NaN where a class is absent from images and preds


def compare_engines(
    segmenters: dict[str, Segmenter],
    data: Path,
    *,
    manifest: Path | None = None,
    split: str = "test",
    limit: int | None = None,
) -> list[EngineRow]:
    """Evaluate each segmenter (the first must be the torch fp32 reference) on the same images."""

    index = index_dataset(data)
    samples = split_samples(index, manifest, split)
    if limit and len(samples) > limit:  # spread over the split: it is sorted by breed
        samples = samples[:: len(samples) // limit][:limit]
    reference: dict[int, torch.Tensor] = {}
    rows = []
    for name, segmenter in segmenters.items():
        loader = eval_loader(samples, segmenter.eval_size, batch_size=4, workers=0)
        preds: dict[int, torch.Tensor] = {}
        tic = time.monotonic()
        result = evaluate(
            segmenter, loader, on_image=lambda i, p, *_, preds=preds: preds.update({i: p})
        )
        seconds = time.monotonic() - tic
        if not reference:
            reference = preds
        same = sum(int((preds[i] == reference[i]).sum()) for i in reference)
        total = sum(reference[i].numel() for i in reference)
        m = result.metrics
        rows.append(
            EngineRow(
                name,
                m["miou"],
                m["mean_image_accuracy"],
                m["pixel_accuracy"],
                same / total,
                seconds,
                tuple(m["iou"]),
            )
        )
    return rows


def largest_class_change(row: EngineRow, reference: EngineRow) -> tuple[int, float]:
    """The class whose IoU moved most from the reference's, and by how much: on many classes a
    thin one can lose far more than the mean shows."""
    changes = [
        (abs(a - b), i, a - b)
        for i, (a, b) in enumerate(zip(row.class_iou, reference.class_iou, strict=True))
        if not (math.isnan(a) or math.isnan(b))
    ]
    _, index, change = max(changes, default=(0.0, 0, 0.0))
    return index, change


def markdown(rows: list[EngineRow], class_names: list[str] | None = None) -> str:
    reference = rows[0]
    lines = [
        "| engine | mIoU | Δ mIoU | largest class Δ IoU | mean image acc. | pixel acc. "
        "| argmax agreement | seconds |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        index, change = largest_class_change(r, reference)
        name = class_names[index] if class_names else f"class {index}"
        moved = "–" if r is reference else f"{name} {change:+.4f}"
        lines.append(
            f"| {r.engine} | {r.miou:.4f} | {r.miou - reference.miou:+.4f} | {moved} | "
            f"{r.mean_image_accuracy:.4f} | {r.pixel_accuracy:.4f} | {100 * r.agreement:.2f}% | {r.seconds:.1f} |"
        )
    return "\n".join(lines)
